import { Router } from 'express';
import { parseOr400 } from '../../lib/errors';
import { UsageLimiter } from '../../lib/usage-limiter';
import { requestEmbedding } from '../../queues/embeddings';
import { embedSchema } from '../../schemas/api';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';

/** `POST /storage/vectors/embed {text}` → `{vector, model, dimensions}`, computed by the `embeddings` queue. */
export function embeddingRoutes(ctx: ApiContext): Router {
  const router = Router();
  const usage = new UsageLimiter(ctx.redis, ctx.config.redis.keyPrefix, ctx.config.usageLimits);
  // Listening before the first job is enqueued, so no completion can slip past the first waiter.
  ctx.queues.events('embeddings');

  router.post('/storage/vectors/embed', async (req, res) => {
    const user = currentUser(req);
    const { text } = parseOr400(embedSchema, req.body);
    await usage.take('embeddingsPerMinute', user);
    res.json(await requestEmbedding(ctx.queues, { text, userId: user.id, tier: user.tier }));
  });

  return router;
}

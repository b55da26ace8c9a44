import { Router } from 'express';
import { z } from 'zod';
import { JOURNEY_AGENT_TYPES, JOURNEY_DATA_TYPES, MAX_ANSWER_CHARS } from '../../agents/journey-script';
import { notFound, parseOr400 } from '../../lib/errors';
import { UsageLimiter } from '../../lib/usage-limiter';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';

/** `POST /agents/journey/start`. */
export const journeyStartSchema = z.strictObject({
  agentType: z.enum(JOURNEY_AGENT_TYPES),
  dataTypes: z.array(z.enum(JOURNEY_DATA_TYPES)).min(1).max(JOURNEY_DATA_TYPES.length),
});

/** `POST /agents/journey/message`: the user's answer to the last question. */
export const journeyMessageSchema = z.strictObject({
  sessionId: z.uuid(),
  message: z.string().trim().min(1).max(MAX_ANSWER_CHARS),
});

/** `GET /agents/journey/:sessionId`. */
export const journeySessionParamsSchema = z.object({ sessionId: z.uuid() });

/**
 * The agent setup journey (decision 0027): a guided conversation that ends with a prompt template
 * for an extraction agent. Mounted before the other `/agents/...` routes so `/agents/journey/*`
 * is never read as an agent id.
 */
export function journeyRoutes(ctx: ApiContext): Router {
  const router = Router();
  const usage = new UsageLimiter(ctx.redis, ctx.config.redis.keyPrefix, ctx.config.usageLimits);
  // Listening before the first turn is enqueued, so no completion can slip past the first waiter.
  ctx.queues.events('assistant');

  router.post('/agents/journey/start', async (req, res) => {
    const user = currentUser(req);
    const body = parseOr400(journeyStartSchema, req.body);
    await usage.take('journeyPerMinute', user);
    res.status(201).json(await ctx.journeys.start(user.id, body));
  });

  router.post('/agents/journey/message', async (req, res) => {
    const user = currentUser(req);
    const body = parseOr400(journeyMessageSchema, req.body);
    await usage.take('journeyPerMinute', user);
    res.json(await ctx.journeys.message(user.id, body));
  });

  router.get('/agents/journey/:sessionId', async (req, res) => {
    const params = journeySessionParamsSchema.safeParse(req.params);
    // A malformed id cannot name a session: same answer as a missing one.
    if (!params.success) throw notFound('Journey session');
    res.json(await ctx.journeys.view(currentUser(req).id, params.data.sessionId));
  });

  return router;
}

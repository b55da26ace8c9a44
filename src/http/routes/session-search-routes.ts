import { z } from 'zod';
import { embeddingEstimate } from '../../ai/embeddings';
import { cosineSimilarity } from '../../lib/vectors';
import type { Repositories } from '../../models';
import { requestEmbedding } from '../../producers/requests';
import { MAX_EMBED_TEXT_CHARS } from '../../schemas/api';
import type { ApiContext } from '../context';
import { similarSessionsResponse } from '../openapi/response-schemas';
import { requireWriteScope } from '../middleware/authenticate';
import { routesWith } from '../route';
import type { UsagePorts } from './shared';

/** The similar-sessions route's port: queues (the embeddings queue), the budget, the price table, the sessions' embeddings. */
export type SessionSearchPorts = Pick<ApiContext, 'queues' | 'budget' | 'config'> & { repos: Pick<Repositories, 'notes'> } & UsagePorts;
const route = routesWith<SessionSearchPorts>();

export const similarSessionsQuerySchema = z.strictObject({
  q: z.string().trim().min(1).max(MAX_EMBED_TEXT_CHARS).describe('What to look for: a problem in words'),
  limit: z.coerce.number().int().min(1).max(20).default(5),
});

/**
 * Finding resolved sessions like a problem. Declared before `/chat/sessions/:id`,
 * which would otherwise read `similar` as a session id.
 */
export const sessionSearchRoutes = [
  route({
    method: 'get',
    path: '/chat/sessions/similar',
    operationId: 'findSimilarSessions',
    tags: ['sessions'],
    auth: 'bearer',
    summary: "The caller's resolved sessions most like `q`, best first",
    description:
      'Embeds `q` through the `embeddings` queue (counted against the embeddings rate limit and the budget) and ranks the ' +
      "caller's resolved sessions by cosine similarity of their embeddings (made from the notes when a session is resolved). " +
      'Only the caller’s own sessions are ever compared; a session appears once its notes and embedding are stored. ' +
      'Embedding `q` spends: an API key with scope `read` only is refused with 403.',
    query: similarSessionsQuerySchema,
    responses: { 200: { description: 'Up to `limit` sessions, most similar first', schema: similarSessionsResponse } },
    errors: [400, 403, 429, 503],
    handler: async (input, ctx) => {
      const { user } = input;
      // Before the query is read or anything counted: a read key spends nothing, whatever it sends.
      requireWriteScope(user, 'finding similar sessions (it embeds the query, a model call)');
      const { query } = input;
      await ctx.usage.take('embeddingsPerMinute', user);
      const model = ctx.config.llm.embeddingModel;
      const budget = await ctx.budget.admit(user.id, embeddingEstimate(ctx.config.llm.pricing, model, [query.q]));
      const embedded = await requestEmbedding(ctx.queues, { text: query.q, userId: user.id, tier: user.tier, budget });
      const candidates = await ctx.repos.notes.embeddedResolved(user.id, embedded.model);
      const sessions = candidates
        .map((c) => ({ session: c, score: cosineSimilarity(embedded.vector, c.vector) }))
        .filter(({ score }) => score > 0)
        .sort((a, b) => b.score - a.score)
        .slice(0, query.limit)
        .map(({ session, score }) => ({
          sessionId: session.sessionId,
          title: session.title,
          problemSummary: session.problemSummary,
          resolutionSummary: session.resolutionSummary,
          updatedAt: session.updatedAt.toISOString(),
          score: Math.round(score * 10_000) / 10_000,
        }));
      return { model: embedded.model, sessions };
    },
  }),
];

import type { Request } from 'express';
import { Router } from 'express';
import { notFound, parseOr400 } from '../../lib/errors';
import { decodeCursor, idKey, pageOf, pageQuerySchema } from '../../lib/pagination';
import { toAgentView, toRunView, type AgentRef } from '../../models/agents-repository';
import { uuidParam } from '../../schemas/api';
import {
  agentCatalog,
  createCloudAgentSchema,
  createLocalAgentSchema,
  listRunsQuerySchema,
  updateCloudAgentSchema,
  updateLocalAgentSchema,
} from '../../schemas/agents';
import { UsageLimiter } from '../../lib/usage-limiter';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';

/** `GET /agents/local` and `/agents/cloud`: `?limit` 1–200 (default 50), `?cursor`. */
export const agentsPageQuerySchema = pageQuerySchema(50);

/**
 * Background agents (SPEC §7): the catalog, CRUD of local and cloud agent configs, run logs and
 * manual runs. Every call is scoped to the caller's own agents (another user's agent is a 404).
 * Creating or enabling past the plan's limit answers 403 `tier_limit`.
 */
export function agentRoutes(ctx: ApiContext): Router {
  const router = Router();
  const usage = new UsageLimiter(ctx.redis, ctx.config.redis.keyPrefix, ctx.config.usageLimits);
  const agentId = (req: Request) => {
    const id = uuidParam.safeParse(req.params.id);
    if (!id.success) throw notFound('Agent');
    return id.data;
  };

  router.get('/agents/catalog', (_req, res) => {
    res.json({ agents: agentCatalog() });
  });

  router.get('/agents/runs', async (req, res) => {
    const query = parseOr400(listRunsQuerySchema, req.query, 'query');
    const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
    const { runs, total } = await ctx.repos.agents.listRuns(currentUser(req).id, { ...query, beforeId });
    const page = pageOf(runs, query.limit, (run) => [run.id]);
    // `page`/`total` stay for offset clients; `nextCursor` is the SPEC §9 way through the list.
    res.json({ runs: page.items.map(toRunView), page: query.page, limit: query.limit, total, nextCursor: page.nextCursor });
  });

  // The same five routes for each kind; only the body schemas differ.
  const kinds = [
    { kind: 'local', create: createLocalAgentSchema, update: updateLocalAgentSchema },
    { kind: 'cloud', create: createCloudAgentSchema, update: updateCloudAgentSchema },
  ] as const;
  for (const { kind, create, update } of kinds) {
    router.get(`/agents/${kind}`, async (req, res) => {
      // Newest first, in pages (SPEC §9).
      const query = parseOr400(agentsPageQuerySchema, req.query, 'query');
      const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
      const page = pageOf(await ctx.repos.agents.listPage(kind, currentUser(req).id, { limit: query.limit + 1, beforeId }), query.limit, (agent) => [agent.id]);
      res.json({ agents: page.items.map((agent) => toAgentView({ kind, agent } as AgentRef)), nextCursor: page.nextCursor });
    });

    router.post(`/agents/${kind}`, async (req, res) => {
      const body = parseOr400(create, req.body);
      res.status(201).json(toAgentView(await ctx.agents.create(kind, currentUser(req).id, body)));
    });

    router.get(`/agents/${kind}/:id`, async (req, res) => {
      const agent = await ctx.repos.agents.get(kind as 'local', currentUser(req).id, agentId(req));
      if (!agent) throw notFound('Agent');
      res.json(toAgentView({ kind, agent } as AgentRef));
    });

    router.put(`/agents/${kind}/:id`, async (req, res) => {
      const id = agentId(req);
      const body = parseOr400(update, req.body);
      res.json(toAgentView(await ctx.agents.update(kind, currentUser(req).id, id, body)));
    });

    router.delete(`/agents/${kind}/:id`, async (req, res) => {
      await ctx.agents.remove(kind, currentUser(req).id, agentId(req));
      res.status(204).end();
    });
  }

  router.post('/agents/:id/run', async (req, res) => {
    const user = currentUser(req);
    const id = agentId(req);
    await usage.take('agentRunsPerMinute', user);
    res.status(202).json(await ctx.agents.runNow(user.id, id));
  });

  return router;
}

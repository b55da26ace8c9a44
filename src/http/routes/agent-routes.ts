import type { Request } from 'express';
import { Router } from 'express';
import { notFound, parseOr400 } from '../../lib/errors';
import { toAgentView, toRunView } from '../../models/agents-repository';
import { uuidParam } from '../../schemas/api';
import {
  agentCatalog,
  createCloudAgentSchema,
  createLocalAgentSchema,
  listRunsQuerySchema,
  updateCloudAgentSchema,
  updateLocalAgentSchema,
} from '../../schemas/agents';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';

/**
 * Background agents (SPEC §7): the catalog, CRUD of local and cloud agent configs, run logs and
 * manual runs. Every call is scoped to the caller's own agents (another user's agent is a 404).
 * Creating or enabling past the plan's limit answers 403 `tier_limit`.
 */
export function agentRoutes(ctx: ApiContext): Router {
  const router = Router();
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
    const { runs, total } = await ctx.repos.agents.listRuns(currentUser(req).id, query);
    res.json({ runs: runs.map(toRunView), page: query.page, limit: query.limit, total });
  });

  router.get('/agents/local', async (req, res) => {
    const rows = await ctx.repos.agents.list('local', currentUser(req).id);
    res.json({ agents: rows.map((agent) => toAgentView({ kind: 'local', agent })) });
  });

  router.post('/agents/local', async (req, res) => {
    const body = parseOr400(createLocalAgentSchema, req.body);
    const agent = await ctx.agents.createLocal(currentUser(req).id, body);
    res.status(201).json(toAgentView({ kind: 'local', agent }));
  });

  router.get('/agents/local/:id', async (req, res) => {
    const agent = await ctx.repos.agents.get('local', currentUser(req).id, agentId(req));
    if (!agent) throw notFound('Agent');
    res.json(toAgentView({ kind: 'local', agent }));
  });

  router.put('/agents/local/:id', async (req, res) => {
    const id = agentId(req);
    const body = parseOr400(updateLocalAgentSchema, req.body);
    res.json(toAgentView(await ctx.agents.update('local', currentUser(req).id, id, body)));
  });

  router.delete('/agents/local/:id', async (req, res) => {
    await ctx.agents.remove('local', currentUser(req).id, agentId(req));
    res.status(204).end();
  });

  router.get('/agents/cloud', async (req, res) => {
    const rows = await ctx.repos.agents.list('cloud', currentUser(req).id);
    res.json({ agents: rows.map((agent) => toAgentView({ kind: 'cloud', agent })) });
  });

  router.post('/agents/cloud', async (req, res) => {
    const body = parseOr400(createCloudAgentSchema, req.body);
    const agent = await ctx.agents.createCloud(currentUser(req).id, body);
    res.status(201).json(toAgentView({ kind: 'cloud', agent }));
  });

  router.get('/agents/cloud/:id', async (req, res) => {
    const agent = await ctx.repos.agents.get('cloud', currentUser(req).id, agentId(req));
    if (!agent) throw notFound('Agent');
    res.json(toAgentView({ kind: 'cloud', agent }));
  });

  router.put('/agents/cloud/:id', async (req, res) => {
    const id = agentId(req);
    const body = parseOr400(updateCloudAgentSchema, req.body);
    res.json(toAgentView(await ctx.agents.update('cloud', currentUser(req).id, id, body)));
  });

  router.delete('/agents/cloud/:id', async (req, res) => {
    await ctx.agents.remove('cloud', currentUser(req).id, agentId(req));
    res.status(204).end();
  });

  router.post('/agents/:id/run', async (req, res) => {
    res.status(202).json(await ctx.agents.runNow(currentUser(req).id, agentId(req)));
  });

  return router;
}

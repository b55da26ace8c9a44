import { z } from 'zod';
import { notFound } from '../../lib/errors';
import { decodeCursor, idKey, pageOf, pageQuerySchema } from '../../lib/pagination';
import { toAgentView, toRunView, type AgentRef } from '../../models/agents-repository';
import {
  agentCatalog,
  createCloudAgentSchema,
  createLocalAgentSchema,
  listRunsQuerySchema,
  updateCloudAgentSchema,
  updateLocalAgentSchema,
} from '../../schemas/agents';
import {
  agentCatalogResponse,
  agentRunListResponse,
  agentRunQueuedResponse,
  cloudAgentListResponse,
  cloudAgentView,
  localAgentListResponse,
  localAgentView,
} from '../openapi/response-schemas';
import { routesWith } from '../route';
import { agentIdParam, agentRunIdParam } from './params';
import type { UsagePorts } from './shared';
import type { ApiContext } from '../context';
import type { Repositories } from '../../models';

/** The agent routes' port: the agent service and the agents repository (plus the usage limits). */
export type AgentPorts = { agents: Pick<ApiContext['agents'], 'create' | 'update' | 'remove' | 'runNow' | 'cancelRun'> } & {
  repos: Pick<Repositories, 'agents'>;
} & UsagePorts &
  Pick<ApiContext, 'limits'>;
const route = routesWith<AgentPorts>();

/** `POST /agents/runs/:runId/cancel` answers 202 with this while the stop is under way. */
export const agentRunCancelResponse = z.object({ runId: z.uuid(), status: z.literal('cancelling') });

/** `GET /agents/local` and `/agents/cloud`: `?limit` 1–200 (default 50), `?cursor`. */
export const agentsPageQuerySchema = pageQuerySchema(50);

const AGENT_MODEL =
  "`model: {provider, model}` runs the agent's extraction on that model (then the deployment's `LLM_FALLBACK` chain, as for a flow node); " +
  'one this deployment does not serve is 400 `unknown_model` (`details: [{path, message}]`) and nothing is saved; a local provider on a plan without local models is 403 `tier_forbidden`; `null` goes back to the default.';
const TIER_LIMIT =
  "Creating or enabling an agent past the plan's limit of enabled agents (local and cloud together) answers 403 `tier_limit` (`details: {limit}`).";
const REFINED =
  'JSON Schema cannot state every check: `scheduleCron` must be a valid five-field cron (minute hour day month weekday), `timezone` an IANA zone (e.g. `Europe/Berlin`)';
const LOCAL_REFINED = `${REFINED}, each of \`directoryPaths\` an absolute path (POSIX or Windows) without \`..\` segments. Duplicate \`dataTypes\` are dropped; \`fileExtensions\` are lower-cased.`;
const CLOUD_REFINED = `${REFINED}, \`filterConfig.dateRange.from\` not after \`to\`. Duplicate \`dataTypes\` are dropped. Credentials are never part of the body: connect one through \`GET /oauth/{provider}/authorize?agentId=\`.`;
const tags = ['agents'];

/** The same five routes for each kind; only the schemas and the words differ. */
function agentKindRoutes<const K extends 'local' | 'cloud', const N extends 'Local' | 'Cloud', C extends z.ZodType, U extends z.ZodType>(
  kind: K,
  schemas: { create: C; update: U },
  docs: {
    Name: N;
    list: { summary: string; schema: typeof localAgentListResponse | typeof cloudAgentListResponse };
    view: typeof localAgentView | typeof cloudAgentView;
    create: { summary: string; description: string; example: unknown; created: string };
    get: string;
    update: { summary: string; description: string; example: unknown };
    remove: string;
  },
) {
  return [
    route({
      method: 'get',
      path: `/agents/${kind}`,
      operationId: `list${docs.Name}Agents`,
      tags,
      auth: 'bearer',
      summary: docs.list.summary,
      query: agentsPageQuerySchema,
      responses: {
        200: { description: 'One page of agents; `nextCursor` goes back as `?cursor` (null on the last page)', schema: docs.list.schema },
      },
      errors: [400],
      handler: async ({ user, query }, ctx) => {
        // Newest first, in pages.
        const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
        const page = pageOf(await ctx.repos.agents.listPage(kind, user.id, { limit: query.limit + 1, beforeId }), query.limit, (agent) => [
          agent.id,
        ]);
        return { agents: page.items.map((agent) => toAgentView({ kind, agent } as AgentRef)), nextCursor: page.nextCursor };
      },
    }),
    route({
      method: 'post',
      path: `/agents/${kind}`,
      operationId: `create${docs.Name}Agent`,
      tags,
      auth: 'bearer',
      summary: docs.create.summary,
      description: docs.create.description,
      body: schemas.create,
      bodyExample: docs.create.example,
      responses: { 201: { description: docs.create.created, schema: docs.view } },
      errors: [403],
      handler: async (input, ctx) => {
        // A plan without cloud agents may not set one up (403 `tier_forbidden`).
        if (kind === 'cloud') await ctx.limits.requireFeature(input.user.id, 'cloudAgents');
        // A local model provider needs a plan with local models, as for a chat's or a flow's model.
        await ctx.limits.requireModelChoice(input.user.id, (input.body as { model?: { provider: string } | null }).model ?? undefined);
        return toAgentView(await ctx.agents.create(kind, input.user.id, input.body as never));
      },
    }),
    route({
      method: 'get',
      path: `/agents/${kind}/:id`,
      operationId: `get${docs.Name}Agent`,
      tags,
      auth: 'bearer',
      summary: docs.get,
      params: agentIdParam,
      responses: { 200: { description: 'The agent', schema: docs.view } },
      errors: [404],
      handler: async ({ user, params }, ctx) => {
        const agent = await ctx.repos.agents.get(kind as 'local', user.id, params.id);
        if (!agent) throw notFound('Agent');
        return toAgentView({ kind, agent } as AgentRef);
      },
    }),
    route({
      method: 'put',
      path: `/agents/${kind}/:id`,
      operationId: `update${docs.Name}Agent`,
      tags,
      auth: 'bearer',
      summary: docs.update.summary,
      description: docs.update.description,
      params: agentIdParam,
      body: schemas.update,
      bodyExample: docs.update.example,
      responses: { 200: { description: 'The agent', schema: docs.view } },
      errors: [403, 404],
      handler: async ({ user, params, body }, ctx) => {
        await ctx.limits.requireModelChoice(user.id, (body as { model?: { provider: string } | null }).model ?? undefined);
        return toAgentView(await ctx.agents.update(kind, user.id, params.id, body as never));
      },
    }),
    route({
      method: 'delete',
      path: `/agents/${kind}/:id`,
      operationId: `delete${docs.Name}Agent`,
      tags,
      auth: 'bearer',
      summary: docs.remove,
      params: agentIdParam,
      responses: { 204: 'Deleted' },
      errors: [404],
      handler: async ({ user, params }, ctx) => {
        await ctx.agents.remove(kind, user.id, params.id);
      },
    }),
  ];
}

/**
 * Background agents: the catalog, CRUD of local and cloud agent configs, run logs and
 * manual runs. Every call is scoped to the caller's own agents (another user's agent is a 404).
 * Creating or enabling past the plan's limit answers 403 `tier_limit`.
 */
export const agentRoutes = [
  route({
    method: 'get',
    path: '/agents/catalog',
    operationId: 'getAgentCatalog',
    tags,
    auth: 'bearer',
    summary: 'The agent types, each with the JSON Schema of its config',
    responses: { 200: { description: 'The catalog', schema: agentCatalogResponse } },
    handler: () => ({ agents: agentCatalog() }),
  }),

  route({
    method: 'get',
    path: '/agents/runs',
    operationId: 'listAgentRuns',
    tags,
    auth: 'bearer',
    summary: "The caller's agent runs, newest first, a page at a time (optionally of one agent)",
    query: listRunsQuerySchema,
    responses: { 200: { description: 'A page of runs and the total', schema: agentRunListResponse } },
    handler: async ({ user, query }, ctx) => {
      const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
      const { runs, total } = await ctx.repos.agents.listRuns(user.id, { ...query, beforeId });
      const page = pageOf(runs, query.limit, (run) => [run.id]);
      // `page`/`total` stay for offset clients; `nextCursor` is the paginated way through the list.
      return { runs: page.items.map(toRunView), page: query.page, limit: query.limit, total, nextCursor: page.nextCursor };
    },
  }),

  ...agentKindRoutes(
    'local',
    { create: createLocalAgentSchema, update: updateLocalAgentSchema },
    {
      Name: 'Local',
      list: { summary: "The caller's local-directory agents, newest first, in pages", schema: localAgentListResponse },
      view: localAgentView,
      create: {
        summary: 'Create a local-directory agent (its device reads the folders)',
        description: `${LOCAL_REFINED} ${TIER_LIMIT} ${AGENT_MODEL}`,
        example: {
          name: 'Meeting notes',
          deviceId: 'laptop-1',
          directoryPaths: ['/home/me/notes'],
          dataTypes: ['tasks', 'notes'],
          promptTemplate: 'Extract the action items and decisions from this file.',
          fileExtensions: ['.md', '.txt'],
          scheduleCron: '0 9 * * 1-5',
          timezone: 'Europe/Berlin',
        },
        created: 'The agent',
      },
      get: 'A local-directory agent (its owner only)',
      update: {
        summary: 'Change some fields of a local-directory agent',
        description: `At least one field. ${LOCAL_REFINED} A changed schedule, time zone or \`enabled\` recomputes \`nextRunAt\`. ${TIER_LIMIT} ${AGENT_MODEL}`,
        example: { name: 'Weekday notes', scheduleCron: '30 8 * * 1-5', timezone: 'America/New_York' },
      },
      remove: 'Delete a local-directory agent',
    },
  ),

  ...agentKindRoutes(
    'cloud',
    { create: createCloudAgentSchema, update: updateCloudAgentSchema },
    {
      Name: 'Cloud',
      list: { summary: "The caller's cloud agents (Gmail, Outlook, Teams), newest first, in pages", schema: cloudAgentListResponse },
      view: cloudAgentView,
      create: {
        summary: 'Create a cloud agent; connect its account afterwards through OAuth',
        description: `${CLOUD_REFINED} ${TIER_LIMIT} ${AGENT_MODEL}`,
        example: {
          provider: 'gmail',
          name: 'Inbox tasks',
          dataTypes: ['tasks'],
          promptTemplate: 'Extract the tasks this email asks of me.',
          scheduleCron: '0 * * * *',
          timezone: 'UTC',
          filterConfig: { labels: ['INBOX'], dateRange: { from: '2025-01-01' }, senders: ['boss@example.com'] },
        },
        created: 'The agent (`connected: false` until an account is connected)',
      },
      get: 'A cloud agent (its owner only)',
      update: {
        summary: 'Change some fields of a cloud agent (not its provider)',
        description: `At least one field. ${CLOUD_REFINED} A changed schedule, time zone or \`enabled\` recomputes \`nextRunAt\`. ${TIER_LIMIT} ${AGENT_MODEL}`,
        example: { promptTemplate: 'Extract deadlines and owners.', filterConfig: { senders: ['team@example.com'] } },
      },
      remove: 'Delete a cloud agent',
    },
  ),

  route({
    method: 'delete',
    path: '/agents/cloud/:id/connection',
    operationId: 'disconnectCloudAgent',
    tags,
    auth: 'bearer',
    summary: "Disconnect a cloud agent's account (its owner only)",
    description:
      'The agent keeps its settings and answers `connected: false`; its runs need a new connection (`GET /oauth/{provider}/authorize?agentId=`). ' +
      "The credential's sealed tokens are deleted when no other agent of yours uses them. Disconnecting an agent with no connection changes nothing. " +
      "Another user's agent answers 404.",
    params: agentIdParam,
    responses: { 200: { description: 'The agent, now without an account', schema: cloudAgentView } },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const agent = await ctx.repos.agents.detachCredential(user.id, params.id);
      if (!agent) throw notFound('Agent');
      return toAgentView({ kind: 'cloud', agent });
    },
  }),

  route({
    method: 'post',
    path: '/agents/:id/run',
    operationId: 'runAgent',
    tags,
    auth: 'bearer',
    summary: 'Queue a manual run of a local or cloud agent',
    description:
      "The run is logged in `GET /agents/runs`; a local agent's run waits (`waiting_device`) until its device is online. " +
      'A cloud agent without a connected account answers 409 `not_connected`, one whose connection was revoked 409 `reauth_required`; ' +
      'a cloud agent of a user whose plan lacks cloud agents answers 403 `tier_forbidden`.',
    params: agentIdParam,
    responses: { 202: { description: 'Queued', schema: agentRunQueuedResponse } },
    errors: [403, 404, 409, 429],
    handler: async ({ user, params }, ctx) => {
      const ref = await ctx.repos.agents.find(user.id, params.id);
      if (ref?.kind === 'cloud') await ctx.limits.requireFeature(user.id, 'cloudAgents');
      await ctx.usage.take('agentRunsPerMinute', user);
      return ctx.agents.runNow(user.id, params.id);
    },
  }),

  // Cancel: stops a run from any node; 202 while it is queued, waiting or running, else 409 not_running.
  route({
    method: 'post',
    path: '/agents/runs/:runId/cancel',
    operationId: 'cancelAgentRun',
    tags,
    auth: 'bearer',
    summary: 'Stop an agent run (its owner only), from any API node',
    description:
      'A run still queued never starts and one waiting for its device stops waiting; both end `cancelled` at once. A running run stops ' +
      'within moments: its model call and any device call it waits on are aborted, the suggestions already delivered stay (the run keeps ' +
      "`itemsProcessed` and `itemsCreated`), and it ends with status `cancelled` in `GET /agents/runs`. Another user's run answers 404; " +
      'a run that has ended 409 `not_running` (a cancel racing the end of the run may still answer 202 and find the run ended as it would have).',
    params: agentRunIdParam,
    responses: { 202: { description: 'The stop is under way', schema: agentRunCancelResponse } },
    errors: [404, 409],
    handler: ({ user, params }, ctx) => ctx.agents.cancelRun(user.id, params.runId),
  }),
];

import { agentsPageQuerySchema } from '../../routes/agent-routes';
import {
  createCloudAgentSchema,
  createLocalAgentSchema,
  listRunsQuerySchema,
  updateCloudAgentSchema,
  updateLocalAgentSchema,
} from '../../../schemas/agents';
import type { ApiOperation } from '../registry';
import {
  agentCatalogResponse,
  agentRunListResponse,
  agentRunQueuedResponse,
  cloudAgentListResponse,
  cloudAgentView,
  localAgentListResponse,
  localAgentView,
} from '../response-schemas';
import { agentIdParam } from './params';

const TIER_LIMIT = 'Creating or enabling an agent past the plan\'s limit of enabled agents (local and cloud together) answers 403 `tier_limit` (`details: {limit}`).';
const REFINED =
  'JSON Schema cannot state every check: `scheduleCron` must be a valid five-field cron (minute hour day month weekday), `timezone` an IANA zone (e.g. `Europe/Berlin`)';
const LOCAL_REFINED = `${REFINED}, each of \`directoryPaths\` an absolute path (POSIX or Windows) without \`..\` segments. Duplicate \`dataTypes\` are dropped; \`fileExtensions\` are lower-cased.`;
const CLOUD_REFINED = `${REFINED}, \`filterConfig.dateRange.from\` not after \`to\`. Duplicate \`dataTypes\` are dropped. Credentials are never part of the body: connect one through \`GET /oauth/{provider}/authorize?agentId=\`.`;

/** `agent-routes.ts`: the catalog, local and cloud agent configs, run logs and manual runs (SPEC §7). */
export const agentOperations: ApiOperation[] = [
  {
    method: 'get', path: '/agents/catalog', operationId: 'getAgentCatalog', tags: ['agents'], auth: 'bearer',
    summary: 'The agent types, each with the JSON Schema of its config',
    responses: { 200: { description: 'The catalog', schema: agentCatalogResponse } },
  },
  {
    method: 'get', path: '/agents/runs', operationId: 'listAgentRuns', tags: ['agents'], auth: 'bearer',
    summary: "The caller's agent runs, newest first, a page at a time (optionally of one agent)",
    query: listRunsQuerySchema,
    responses: { 200: { description: 'A page of runs and the total', schema: agentRunListResponse } },
  },
  {
    method: 'get', path: '/agents/local', operationId: 'listLocalAgents', tags: ['agents'], auth: 'bearer',
    summary: "The caller's local-directory agents, newest first, in pages",
    query: agentsPageQuerySchema,
    responses: { 200: { description: 'One page of agents; `nextCursor` goes back as `?cursor` (null on the last page)', schema: localAgentListResponse } },
    errors: [400],
  },
  {
    method: 'post', path: '/agents/local', operationId: 'createLocalAgent', tags: ['agents'], auth: 'bearer',
    summary: 'Create a local-directory agent (its device reads the folders)',
    description: `${LOCAL_REFINED} ${TIER_LIMIT}`,
    body: createLocalAgentSchema,
    bodyExample: {
      name: 'Meeting notes',
      deviceId: 'laptop-1',
      directoryPaths: ['/home/me/notes'],
      dataTypes: ['tasks', 'notes'],
      promptTemplate: 'Extract the action items and decisions from this file.',
      fileExtensions: ['.md', '.txt'],
      scheduleCron: '0 9 * * 1-5',
      timezone: 'Europe/Berlin',
    },
    responses: { 201: { description: 'The agent', schema: localAgentView } },
    errors: [403],
  },
  {
    method: 'get', path: '/agents/local/:id', operationId: 'getLocalAgent', tags: ['agents'], auth: 'bearer',
    summary: 'A local-directory agent (its owner only)',
    params: agentIdParam,
    responses: { 200: { description: 'The agent', schema: localAgentView } },
    errors: [404],
  },
  {
    method: 'put', path: '/agents/local/:id', operationId: 'updateLocalAgent', tags: ['agents'], auth: 'bearer',
    summary: 'Change some fields of a local-directory agent',
    description: `At least one field. ${LOCAL_REFINED} A changed schedule, time zone or \`enabled\` recomputes \`nextRunAt\`. ${TIER_LIMIT}`,
    params: agentIdParam,
    body: updateLocalAgentSchema,
    bodyExample: { name: 'Weekday notes', scheduleCron: '30 8 * * 1-5', timezone: 'America/New_York' },
    responses: { 200: { description: 'The agent', schema: localAgentView } },
    errors: [403, 404],
  },
  {
    method: 'delete', path: '/agents/local/:id', operationId: 'deleteLocalAgent', tags: ['agents'], auth: 'bearer',
    summary: 'Delete a local-directory agent',
    params: agentIdParam,
    responses: { 204: 'Deleted' },
    errors: [404],
  },
  {
    method: 'get', path: '/agents/cloud', operationId: 'listCloudAgents', tags: ['agents'], auth: 'bearer',
    summary: "The caller's cloud agents (Gmail, Outlook, Teams), newest first, in pages",
    query: agentsPageQuerySchema,
    responses: { 200: { description: 'One page of agents; `nextCursor` goes back as `?cursor` (null on the last page)', schema: cloudAgentListResponse } },
    errors: [400],
  },
  {
    method: 'post', path: '/agents/cloud', operationId: 'createCloudAgent', tags: ['agents'], auth: 'bearer',
    summary: 'Create a cloud agent; connect its account afterwards through OAuth',
    description: `${CLOUD_REFINED} ${TIER_LIMIT}`,
    body: createCloudAgentSchema,
    bodyExample: {
      provider: 'gmail',
      name: 'Inbox tasks',
      dataTypes: ['tasks'],
      promptTemplate: 'Extract the tasks this email asks of me.',
      scheduleCron: '0 * * * *',
      timezone: 'UTC',
      filterConfig: { labels: ['INBOX'], dateRange: { from: '2025-01-01' }, senders: ['boss@example.com'] },
    },
    responses: { 201: { description: 'The agent (`connected: false` until an account is connected)', schema: cloudAgentView } },
    errors: [403],
  },
  {
    method: 'get', path: '/agents/cloud/:id', operationId: 'getCloudAgent', tags: ['agents'], auth: 'bearer',
    summary: 'A cloud agent (its owner only)',
    params: agentIdParam,
    responses: { 200: { description: 'The agent', schema: cloudAgentView } },
    errors: [404],
  },
  {
    method: 'put', path: '/agents/cloud/:id', operationId: 'updateCloudAgent', tags: ['agents'], auth: 'bearer',
    summary: 'Change some fields of a cloud agent (not its provider)',
    description: `At least one field. ${CLOUD_REFINED} A changed schedule, time zone or \`enabled\` recomputes \`nextRunAt\`. ${TIER_LIMIT}`,
    params: agentIdParam,
    body: updateCloudAgentSchema,
    bodyExample: { promptTemplate: 'Extract deadlines and owners.', filterConfig: { senders: ['team@example.com'] } },
    responses: { 200: { description: 'The agent', schema: cloudAgentView } },
    errors: [403, 404],
  },
  {
    method: 'delete', path: '/agents/cloud/:id', operationId: 'deleteCloudAgent', tags: ['agents'], auth: 'bearer',
    summary: 'Delete a cloud agent',
    params: agentIdParam,
    responses: { 204: 'Deleted' },
    errors: [404],
  },
  {
    method: 'post', path: '/agents/:id/run', operationId: 'runAgent', tags: ['agents'], auth: 'bearer',
    summary: 'Queue a manual run of a local or cloud agent',
    description:
      'The run is logged in `GET /agents/runs`; a local agent\'s run waits (`waiting_device`) until its device is online. ' +
      'A cloud agent without a connected account answers 409 `not_connected`, one whose connection was revoked 409 `reauth_required`.',
    params: agentIdParam,
    responses: { 202: { description: 'Queued', schema: agentRunQueuedResponse } },
    errors: [404, 409, 429],
  },
];

import { z } from 'zod';
import {
  agentflowDefinitionSchema,
  chatflowDefinitionSchema,
  createFlowSchema,
  executeFlowSchema,
  flowVersionParam,
  updateFlowSchema,
} from '../../flows/definition';
import { pageQuerySchema } from '../../lib/pagination';
import { toExecutionView } from '../../models/flow-executions-repository';
import { toFlowVersionView, toFlowView } from '../../models/flows-repository';
import { uuidParam } from '../../schemas/api';
import { routesWith, type ParamSpec } from '../route';
import { lastEventIdQuery, lastEventSeq } from '../sse';
import type { ApiContext } from '../context';
import type { Repositories } from '../../models';
import type { FlowRow } from '../../models/schema';

/** The flow routes' port: the flow and execution services, the executions repository, the stream door and sources. */
export type FlowPorts = Pick<ApiContext, 'flows' | 'flowExecutions' | 'streams' | 'sources' | 'limits'> & {
  repos: Pick<Repositories, 'flowExecutions'>;
};
const route = routesWith<FlowPorts>();

/** `GET /flows`: `?limit` 1–200 (default 50), `?cursor`. */
export const flowsPageQuerySchema = pageQuerySchema(50);

const uuid = (description: string, resource: string) =>
  ({ schema: uuidParam, description: `${description}. A malformed id answers 404, like a missing one.`, resource }) satisfies ParamSpec;
/** `:id` of every `/flows/:id…` route (flows-chat and embeds reuse it). */
export const flowIdParam = { id: uuid('Flow id', 'Flow') };
export const executionParams = { ...flowIdParam, executionId: uuid('Execution id', 'Execution') };
export const versionParams = {
  ...flowIdParam,
  version: {
    schema: flowVersionParam,
    description: 'Version number, from 1. Not a number, or one the flow lacks, answers 404.',
    resource: 'Flow version',
  },
} satisfies Record<string, ParamSpec>;
/** `GET /flows/:id/versions`: `?limit` 1–200 (default 50), `?cursor`. */
export const versionsPageQuerySchema = pageQuerySchema(50);
/** `GET /flows/:id/executions`: `?limit` 1–200 (default 50), `?cursor`. */
export const executionsPageQuerySchema = pageQuerySchema(50);

const timestamp = z.iso.datetime();
export const flowView = z.object({
  id: z.uuid(),
  type: z.enum(['chatflow', 'agentflow']),
  name: z.string(),
  definition: z
    .union([chatflowDefinitionSchema, agentflowDefinitionSchema])
    .describe("The published version's, by the flow's `type` (defaults filled in, e.g. a chatflow's `historyWindow`)"),
  publishedVersion: z.number().int().describe('The version new executions and chat turns run'),
  latestVersion: z.number().int().describe('The newest version saved (a draft when greater than `publishedVersion`)'),
  createdAt: timestamp,
  updatedAt: timestamp,
});
const versionSummary = z.object({
  version: z.number().int(),
  published: z.boolean().describe("Whether it is the flow's published version"),
  createdAt: timestamp,
});
export const flowVersionResponse = z.object({
  version: versionSummary.extend({ definition: flowView.shape.definition.describe('The definition as saved in this version') }),
});
export const flowVersionListResponse = z.object({ versions: z.array(versionSummary), nextCursor: z.string().nullable() });
export const flowResponse = z.object({ flow: flowView });
export const flowListResponse = z.object({ flows: z.array(flowView), nextCursor: z.string().nullable() });

const usageView = z.object({ inputTokens: z.number(), outputTokens: z.number(), costUsd: z.number() });
const errorView = z.object({ code: z.string(), message: z.string() }).nullable();
const nodeView = z.object({
  id: z.string(),
  status: z.enum(['pending', 'running', 'completed', 'failed', 'skipped', 'cancelled']),
  output: z.unknown().describe('Text, or the JSON value for a node with an `outputSchema`; null until it completed'),
  error: errorView,
  attempts: z.number().int(),
  reused: z.boolean().describe("A replay's node taken over from the execution it replays: its committed output, not run again"),
  usage: usageView.extend({ provider: z.string().nullable(), model: z.string().nullable() }),
  startedAt: timestamp.nullable(),
  completedAt: timestamp.nullable(),
});
const executionSummary = z.object({
  id: z.uuid(),
  flowId: z.uuid(),
  flowVersion: z.number().int().nullable().describe('The flow version it runs (null: started before flows kept versions)'),
  status: z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']),
  input: z.record(z.string(), z.unknown()),
  output: z.unknown().describe("The `output` node's output once completed, else null"),
  error: errorView,
  usage: usageView.describe('Summed over every node and model call (repairs and cancelled calls included)'),
  replayOf: z
    .object({ executionId: z.uuid(), fromNode: z.string() })
    .nullable()
    .describe('A replay: the execution it replays and the node it started from; null otherwise'),
  createdAt: timestamp,
  startedAt: timestamp.nullable(),
  completedAt: timestamp.nullable(),
});
export const executionResponse = z.object({
  execution: executionSummary.extend({ nodes: z.array(nodeView).describe('In definition order') }),
});
export const executionListResponse = z.object({ executions: z.array(executionSummary), nextCursor: z.string().nullable() });
export const executionStartedResponse = z.object({ executionId: z.uuid() });
export const executionCancelResponse = z.object({ executionId: z.uuid(), status: z.literal('cancelling') });

const EVENTS =
  'Events (`id:` a sequence from 1 per execution, `event:` the name, `data` JSON whose `type` is the name and which carries `executionId`): ' +
  '`execution_started {flowId, replayOf?}`, `node_started {nodeId, attempt}`, `tool_called {nodeId, tool, kind: device|http|mcp, args, result, ok, truncated?, startedAt, durationMs, approvalId?}` (every tool call of a node), ' +
  '`approval_requested {nodeId, approvalId, tool, expiresAt}` (a dangerous device tool call waits for the owner: approved it runs, rejected or expired the node fails `approval_rejected` / `approval_expired`), ' +
  "`input_requested {nodeId, inputId, expiresAt}` (a human_input node waits for a recipient's answer at `POST /hitl/inputs/:id/answer`), " +
  '`node_completed {nodeId, output, usage, reused?}` (`reused`: a replay took the output over), `node_failed {nodeId, error}`, `node_skipped {nodeId}` (no branch taken leads to it), ' +
  '`item_completed {nodeId, index, output}` (one element of a foreach or iteration of a loop), `subflow_started {nodeId, childExecutionId}`, then one of ' +
  '`execution_completed {output, usage}`, `execution_failed {error}`, `cancelled`. Nodes whose inputs are ready run in parallel.';
const EXECUTE =
  'Runs the agentflow on the `flows` queue. `input` holds the values of its `{{input.<key>}}` templates: a key the prompts read and the input lacks is a 400 `missing_input` ' +
  '(`details: {missing: [key]}`); an input over 32,000 characters of JSON is a 400 `input_too_large`, and one that fills a prompt past 64,000 characters a 400 `prompt_too_large` (no model is called). ' +
  'A chatflow answers 409 `not_an_agentflow`. Limited per user by the tier (`flowExecutionsPerMinute`, 429 with `Retry-After`); ' +
  'a plan without flows (or, for a flow on a local model, without local models) is 403 `tier_forbidden`. ' +
  'It runs the published version, or the saved `version` given (404 when the flow lacks it), and keeps running that version whatever is published meanwhile.';
const INPUT_EXAMPLE = { input: { topic: 'octopuses' } };

const DEFINITIONS =
  'A chatflow definition is `{systemPrompt, model?: {provider, model}, temperature? (0-2), historyWindow? (1-100, default 20)}`. ' +
  'An agentflow definition is `{nodes: [{id, prompt, model?, dependsOn?: [id], outputSchema?: JSON Schema}], output: id}`: a DAG of at most 50 nodes ' +
  'with unique ids (letters, digits, `_`, `-`), `dependsOn` and `output` naming existing nodes, no cycle, prompts of at most 8,000 characters and 20 `{{…}}` references, ' +
  'an `outputSchema` without `pattern` or `patternProperties` (regular expressions are not run on model answers). ' +
  'A prompt is a template over `{{input.<key>}}` and `{{nodes.<id>.output}}`, and a node may only read the output of one of its ancestors. ' +
  'A node may have a `type` besides `prompt` (the default): `condition {branches: [{name, when, to: [id]}], else?: [id]}` (expressions such as ' +
  '`input.score >= 50 and not (nodes.a.output.flag == true)`), `router {prompt, branches: [{name, description?, to}]}` (the model picks a branch), ' +
  '`foreach {items: "input.<key>" | "nodes.<id>.output…", prompt with {{item}} and {{index}}, concurrency? (1-10, default 3)}`, ' +
  '`loop {prompt with {{loop.previous}} and {{loop.iteration}}, maxIterations (1-20, required), until?}` and `subflow {flowId, version?, input: {key: template}}` ' +
  '(another agentflow of the owner run as a child execution). Nodes no taken branch leads to end `skipped`. The graph must stay acyclic (a loop repeats inside its node); ' +
  'a node depending on a condition or router must be one of its targets; a foreach over a value the definition shows is not a list, and a subflow missing inputs its flow reads, are refused. ' +
  "A node may list `tools` (up to 20): device tools, run on the flow's `deviceId` (a device of its owner; required when a node lists one), and names of the flow's " +
  '`httpTools: [{name, description, method: GET|POST, url}]`, whose URLs must be on one of its `allowedOrigins` (up to 20 each). ' +
  'Every problem is a 400 `validation_failed` whose `details` are `[{path, message}]` from the body (`definition.nodes.2.dependsOn.0`); ' +
  'a `model` this deployment does not serve is a 400 `unknown_model` with the same details. ' +
  'Creating a flow on a plan without flows is 403 `tier_forbidden`, and so is saving or running a flow whose `model` is a local provider ' +
  '(`ollama`, `lmstudio`, `vllm`) on a plan without local models.';

const AGENTFLOW_EXAMPLE = {
  type: 'agentflow',
  name: 'Research brief',
  definition: {
    nodes: [
      { id: 'facts', prompt: 'List three facts about {{input.topic}}' },
      { id: 'summary', prompt: 'Summarize: {{nodes.facts.output}}', dependsOn: ['facts'] },
      { id: 'french', prompt: 'Translate to French: {{nodes.summary.output}}', dependsOn: ['summary'] },
    ],
    output: 'french',
  },
};

/** A definition schema as JSON Schema, in the form a client sends (defaults optional). */
const definitionJson = (schema: z.ZodType) => {
  const { $schema: _, ...json } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;
  return json;
};

/**
 * The documented `definition` of a request: the same record the body is parsed with (each flow
 * type's definition is then checked by `validateDefinition`, so a problem's path stays
 * `definition.nodes.2...` rather than a union's), described as one of the two definition schemas.
 * The agentflow comes first: it is the body's example.
 */
const documentedDefinition = <S extends z.ZodType>(record: S): S =>
  record.meta({
    description: "An agentflow definition for `type: 'agentflow'`, a chatflow definition for `type: 'chatflow'`",
    oneOf: [definitionJson(agentflowDefinitionSchema), definitionJson(chatflowDefinitionSchema)],
  });
const createFlowBody = createFlowSchema.extend({ definition: documentedDefinition(createFlowSchema.shape.definition) });
// `safeExtend` keeps the body's refinement (at least one of name, definition).
const updateFlowBody = updateFlowSchema.safeExtend({ definition: documentedDefinition(updateFlowSchema.shape.definition) });

const tags = ['flows'];

/** The owner's flow as an execution runs it: its published version, or the saved `version` asked for (404 when missing). */
async function flowToRun(ctx: FlowPorts, userId: string, flowId: string, version: number | undefined): Promise<FlowRow> {
  if (version === undefined) return ctx.flows.get(userId, flowId);
  const found = await ctx.flows.version(userId, flowId, version);
  return { ...found.flow, definition: found.version.definition, publishedVersion: found.version.version };
}

/** Flows CRUD, declared once (see `../route.ts`): the caller's own flows only; another user's answers 404. */
export const flowRoutes = [
  route({
    method: 'get',
    path: '/models',
    operationId: 'listModels',
    tags,
    auth: 'bearer',
    summary: 'The models this deployment serves, as the `{provider, model}` a flow, node or chat request may name',
    responses: {
      200: {
        description: 'Every configured provider:model pair (the offline demo model is `demo:demo`)',
        schema: z.object({ models: z.array(z.object({ provider: z.string(), model: z.string() })) }),
      },
    },
    handler: (_input, ctx) => ({ models: ctx.flows.models() }),
  }),

  route({
    method: 'post',
    path: '/flows',
    operationId: 'createFlow',
    tags,
    auth: 'bearer',
    summary: 'Save a chatflow or an agentflow',
    description: DEFINITIONS,
    body: createFlowBody,
    bodyExample: AGENTFLOW_EXAMPLE,
    responses: { 201: { description: 'The flow', schema: flowResponse } },
    errors: [403],
    handler: async (input, ctx) => {
      await ctx.limits.requireFeature(input.user.id, 'flows');
      await ctx.limits.requireFlowModels(input.user.id, input.body.definition);
      return { flow: toFlowView(await ctx.flows.create(input.user.id, input.body)) };
    },
  }),

  route({
    method: 'get',
    path: '/flows',
    operationId: 'listFlows',
    tags,
    auth: 'bearer',
    summary: "The caller's flows, newest first, in pages",
    description: '`?limit` 1–200 (default 50); pass `nextCursor` as `?cursor` for older flows (null on the last page).',
    query: flowsPageQuerySchema,
    responses: { 200: { description: 'One page of flows', schema: flowListResponse } },
    handler: async ({ user, query }, ctx) => {
      const page = await ctx.flows.list(user.id, query);
      return { flows: page.items.map(toFlowView), nextCursor: page.nextCursor };
    },
  }),

  route({
    method: 'get',
    path: '/flows/:id',
    operationId: 'getFlow',
    tags,
    auth: 'bearer',
    summary: 'A flow (its owner only)',
    params: flowIdParam,
    responses: { 200: { description: 'The flow', schema: flowResponse } },
    errors: [404],
    handler: async ({ user, params }, ctx) => ({ flow: toFlowView(await ctx.flows.get(user.id, params.id)) }),
  }),

  route({
    method: 'patch',
    path: '/flows/:id',
    operationId: 'updateFlow',
    tags,
    auth: 'bearer',
    summary: 'Rename a flow or save a new version of its definition (its type never changes)',
    description:
      `At least one of \`name\`, \`definition\`. A \`definition\` is saved as the next version (versions are never changed) and published at once, ` +
      `unless \`publish: false\` keeps it as a draft (\`latestVersion\` moves, what runs does not). ${DEFINITIONS} ` +
      'Executions already started and existing embeds keep the version they have.',
    params: flowIdParam,
    body: updateFlowBody,
    bodyExample: { name: 'Renamed flow' },
    responses: { 200: { description: 'The flow', schema: flowResponse } },
    errors: [403, 404],
    handler: async (input, ctx) => {
      const { user, params } = input;
      await ctx.flows.get(user.id, params.id);
      await ctx.limits.requireFlowModels(user.id, input.body.definition);
      return { flow: toFlowView(await ctx.flows.update(user.id, params.id, input.body)) };
    },
  }),

  route({
    method: 'delete',
    path: '/flows/:id',
    operationId: 'deleteFlow',
    tags,
    auth: 'bearer',
    summary: 'Delete a flow with its executions',
    params: flowIdParam,
    responses: { 204: 'Deleted' },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      await ctx.flows.remove(user.id, params.id);
    },
  }),

  route({
    method: 'get',
    path: '/flows/:id/versions',
    operationId: 'listFlowVersions',
    tags,
    auth: 'bearer',
    summary: "A flow's saved versions, newest first, in pages",
    description:
      'Every save of a definition is a version, numbered from 1 and never changed. `?limit` 1–200 (default 50); pass `nextCursor` as `?cursor` ' +
      'for older versions (null on the last page). Definitions are left out: read one version for it.',
    params: flowIdParam,
    query: versionsPageQuerySchema,
    responses: { 200: { description: 'One page of versions', schema: flowVersionListResponse } },
    errors: [404],
    handler: async ({ user, params, query }, ctx) => {
      const page = await ctx.flows.versions(user.id, params.id, query);
      return { versions: page.items.map((row) => toFlowVersionView(row, page.flow)), nextCursor: page.nextCursor };
    },
  }),

  route({
    method: 'get',
    path: '/flows/:id/versions/:version',
    operationId: 'getFlowVersion',
    tags,
    auth: 'bearer',
    summary: 'One saved version of a flow, with its definition',
    params: versionParams,
    responses: { 200: { description: 'The version', schema: flowVersionResponse } },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const found = await ctx.flows.version(user.id, params.id, params.version);
      return { version: { ...toFlowVersionView(found.version, found.flow), definition: found.version.definition } };
    },
  }),

  route({
    method: 'post',
    path: '/flows/:id/versions/:version/publish',
    operationId: 'publishFlowVersion',
    tags,
    auth: 'bearer',
    summary: 'Publish a saved version (publishing an older one rolls back)',
    description:
      'New executions and chat turns run it from now on; executions already started and embeds pinned to a version keep theirs. ' +
      'Its models are checked again: one this deployment no longer serves is a 400 `unknown_model`, a local model on a plan without local models a 403 `tier_forbidden`.',
    params: versionParams,
    responses: { 200: { description: 'The flow, with the version published', schema: flowResponse } },
    errors: [403, 404],
    handler: async ({ user, params }, ctx) => {
      const found = await ctx.flows.version(user.id, params.id, params.version);
      await ctx.limits.requireFlowModels(user.id, found.version.definition);
      return { flow: toFlowView(await ctx.flows.publish(user.id, params.id, params.version)) };
    },
  }),

  route({
    method: 'post',
    path: '/flows/:id/execute',
    operationId: 'executeFlow',
    tags,
    auth: 'bearer',
    summary: 'Execute an agentflow in the background',
    description: `${EXECUTE} Follow it at \`GET /flows/{id}/executions/{executionId}/events\` or read it at \`GET /flows/{id}/executions/{executionId}\`.`,
    params: flowIdParam,
    body: executeFlowSchema,
    bodyExample: INPUT_EXAMPLE,
    responses: { 202: { description: 'Queued', schema: executionStartedResponse } },
    errors: [403, 404, 409, 429, 503],
    handler: async (input, ctx) => {
      await ctx.limits.requireFeature(input.user.id, 'flows');
      const flow = await flowToRun(ctx, input.user.id, input.params.id, input.body.version);
      await ctx.limits.requireFlowModels(input.user.id, flow.definition);
      return ctx.flowExecutions.start(input.user, flow, input.body.input);
    },
  }),

  route({
    method: 'post',
    path: '/flows/:id/execute/stream',
    operationId: 'executeFlowStream',
    tags,
    auth: 'bearer',
    summary: 'Execute an agentflow and stream its events (SSE)',
    description: `${EXECUTE} ${EVENTS} The execution goes on if the client leaves; resume at \`GET /flows/{id}/executions/{executionId}/events\` with \`Last-Event-ID\`.`,
    params: flowIdParam,
    body: executeFlowSchema,
    bodyExample: INPUT_EXAMPLE,
    responses: {
      200: { description: 'The event stream', contentType: 'text/event-stream', headers: { 'X-Execution-Id': 'The execution id' } },
    },
    errors: [403, 404, 409, 429, 503],
    handler: async (input, ctx) => {
      const { user, params, req, res } = input;
      await ctx.limits.requireFeature(user.id, 'flows');
      const flow = await flowToRun(ctx, user.id, params.id, input.body.version);
      await ctx.limits.requireFlowModels(user.id, flow.definition);
      const body = input.body;
      // The stream slot is taken before the execution starts: a refused stream (429) starts nothing.
      await ctx.streams.serve(req, res, {
        userId: user.id,
        context: { flowId: flow.id },
        prepare: async () => {
          const { executionId } = await ctx.flowExecutions.start(user, flow, body.input);
          res.setHeader('X-Execution-Id', executionId);
          return ctx.sources.flowExecution(executionId, 0);
        },
      });
    },
  }),

  route({
    method: 'get',
    path: '/flows/:id/executions',
    operationId: 'listFlowExecutions',
    tags,
    auth: 'bearer',
    summary: "A flow's executions, newest first, in pages",
    description:
      '`?limit` 1–200 (default 50); pass `nextCursor` as `?cursor` for older executions (null on the last page). Nodes are left out: read one execution for them.',
    params: flowIdParam,
    query: executionsPageQuerySchema,
    responses: { 200: { description: 'One page of executions', schema: executionListResponse } },
    errors: [404],
    handler: async (input, ctx) => {
      const flow = await ctx.flows.get(input.user.id, input.params.id);
      const page = await ctx.flowExecutions.list(flow.id, input.query);
      return { executions: page.items.map((row) => toExecutionView(row)), nextCursor: page.nextCursor };
    },
  }),

  route({
    method: 'get',
    path: '/flows/:id/executions/:executionId',
    operationId: 'getFlowExecution',
    tags,
    auth: 'bearer',
    summary: 'An execution with the status, output, error, attempts, usage and timings of each node',
    params: executionParams,
    responses: { 200: { description: 'The execution', schema: executionResponse } },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const flow = await ctx.flows.get(user.id, params.id);
      const { execution, nodes } = await ctx.flowExecutions.getWithNodes(flow.id, params.executionId);
      return { execution: toExecutionView(execution, nodes) };
    },
  }),

  route({
    method: 'get',
    path: '/flows/:id/executions/:executionId/events',
    operationId: 'streamFlowExecutionEvents',
    tags,
    auth: 'bearer',
    summary: "An execution's events (SSE): replayed from the start or after `Last-Event-ID`, then live until the end",
    description: `${EVENTS} A finished execution replays what exists and closes.`,
    params: executionParams,
    headers: { 'Last-Event-ID': { description: 'The `id:` of the last event received: the stream resumes after it' } },
    query: lastEventIdQuery,
    responses: { 200: { description: 'The event stream', contentType: 'text/event-stream' } },
    errors: [404, 429],
    handler: async (input, ctx) => {
      const { user, params, req, res } = input;
      const flow = await ctx.flows.get(user.id, params.id);
      const execution = await ctx.flowExecutions.get(flow.id, params.executionId);
      const afterSeq = lastEventSeq(req.get('Last-Event-ID') ?? input.query.lastEventId);
      await ctx.streams.serve(req, res, {
        userId: user.id,
        context: { flowId: flow.id, executionId: execution.id },
        prepare: async () => ctx.sources.flowExecution(execution.id, afterSeq),
      });
    },
  }),

  route({
    method: 'post',
    path: '/flows/:id/executions/:executionId/cancel',
    operationId: 'cancelFlowExecution',
    tags,
    auth: 'bearer',
    summary: 'Stop an execution',
    description:
      'While queued or running: 202, the model calls of its running nodes are aborted, nodes not yet run become `cancelled`, and its stream ends with `cancelled` (replayed to resumed streams). Once ended: 409 `not_running`.',
    params: executionParams,
    responses: { 202: { description: 'Cancelling', schema: executionCancelResponse } },
    errors: [404, 409],
    handler: async ({ user, params }, ctx) => {
      const flow = await ctx.flows.get(user.id, params.id);
      return ctx.flowExecutions.cancel(flow.id, params.executionId, user.id);
    },
  }),
];

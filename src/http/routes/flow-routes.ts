import { z } from 'zod';
import { createFlowSchema, updateFlowSchema } from '../../flows/definition';
import { pageQuerySchema } from '../../lib/pagination';
import { toFlowView } from '../../models/flows-repository';
import { uuidParam } from '../../schemas/api';
import { defineRoute, type ParamSpec } from '../route';

/** `GET /flows`: `?limit` 1–200 (default 50), `?cursor`. */
export const flowsPageQuerySchema = pageQuerySchema(50);

const uuid = (description: string, resource: string) =>
  ({ schema: uuidParam, description: `${description}. A malformed id answers 404, like a missing one.`, resource }) satisfies ParamSpec;
/** `:id` of every `/flows/:id…` route (flows-chat and embeds reuse it). */
export const flowIdParam = { id: uuid('Flow id', 'Flow') };

const timestamp = z.iso.datetime();
export const flowView = z.object({
  id: z.uuid(),
  type: z.enum(['chatflow', 'agentflow']),
  name: z.string(),
  definition: z.record(z.string(), z.unknown()).describe("As saved (defaults filled in, e.g. a chatflow's `historyWindow`)"),
  createdAt: timestamp,
  updatedAt: timestamp,
});
export const flowResponse = z.object({ flow: flowView });
export const flowListResponse = z.object({ flows: z.array(flowView), nextCursor: z.string().nullable() });

const DEFINITIONS =
  'A chatflow definition is `{systemPrompt, model?: {provider, model}, temperature? (0-2), historyWindow? (1-100, default 20)}`. ' +
  'An agentflow definition is `{nodes: [{id, prompt, model?, dependsOn?: [id], outputSchema?: JSON Schema}], output: id}`: a DAG of at most 50 nodes ' +
  'with unique ids (letters, digits, `_`, `-`), `dependsOn` and `output` naming existing nodes, no cycle, prompts of at most 8,000 characters. ' +
  'A prompt is a template over `{{input.<key>}}` and `{{nodes.<id>.output}}`, and a node may only read the output of one of its ancestors. ' +
  'Every problem is a 400 `validation_failed` whose `details` are `[{path, message}]` from the body (`definition.nodes.2.dependsOn.0`); ' +
  'a `model` this deployment does not serve is a 400 `unknown_model` with the same details.';

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

const tags = ['flows'];

/** Flows CRUD (SPEC §13), declared once (see `../route.ts`): the caller's own flows only; another user's answers 404. */
export const flowRoutes = [
  defineRoute({
    method: 'post', path: '/flows', operationId: 'createFlow', tags, auth: 'bearer',
    summary: 'Save a chatflow or an agentflow',
    description: DEFINITIONS,
    body: createFlowSchema,
    bodyExample: AGENTFLOW_EXAMPLE,
    responses: { 201: { description: 'The flow', schema: flowResponse } },
    handler: async ({ user, body }, ctx) => ({ flow: toFlowView(await ctx.flows.create(user.id, body)) }),
  }),

  defineRoute({
    method: 'get', path: '/flows', operationId: 'listFlows', tags, auth: 'bearer',
    summary: "The caller's flows, newest first, in pages",
    description: '`?limit` 1–200 (default 50); pass `nextCursor` as `?cursor` for older flows (null on the last page).',
    query: flowsPageQuerySchema,
    responses: { 200: { description: 'One page of flows', schema: flowListResponse } },
    handler: async ({ user, query }, ctx) => {
      const page = await ctx.flows.list(user.id, query);
      return { flows: page.items.map(toFlowView), nextCursor: page.nextCursor };
    },
  }),

  defineRoute({
    method: 'get', path: '/flows/:id', operationId: 'getFlow', tags, auth: 'bearer',
    summary: 'A flow (its owner only)',
    params: flowIdParam,
    responses: { 200: { description: 'The flow', schema: flowResponse } },
    errors: [404],
    handler: async ({ user, params }, ctx) => ({ flow: toFlowView(await ctx.flows.get(user.id, params.id)) }),
  }),

  defineRoute({
    method: 'patch', path: '/flows/:id', operationId: 'updateFlow', tags, auth: 'bearer',
    summary: 'Rename a flow or replace its definition (its type never changes)',
    description: `At least one of \`name\`, \`definition\`. ${DEFINITIONS} Executions already started keep the definition they started with.`,
    params: flowIdParam,
    body: updateFlowSchema,
    bodyExample: { name: 'Renamed flow' },
    responses: { 200: { description: 'The flow', schema: flowResponse } },
    errors: [404],
    handler: async (input, ctx) => {
      const { user, params } = input;
      await ctx.flows.get(user.id, params.id);
      return { flow: toFlowView(await ctx.flows.update(user.id, params.id, input.body)) };
    },
  }),

  defineRoute({
    method: 'delete', path: '/flows/:id', operationId: 'deleteFlow', tags, auth: 'bearer',
    summary: 'Delete a flow with its executions',
    params: flowIdParam,
    responses: { 204: 'Deleted' },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      await ctx.flows.remove(user.id, params.id);
    },
  }),
];

import { z } from 'zod';
import { replayFlowSchema } from '../../flows/flow-replay';
import { routesWith } from '../route';
import type { ApiContext } from '../context';
import { executionParams } from './flow-routes';

/** The replay routes' port: the replays, the plan's gates, the stream door and sources. */
export type FlowReplayPorts = Pick<ApiContext, 'flowReplays' | 'limits' | 'streams' | 'sources'>;
const route = routesWith<FlowReplayPorts>();

export const replayStartedResponse = z.object({
  executionId: z.uuid().describe('The replay: a new execution of the flow'),
  flowVersion: z.number().int().describe('The version it runs: a new draft when the changes changed the definition'),
  draft: z.boolean().describe('Whether that version is not the published one (publish it to make it the flow)'),
  reusedNodes: z.array(z.string()).describe('The nodes taken over from the execution: their outputs as committed, no model call'),
});

const tags = ['flows'];

const REPLAY =
  'Re-runs an ended execution from `fromNode` as a NEW execution: the node and every node downstream of it run again (so does any node that had not ' +
  'completed), every other node is taken over with the output the execution committed — no model call, no cost, `reused: true` on the node and its ' +
  '`node_completed` event. `changes` may give the node a new `prompt` or `model`, a subflow node new `nodeInput` templates, and the execution ' +
  'new `input` values (laid over its input key by key). A changed definition is checked as a save is and kept as a new draft version of the ' +
  'flow (`flowVersion`), never published: compare the replay with the original, then publish the winner at ' +
  '`POST /flows/{id}/versions/{version}/publish`. Refused with nothing saved or run: an execution still running (409 `execution_running`), a node ' +
  'the execution lacks or a change that makes the definition invalid (400 naming the node: `details[].nodeId`, `path` `fromNode` or ' +
  '`changes.<field>`), a node whose upstream did not complete or that was skipped (409 `node_not_reached`), an input change read by a node that ' +
  'would be reused (400 `changes.input.<key>`). It counts as an execution (`flowExecutionsPerMinute`) and reserves its first call like one.';
const REPLAY_EXAMPLE = { fromNode: 'summary', changes: { prompt: 'Summarize in one sentence: {{nodes.facts.output}}' } };

/** Replays of ended agentflow executions from one of their nodes (owner only; another user's execution is 404). */
export const flowReplayRoutes = [
  route({
    method: 'post',
    path: '/flows/:id/executions/:executionId/replay',
    operationId: 'replayFlowExecution',
    tags,
    auth: 'bearer',
    summary: 'Replay an ended execution from one of its nodes, with changes, as a draft version',
    description: `${REPLAY} Follow it at \`GET /flows/{id}/executions/{executionId}/events\`.`,
    params: executionParams,
    body: replayFlowSchema,
    bodyExample: REPLAY_EXAMPLE,
    responses: { 202: { description: 'Queued', schema: replayStartedResponse } },
    errors: [403, 404, 409, 422, 429, 503],
    handler: async (input, ctx) => {
      const { user, params } = input;
      await ctx.limits.requireFeature(user.id, 'flows');
      const plan = await ctx.flowReplays.plan(user.id, params.id, params.executionId, () => input.body);
      await ctx.limits.requireFlowModels(user.id, plan.definition);
      return ctx.flowReplays.start(user, plan);
    },
  }),

  route({
    method: 'post',
    path: '/flows/:id/executions/:executionId/replay/stream',
    operationId: 'replayFlowExecutionStream',
    tags,
    auth: 'bearer',
    summary: "Replay an ended execution from one of its nodes and stream the replay's events (SSE)",
    description:
      `${REPLAY} The stream is the replay's: \`execution_started {flowId, replayOf: {executionId, fromNode}}\`, a \`node_completed\` ` +
      '(`reused: true`) or `node_skipped` per reused node, then the nodes that run. The replay goes on if the client leaves; resume at ' +
      '`GET /flows/{id}/executions/{executionId}/events` with `Last-Event-ID`.',
    params: executionParams,
    body: replayFlowSchema,
    bodyExample: REPLAY_EXAMPLE,
    responses: {
      200: {
        description: 'The event stream',
        contentType: 'text/event-stream',
        headers: { 'X-Execution-Id': 'The replay execution id', 'X-Flow-Version': 'The flow version it runs' },
      },
    },
    errors: [403, 404, 409, 422, 429, 503],
    handler: async (input, ctx) => {
      const { user, params, req, res } = input;
      await ctx.limits.requireFeature(user.id, 'flows');
      const plan = await ctx.flowReplays.plan(user.id, params.id, params.executionId, () => input.body);
      await ctx.limits.requireFlowModels(user.id, plan.definition);
      // The stream slot is taken before the replay starts: a refused stream (429) starts nothing.
      await ctx.streams.serve(req, res, {
        userId: user.id,
        context: { flowId: plan.flow.id },
        prepare: async () => {
          const started = await ctx.flowReplays.start(user, plan);
          res.setHeader('X-Execution-Id', started.executionId);
          res.setHeader('X-Flow-Version', String(started.flowVersion));
          return ctx.sources.flowExecution(started.executionId, 0);
        },
      });
    },
  }),
];

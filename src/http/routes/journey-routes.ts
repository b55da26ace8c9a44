import { z } from 'zod';
import { JOURNEY_AGENT_TYPES, JOURNEY_DATA_TYPES, MAX_ANSWER_CHARS } from '../../agents/journey-script';
import type { ApiContext } from '../context';
import { journeyReplyResponse, journeyViewResponse } from '../openapi/response-schemas';
import { routesWith } from '../route';
import type { UsagePorts } from './shared';

/** The journey routes' port: only the journey service and the assistant queue's events (plus the usage limits). */
export type JourneyPorts = { journeys: Pick<ApiContext['journeys'], 'start' | 'message' | 'view' | 'cancel'> } & {
  queues: Pick<ApiContext['queues'], 'events'>;
} & UsagePorts;
const route = routesWith<JourneyPorts>();

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

/** `GET /agents/journey/:sessionId`: a malformed id cannot name a session, same answer as a missing one. */
const sessionParam = {
  sessionId: {
    schema: z.uuid(),
    description: 'Journey session id (from start). A malformed id answers 404, like a missing or expired one.',
    resource: 'Journey session',
  },
};

/** `POST /agents/journey/:sessionId/cancel` answers 202 with this while the stop is under way. */
export const journeyCancelResponse = z.object({ sessionId: z.uuid(), status: z.literal('cancelling') });

const tags = ['agents'];

/**
 * The agent setup journey: a guided conversation that ends with a prompt template
 * for an extraction agent. Listed before the other `/agents/...` routes so `/agents/journey/*` is
 * never read as an agent id.
 */
export const journeyRoutes = [
  route({
    method: 'post',
    path: '/agents/journey/start',
    operationId: 'startAgentJourney',
    tags,
    auth: 'bearer',
    summary: 'Start a guided conversation that ends with a prompt template for an extraction agent',
    description: 'Answers with the first question at once (no model call). Sessions expire after a period without activity.',
    body: journeyStartSchema,
    responses: { 201: { description: 'The session and its first question', schema: journeyReplyResponse } },
    errors: [429],
    handler: async ({ user, body }, ctx) => {
      await ctx.usage.take('journeyPerMinute', user);
      return ctx.journeys.start(user.id, body);
    },
  }),

  route({
    method: 'post',
    path: '/agents/journey/message',
    operationId: 'answerAgentJourney',
    tags,
    auth: 'bearer',
    summary: 'Answer the last question; waits for the next one (or the finished template)',
    description:
      "An unknown, expired or someone else's session is 404; a finished one 409 `journey_done`. The model is unreachable: 503 `llm_unavailable` (retry); " +
      'other failures 502 (send the answer again); no reply in time 504 `journey_timeout` (it still arrives: `GET /agents/journey/{sessionId}` shows it).',
    body: journeyMessageSchema,
    responses: { 200: { description: 'The reply; `promptTemplate` once `done`', schema: journeyReplyResponse } },
    errors: [404, 409, 429, 503],
    handler: async ({ user, body }, ctx) => {
      await ctx.usage.take('journeyPerMinute', user);
      return ctx.journeys.message(user.id, body);
    },
  }),

  route({
    method: 'get',
    path: '/agents/journey/:sessionId',
    operationId: 'getAgentJourney',
    tags,
    auth: 'bearer',
    summary: 'The whole conversation, e.g. to resume after a reload or a timeout',
    params: sessionParam,
    responses: { 200: { description: 'The session', schema: journeyViewResponse } },
    errors: [404],
    handler: ({ user, params }, ctx) => ctx.journeys.view(user.id, params.sessionId),
  }),

  // Cancel: stops the answer waiting for its reply, from any node; 202 while one waits, else 409 not_running.
  route({
    method: 'post',
    path: '/agents/journey/:sessionId/cancel',
    operationId: 'cancelAgentJourneyTurn',
    tags,
    auth: 'bearer',
    summary: 'Stop the answer waiting for its reply (the session owner only), from any API node',
    description:
      'The model request is aborted (a turn still queued never starts) and the answer is dropped: the session stays at the question it asked, ' +
      'and the waiting `POST /agents/journey/message` answers 200 with `cancelled: true` and that question again. Send an answer again to go on. ' +
      "An unknown, expired or someone else's session is 404; 409 `not_running` when no answer waits for a reply.",
    params: sessionParam,
    responses: { 202: { description: 'The stop is under way', schema: journeyCancelResponse } },
    errors: [404, 409],
    handler: ({ user, params }, ctx) => ctx.journeys.cancel(user.id, params.sessionId),
  }),
];

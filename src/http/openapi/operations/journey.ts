import { journeyMessageSchema, journeySessionParamsSchema, journeyStartSchema } from '../../routes/journey-routes';
import type { ApiOperation } from '../registry';
import { journeyReplyResponse, journeyViewResponse } from '../response-schemas';

const sessionParam = {
  sessionId: { schema: journeySessionParamsSchema.shape.sessionId, description: 'Journey session id (from start). A malformed id answers 404, like a missing or expired one.' },
};

/** `journey-routes.ts`: the agent setup journey (decision 0027). */
export const journeyOperations: ApiOperation[] = [
  {
    method: 'post', path: '/agents/journey/start', operationId: 'startAgentJourney', tags: ['agents'], auth: 'bearer',
    summary: 'Start a guided conversation that ends with a prompt template for an extraction agent',
    description: 'Answers with the first question at once (no model call). Sessions expire after a period without activity.',
    body: journeyStartSchema,
    responses: { 201: { description: 'The session and its first question', schema: journeyReplyResponse } },
    errors: [429],
  },
  {
    method: 'post', path: '/agents/journey/message', operationId: 'answerAgentJourney', tags: ['agents'], auth: 'bearer',
    summary: 'Answer the last question; waits for the next one (or the finished template)',
    description:
      'An unknown, expired or someone else\'s session is 404; a finished one 409 `journey_done`. The model is unreachable: 503 `llm_unavailable` (retry); ' +
      'other failures 502 (send the answer again); no reply in time 504 `journey_timeout` (it still arrives: `GET /agents/journey/{sessionId}` shows it).',
    body: journeyMessageSchema,
    responses: { 200: { description: 'The reply; `promptTemplate` once `done`', schema: journeyReplyResponse } },
    errors: [404, 409, 429, 503],
  },
  {
    method: 'get', path: '/agents/journey/:sessionId', operationId: 'getAgentJourney', tags: ['agents'], auth: 'bearer',
    summary: 'The whole conversation, e.g. to resume after a reload or a timeout',
    params: sessionParam,
    responses: { 200: { description: 'The session', schema: journeyViewResponse } },
    errors: [404],
  },
];

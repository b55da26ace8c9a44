import { z } from 'zod';
import { decodeCursor, idKey, pageOf } from '../../lib/pagination';
import { answerNeedsPerson, toInputView, type FlowInputs } from '../../flows/flow-inputs';
import { inputRequestListResponse, inputRequestView } from '../openapi/response-schemas';
import { routesWith } from '../route';
import { inputIdParam } from './params';
import { deciderOf } from '../middleware/authenticate';

/** The form routes' port: only the forms service. */
export type InputPorts = { inputs: Pick<FlowInputs, 'list' | 'get' | 'answer'> };
const route = routesWith<InputPorts>();

/** `GET /hitl/inputs`: the forms the caller may answer, optionally by status. */
export const inputListQuerySchema = z.strictObject({
  status: z.enum(['pending', 'answered', 'timeout', 'cancelled']).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  /** The previous page's `nextCursor` (newest first). */
  cursor: z.string().min(1).max(500).optional(),
});

/** `POST /hitl/inputs/:id/answer`: the form's values, and one of its decisions when it has some. */
export const answerInputSchema = z.strictObject({
  values: z
    .record(z.string(), z.unknown())
    .default({})
    .describe("The form's fields by name; validated against the form's JSON Schema (400 naming each problem)"),
  decision: z
    .string()
    .min(1)
    .max(64)
    .optional()
    .describe("One of the form's decisions (required when it has some, absent when it has none)"),
});

const tags = ['approvals'];

/**
 * Forms of agentflows' human_input nodes: read them and answer them. Only a form's recipients see
 * and answer it (anyone else: 404, as for a missing one). An answer needs a signed-in person: with
 * an API key it is 403 `person_required` and nothing is read or written. The first answer wins:
 * a second one (or one after the form timed out or its execution ended) is 409.
 */
export const inputRoutes = [
  route({
    method: 'get',
    path: '/hitl/inputs',
    operationId: 'listInputRequests',
    tags,
    auth: 'bearer',
    summary: 'The forms the caller may answer, newest first (e.g. `?status=pending`)',
    query: inputListQuerySchema,
    responses: {
      200: {
        description: 'The forms, newest first; `nextCursor` (present when older forms follow) goes back as `?cursor`',
        schema: inputRequestListResponse,
      },
    },
    handler: async ({ user, query }, ctx) => {
      const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
      const rows = await ctx.inputs.list(user.id, { status: query.status, limit: query.limit + 1, beforeId });
      const page = pageOf(rows, query.limit, (row) => [row.id]);
      return { inputs: page.items.map(toInputView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    },
  }),

  route({
    method: 'get',
    path: '/hitl/inputs/:id',
    operationId: 'getInputRequest',
    tags,
    auth: 'bearer',
    summary: 'A form request (its recipients only)',
    params: inputIdParam,
    responses: { 200: { description: 'The form request', schema: inputRequestView } },
    errors: [404],
    handler: async ({ user, params }, ctx) => toInputView(await ctx.inputs.get(user.id, params.id)),
  }),

  route({
    method: 'post',
    path: '/hitl/inputs/:id/answer',
    operationId: 'answerInputRequest',
    tags,
    auth: 'bearer',
    summary:
      "Answer a form: its values and decision become the node's output (a signed-in session only: an API key is 403 `person_required`; the first answer wins, a second is 409)",
    params: inputIdParam,
    body: answerInputSchema,
    responses: { 200: { description: 'The answered form', schema: inputRequestView } },
    errors: [400, 403, 404, 409],
    // The person and the recipient are checked before the body is read.
    handler: async (input, ctx) => {
      const decider = deciderOf(input.user);
      if (!decider.person) throw answerNeedsPerson();
      await ctx.inputs.get(decider.userId, input.params.id);
      return toInputView(await ctx.inputs.answer(decider, input.params.id, input.body));
    },
  }),
];

import { z } from 'zod';
import { PsaPush } from '../../assistant/psa-push';
import { SessionLifecycle } from '../../assistant/session-lifecycle';
import { notFound } from '../../lib/errors';
import { RateLimiter } from '../../lib/rate-limiter';
import type { ApiContext } from '../context';
import {
  sessionDocumentationResponse,
  sessionEscalateResponse,
  sessionResolveResponse,
  sessionStatusResponse,
} from '../openapi/response-schemas';
import { routesWith, perContext } from '../route';
import { sessionIdParam } from './params';
import type { Config } from '../../../config';

/** The session notes routes' port: what the session lifecycle needs (all repositories, queues, notes events, logger, the budget door), the stream door, Redis for the limits. */
export type SessionNotesPorts = Pick<
  ApiContext,
  'repos' | 'queues' | 'sources' | 'streams' | 'logger' | 'redis' | 'notesRuns' | 'budget' | 'psa'
> & {
  config: Pick<Config, 'redis'>;
};
const route = routesWith<SessionNotesPorts>();

/** Per user and minute: resolves and escalates together (each may queue the notes' model call). */
export const RESOLVES_PER_MINUTE = 15;
export const DOCUMENTATION_STREAMS_PER_MINUTE = 20;

/** The PSA ticket a close pushes the notes to (kept on the session). */
const psaTicketIdSchema = z
  .union([z.string().regex(/^[1-9]\d{0,11}$/, 'a PSA ticket number'), z.number().int().min(1).max(999_999_999_999)])
  .transform(String)
  .optional()
  .describe('The PSA ticket the notes are pushed to (kept on the session)');

export const resolveBodySchema = z.strictObject({
  resolutionSummary: z.string().trim().min(1).max(4_000).optional(),
  psaTicketId: psaTicketIdSchema,
});
export const emptyBodySchema = z.strictObject({});
/** `POST /chat/sessions/:id/escalate {reason?, psaTicketId?}`: the reason is kept on the session. */
export const escalateBodySchema = z.strictObject({
  reason: z.string().trim().min(1).max(2_000).optional(),
  psaTicketId: psaTicketIdSchema,
});

const limiter = perContext((ctx: SessionNotesPorts) => new RateLimiter(ctx.redis, ctx.config.redis.keyPrefix));
const lifecycle = perContext(
  (ctx: SessionNotesPorts) =>
    new SessionLifecycle({
      repos: ctx.repos,
      queues: ctx.queues,
      notesEvents: ctx.sources.notesEvents,
      notesRuns: ctx.notesRuns,
      budget: ctx.budget,
      logger: ctx.logger.child({ component: 'session-notes' }),
      psaPush: new PsaPush({
        repos: ctx.repos,
        psa: ctx.psa,
        enqueue: ctx.queues.enqueue,
        logger: ctx.logger.child({ component: 'psa-push' }),
      }),
    }),
);

/** The user's session once notes were asked for; 404 otherwise. */
async function documented(ctx: SessionNotesPorts, userId: string, sessionId: string) {
  const session = await ctx.repos.chat.findOwned(userId, sessionId);
  if (!session?.documentationStatus) throw notFound('Session documentation');
  return session;
}

const tags = ['sessions'];

/**
 * A session's lifecycle and its ticket notes: resolve answers
 * at once and queues the notes; the notes stream as SSE `data:` chunks and are kept on the session.
 * A malformed session id answers like a missing session.
 */
export const sessionNotesRoutes = [
  route({
    method: 'post',
    path: '/chat/sessions/:id/resolve',
    operationId: 'resolveChatSession',
    tags,
    auth: 'bearer',
    summary: 'Resolve a session; its ticket notes are written in the background',
    body: resolveBodySchema,
    bodyOptional: true,
    params: sessionIdParam,
    description:
      'Answers at once with `documentation: null`; the notes stream at `…/documentation/stream`. With a PSA connected (`PUT /psa/connection`) ' +
      "the notes are then pushed to ticket `psaTicketId` (else the one given before, else `psa_ticket_id` or `psaTicketId` of the session's `context`): " +
      '`psaPushStatus` is `pending_retry` until they are ' +
      '`sent` (or `failed`, with `psaPushError`), as `GET /chat/sessions/:id` shows; `no_psa` without a connection. Notes already sent to the ' +
      'same ticket are not sent again.',
    responses: { 200: { description: 'The status and how the PSA push stands', schema: sessionResolveResponse } },
    errors: [404, 429],
    handler: async ({ user, params, body }, ctx) => {
      await limiter(ctx).take('resolve', user.id, RESOLVES_PER_MINUTE);
      const push = await lifecycle(ctx).resolve(user.id, params.id, body.resolutionSummary, body.psaTicketId);
      return { sessionId: params.id, status: 'resolved' as const, documentation: null, ...push };
    },
  }),

  route({
    method: 'post',
    path: '/chat/sessions/:id/escalate',
    operationId: 'escalateChatSession',
    tags,
    auth: 'bearer',
    summary:
      'Escalate a session, keeping the reason (≤ 2,000 characters) as `escalationReason`; its ticket notes are written in the background',
    description:
      'The session is handed on: its ticket notes are written and pushed to the PSA as on resolve (the same ticket rules and answer), ' +
      'as an internal note that is not flagged as the resolution. Resolves and escalates share one limit of 15 a minute.',
    body: escalateBodySchema,
    bodyOptional: true,
    params: sessionIdParam,
    responses: { 200: { description: 'The status and how the PSA push stands', schema: sessionEscalateResponse } },
    errors: [404, 429],
    handler: async ({ user, params, body }, ctx) => {
      await limiter(ctx).take('resolve', user.id, RESOLVES_PER_MINUTE);
      const push = await lifecycle(ctx).escalate(user.id, params.id, body.reason ?? null, body.psaTicketId);
      return { sessionId: params.id, status: 'escalated' as const, documentation: null, ...push };
    },
  }),

  route({
    method: 'post',
    path: '/chat/sessions/:id/pause',
    operationId: 'pauseChatSession',
    tags,
    auth: 'bearer',
    summary: 'Mark a session paused',
    body: emptyBodySchema,
    bodyOptional: true,
    params: sessionIdParam,
    responses: { 200: { description: 'The new status', schema: sessionStatusResponse } },
    errors: [404],
    handler: async ({ user, params, body }, ctx) => {
      void body; // read, so an unexpected field is a 400
      await lifecycle(ctx).pause(user.id, params.id);
      return { sessionId: params.id, status: 'paused' };
    },
  }),

  route({
    method: 'get',
    path: '/chat/sessions/:id/documentation',
    operationId: 'getSessionDocumentation',
    tags,
    auth: 'bearer',
    summary: "A resolved session's ticket notes",
    params: sessionIdParam,
    responses: {
      200: { description: 'The notes and their state (`documentation` is null until ready)', schema: sessionDocumentationResponse },
    },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const session = await documented(ctx, user.id, params.id);
      return {
        sessionId: session.id,
        status: session.status,
        documentationStatus: session.documentationStatus,
        documentation: session.documentation,
        problemSummary: session.problemSummary,
        diagnosticSteps: session.diagnosticSteps,
        resolutionSummary: session.resolutionSummary,
      };
    },
  }),

  route({
    method: 'get',
    path: '/chat/sessions/:id/documentation/stream',
    operationId: 'streamSessionDocumentation',
    tags,
    auth: 'bearer',
    summary: "Stream a session's ticket notes",
    params: sessionIdParam,
    responses: {
      200: {
        description:
          'SSE `data:` lines, one per message: each chunk of markdown (## Problem Summary, ## Steps Taken, ## Resolution, ## Next Steps) as JSON `{"type":"chunk","text":…}`, ending `data: [DONE]` or `data: [ERROR] <message>`',
        contentType: 'text/event-stream',
      },
    },
    errors: [404, 429],
    handler: async ({ req, res, user, params }, ctx) => {
      const session = await documented(ctx, user.id, params.id);
      await limiter(ctx).take('documentation-stream', user.id, DOCUMENTATION_STREAMS_PER_MINUTE);
      await ctx.streams.serve(req, res, {
        userId: user.id,
        context: { sessionId: session.id },
        prepare: async () => ctx.sources.notes(session),
      });
    },
  }),
];

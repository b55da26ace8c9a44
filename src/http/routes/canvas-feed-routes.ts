import type { Request } from 'express';
import { isApiKeySecret } from '../../auth/api-keys';
import { verifyAccessTokenOnCanvas } from '../../auth/tokens';
import type { Repositories } from '../../models';
import type { ApiContext } from '../context';
import type { AuthUser } from '../middleware/authenticate';
import { canvasAccess } from '../middleware/canvas-access';
import { routesWith } from '../route';
import { lastEventIdQuery, lastEventSeq } from '../sse';
import type { FeedEnd } from '../streams/canvas-feed-source';
import { canvasIdParam } from './params';

/** The room feed's port: the canvases (membership), the token settings (standing), the stream door and sources. */
export type CanvasFeedPorts = Pick<ApiContext, 'streams' | 'sources' | 'tokens'> & { repos: Pick<Repositories, 'canvases'> };
const route = routesWith<CanvasFeedPorts>();

const FEED =
  "Server-sent events, one per room event, in order: `id:` the event's `seq`, `event:` its name (`block_added`, `blocks_bulk_added_chunk`, `generation_status`, … : the sequenced room events a `/canvas` socket receives; presence and cursors are not sequenced and not sent) and `data:` its JSON payload. It opens with `ready {canvasId, seq}`; `resync {canvasId, lastSeq}` when events after `Last-Event-ID` are no longer kept (reload the canvas, then read on); `closed {canvasId, reason, message}` ends it when the credential expired (`token_expired`: reconnect with a fresh token and `Last-Event-ID`), the session or API key was revoked (`session_revoked`) or the caller is no longer a member (`not_a_member`).";

/**
 * `GET /canvases/:id/events`: a canvas room's events over SSE, for clients without Socket.IO. It is
 * authorized as joining the room is (any member), and resumes from `Last-Event-ID`.
 */
export const canvasFeedRoutes = [
  route({
    method: 'get',
    path: '/canvases/:id/events',
    operationId: 'followCanvasEvents',
    tags: ['canvases'],
    auth: 'bearer',
    summary: "Follow a canvas room's events over SSE (a member; resumes after `Last-Event-ID`)",
    description:
      "The room events a `/canvas` socket in the room receives, for clients without Socket.IO. Without `Last-Event-ID` (header) or `lastEventId` (query) it starts from now; with one, it first sends what came after it from the room's replay log.",
    params: canvasIdParam,
    headers: { 'Last-Event-ID': { description: 'Resume after this event id (a room event seq)' } },
    query: lastEventIdQuery,
    responses: { 200: { description: FEED, contentType: 'text/event-stream' } },
    errors: [404, 429, 503],
    handler: async (input, ctx) => {
      const { req, res, user, params, headers } = input;
      const { canvasId } = await canvasAccess(ctx.repos.canvases, user, params.id, 'viewer');
      const lastEventId = headers['Last-Event-ID'] ?? input.query.lastEventId;
      const afterSeq = lastEventId === undefined ? undefined : lastEventSeq(lastEventId);
      // Read before the stream opens: the door forgets the request's headers then.
      const standing = standingOf(ctx, req, user, canvasId);
      await ctx.streams.serve(req, res, {
        userId: user.id,
        context: { canvasId },
        prepare: async () => ctx.sources.canvasFeed(canvasId, afterSeq, standing),
      });
    },
  }),
];

/**
 * Whether the caller may still read the room, asked while the feed is open: its credential (the
 * access token's expiry and session, or the API key) and its membership. A check that fails for
 * another reason (the database away) keeps the feed open: an outage must not end every feed.
 */
export function standingOf(ctx: CanvasFeedPorts, req: Request, user: AuthUser, canvasId: string): () => Promise<FeedEnd | undefined> {
  const header = req.headers.authorization;
  const apiKeyHeader = req.headers['x-api-key'];
  const credential = header?.startsWith('Bearer ') ? header.slice(7).trim() : typeof apiKeyHeader === 'string' ? apiKeyHeader.trim() : '';
  const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
  const notMember: FeedEnd = { reason: 'not_a_member', message: 'You are no longer a member of this canvas' };
  return async () => {
    try {
      if (isApiKeySecret(credential)) {
        const caller = ctx.tokens.apiKeys ? await ctx.tokens.apiKeys.authenticate(credential, ip) : null;
        if (!caller) return { reason: 'session_revoked', message: 'This API key was revoked or expired' };
        return (await ctx.repos.canvases.roleOf(canvasId, user.id)) ? undefined : notMember;
      }
      const verified = await verifyAccessTokenOnCanvas(ctx.tokens, credential, canvasId);
      if (!verified) {
        const expired = tokenExpiry(credential) <= Date.now();
        return expired
          ? { reason: 'token_expired', message: 'The access token expired; reconnect with a fresh one and Last-Event-ID' }
          : { reason: 'session_revoked', message: 'This session was signed out' };
      }
      const role = verified.role !== undefined ? verified.role : await ctx.repos.canvases.roleOf(canvasId, user.id);
      return role ? undefined : notMember;
    } catch {
      return undefined;
    }
  };
}

/** A JWT's `exp` in ms (read, not verified: the token was verified when the feed opened); 0 when unreadable. */
function tokenExpiry(token: string): number {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : 0;
  } catch {
    return 0;
  }
}

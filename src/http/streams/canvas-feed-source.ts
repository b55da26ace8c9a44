import type { CanvasLog } from '../../realtime/canvas-log';
import type { StreamSignal } from '../../lib/stream-signal';
import type { SseMessage } from '../sse';
import type { SseSource } from '../sse-streams';

/** Why a room feed ended while its client was still reading (the `closed` event's `reason`). */
export type FeedEnd =
  | { reason: 'token_expired'; message: string }
  | { reason: 'session_revoked'; message: string }
  | { reason: 'not_a_member'; message: string };

/** The canvas log's reads a room feed makes. */
export type CanvasFeedLog = Pick<CanvasLog, 'since' | 'lastSeq' | 'follow'>;

/**
 * A canvas room's events as Server-Sent Events, for clients without Socket.IO (the Python SDK, curl,
 * a server behind a proxy that only passes HTTP). It is the room as a socket in it sees it: every
 * room event, in seq order, each as `id: <seq>`, `event: <name>` and the payload the socket gets.
 *
 * It opens with `ready {canvasId, seq}` (the seq it starts after: resume from it). With a
 * `Last-Event-ID`, the events after it come first, from the room's replay log; `resync {lastSeq}`
 * when some are no longer kept (reload the canvas, then read on). The caller's standing is checked
 * again before each batch of events goes out and every `checkEveryMs` while the room is quiet: a
 * token that expired, a session signed out or an API key revoked, or a member removed ends the feed
 * with `closed {reason, message}`, and nothing logged after that reaches it.
 */
export function canvasFeedSource(
  deps: { log: CanvasFeedLog; checkEveryMs: number },
  canvasId: string,
  afterSeq: number | undefined,
  standing: () => Promise<FeedEnd | undefined>,
  /** Only this room thread's `thread_event`s (its feed); unset: every room event. */
  threadId?: string,
): SseSource {
  return {
    messages: (signal) => feed(deps, canvasId, afterSeq, standing, signal, threadId),
    interrupted: { retry: 1_000, event: 'interrupted', data: JSON.stringify({ type: 'interrupted', canvasId }) },
    // A revoked credential ends the feed as its own standing check would: `closed session_revoked`.
    revoked: {
      event: 'closed',
      data: JSON.stringify({
        type: 'closed',
        canvasId,
        reason: 'session_revoked',
        message: 'The credential of this feed was revoked; sign in again',
      }),
    },
  };
}

async function* feed(
  deps: { log: CanvasFeedLog; checkEveryMs: number },
  canvasId: string,
  afterSeq: number | undefined,
  standing: () => Promise<FeedEnd | undefined>,
  signal: StreamSignal,
  threadId?: string,
): AsyncGenerator<SseMessage> {
  let cursor = afterSeq ?? (await deps.log.lastSeq(canvasId));
  // A resumed feed reads the log at once; a new one waits for the next event.
  let pending = afterSeq !== undefined;
  let wake: (() => void) | undefined;
  const unfollow = deps.log.follow(canvasId, cursor, () => {
    pending = true;
    wake?.();
  });
  try {
    yield { id: cursor, event: 'ready', data: JSON.stringify({ type: 'ready', canvasId, ...(threadId ? { threadId } : {}), seq: cursor }) };
    let checkAt = Date.now() + deps.checkEveryMs;
    while (!signal.aborted) {
      // Before events go out (a member removed a moment ago sees none of what followed), and every
      // interval while the room is quiet.
      if (pending || Date.now() >= checkAt) {
        const ended = await standing();
        if (ended) {
          yield { event: 'closed', data: JSON.stringify({ type: 'closed', canvasId, ...ended }) };
          return;
        }
        checkAt = Date.now() + deps.checkEveryMs;
      }
      if (pending) {
        pending = false;
        const caughtUp = await deps.log.since(canvasId, cursor);
        if (caughtUp.resync) {
          cursor = caughtUp.lastSeq;
          yield { id: cursor, event: 'resync', data: JSON.stringify({ type: 'resync', canvasId, lastSeq: cursor }) };
        }
        for (const event of caughtUp.resync ? [] : caughtUp.events) {
          if (event.seq <= cursor) continue;
          cursor = event.seq;
          if (threadId && (event.event !== 'thread_event' || event.payload.threadId !== threadId)) continue;
          yield { id: event.seq, event: event.event, data: JSON.stringify(event.payload) };
        }
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, checkAt - Date.now()));
        wake = done;
        signal.addEventListener('abort', done);
      });
    }
  } finally {
    unfollow();
  }
}

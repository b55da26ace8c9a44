import type { SwitchboardClient } from './client';
import type { CanvasServerEvents, JoinAck, SyncAck, ThreadEventBody } from './events';
import type { CanvasConnection } from './sockets';

/** One `thread_event` of the followed thread, as the room sent it. */
export type ThreadEventPayload = Parameters<CanvasServerEvents['thread_event']>[0];

/** What a thread follower hands on: the thread's events in seq order, or `resync` when some were no longer kept. */
export type RoomThreadItem =
  | { kind: 'event'; seq: number; turnId: string; event: ThreadEventBody }
  /** Events of the thread after the last one handed on were dropped by the room: read the history again. */
  | { kind: 'resync'; lastSeq: number };

export interface FollowThreadOptions {
  /**
   * Runs after the thread's open turns were read and before any event is handed on (e.g. read the
   * history): events of turns that ended before it do not follow it, the open turns replay from
   * their start after it.
   */
  load?: () => unknown;
  /** Each item, as it comes (besides the async iterator). */
  onItem?: (item: RoomThreadItem) => void;
  timeoutMs?: number;
}

/** A followed room thread: iterate it (`for await`) or take `onItem`; `stop` ends it (the iteration finishes). */
export interface RoomThreadFollower extends AsyncIterable<RoomThreadItem> {
  /** The room's join answer (`ok: false` with `not_found` for a non-member; nothing follows then). */
  joined: JoinAck;
  stop(): void;
}

/**
 * Follows one room thread over the `/canvas` connection: joins the canvas's room, replays the
 * thread's turns that have not ended from their first event (`canvas:sync`), then hands on its live
 * `thread_event`s, every one in seq order and exactly once. After a reconnect or a gap the
 * connection's catch-up fills in what was missed; when the room no longer keeps it, a `resync`
 * item says to read the history again. The room stays joined on `stop` (other followers of the
 * canvas on the same connection keep it): `connection.leave` leaves it.
 */
export async function followThread(
  connection: CanvasConnection,
  client: SwitchboardClient,
  canvasId: string,
  threadId: string,
  options: FollowThreadOptions = {},
): Promise<RoomThreadFollower> {
  const queue: RoomThreadItem[] = [];
  const waiting: Array<(result: IteratorResult<RoomThreadItem>) => void> = [];
  let stopped = false;
  let last = 0;
  /** Live events held until the replay of the open turns has been handed on. */
  let held: ThreadEventPayload[] | undefined = [];
  /**
   * The turns whose held events are handed on: open when the thread was read, or posted after the
   * join; and the thread's own changes (a device lent, taken back), which name the thread as their turn.
   */
  const followed = new Set<string>([threadId]);

  const emit = (item: RoomThreadItem) => {
    if (stopped) return;
    options.onItem?.(item);
    const take = waiting.shift();
    if (take) take({ value: item, done: false });
    else queue.push(item);
  };
  const handOn = (payload: ThreadEventPayload) => {
    if (payload.canvasId !== canvasId || payload.threadId !== threadId || payload.seq <= last) return;
    last = payload.seq;
    emit({ kind: 'event', seq: payload.seq, turnId: payload.turnId, event: payload.event });
  };
  const unsubscribe = connection.onEvent(({ event, payload }) => {
    if (event !== 'thread_event') return;
    if (held) held.push(payload);
    else handOn(payload);
  });
  const unsubscribeResync = connection.onResync((id, lastSeq) => {
    if (id !== canvasId) return;
    last = Math.max(last, lastSeq);
    emit({ kind: 'resync', lastSeq });
  });
  const stop = () => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    unsubscribeResync();
    for (const take of waiting.splice(0)) take({ value: undefined, done: true });
  };

  const timeoutMs = options.timeoutMs ?? 10_000;
  let joined: JoinAck;
  try {
    joined = await connection.join(canvasId, timeoutMs);
    if (!joined.ok) {
      stop();
      return { joined, stop, [Symbol.asyncIterator]: () => iterate(queue, waiting, () => stopped) };
    }
    const { openTurns } = await client.threads.get(canvasId, threadId);
    for (const turn of openTurns) followed.add(turn.turnId);
    await options.load?.();
    // Everything up to the join's seq that belongs to an open turn is read from the room's log;
    // what came after it arrives live through the connection.
    const first = openTurns.map((turn) => turn.roomSeq).find((seq): seq is number => typeof seq === 'number');
    last = joined.seq;
    if (first !== undefined && first <= joined.seq) {
      const ack = (await connection.timeout(timeoutMs).emitWithAck('canvas:sync', { canvasId, afterSeq: first - 1 })) as SyncAck;
      last = first - 1;
      if (ack.ok && !ack.resync) {
        for (const entry of ack.events)
          if (entry.event === 'thread_event' && entry.seq <= joined.seq) handOn(entry.payload as unknown as ThreadEventPayload);
      } else if (ack.ok) emit({ kind: 'resync', lastSeq: ack.lastSeq });
      last = Math.max(last, joined.seq);
    }
  } catch (error) {
    stop();
    throw error;
  }
  // A held event hands on when its turn was open at the read or started after the join; a turn
  // that ended between the join and the read is in the history, so its tail is not handed on alone.
  const live = held;
  held = undefined;
  for (const payload of live) {
    if (payload.event.type === 'message') followed.add(payload.turnId);
    if (followed.has(payload.turnId)) handOn(payload);
  }
  return { joined, stop, [Symbol.asyncIterator]: () => iterate(queue, waiting, () => stopped) };
}

function iterate(
  queue: RoomThreadItem[],
  waiting: Array<(result: IteratorResult<RoomThreadItem>) => void>,
  stopped: () => boolean,
): AsyncIterator<RoomThreadItem> {
  return {
    next() {
      const item = queue.shift();
      if (item) return Promise.resolve({ value: item, done: false });
      if (stopped()) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

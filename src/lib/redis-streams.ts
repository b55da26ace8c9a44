import { duplicateRedis, type RedisClient } from './redis';
import { redisScripts } from './redis-scripts';
import { streamIdBefore, type Frame, type Framer, type StreamEntry, type StreamFollower, type Subscriber } from './stream-follower';
import type { StreamSignal } from './stream-signal';

/**
 * Follows a Redis stream live from after `fromId` until the consumer stops or `signal` aborts,
 * yielding `[entryId, firstFieldValue]`, on a blocking connection of its own. Only for worker-side
 * consumers that are few and bounded (agent runs); HTTP streams go through `followLog`, which
 * shares the process's one `StreamFollower`.
 */
export async function* followStream(
  redis: RedisClient,
  key: string,
  fromId: string,
  signal: AbortSignal,
): AsyncGenerator<[string, string]> {
  const blocking = duplicateRedis(redis, { enableOfflineQueue: true, maxRetriesPerRequest: null });
  const abort = () => blocking.disconnect();
  signal.addEventListener('abort', abort, { once: true });
  let last = fromId;
  try {
    while (!signal.aborted) {
      const result = (await blocking.xread('BLOCK', 10_000, 'STREAMS', key, last).catch((error) => {
        if (signal.aborted) return null;
        throw error;
      })) as Array<[string, Array<[string, string[]]>]> | null;
      if (!result) continue;
      for (const [id, fields] of result[0][1]) {
        last = id;
        yield [id, fields[1]];
      }
    }
  } finally {
    signal.removeEventListener('abort', abort);
    blocking.disconnect();
  }
}

/** How a log's reader learns that its writer is gone for good (see `followLog`). */
export interface LogLiveness {
  /**
   * When the producer ended (its row says completed, failed, …), or null while it may still write.
   * A check that throws (database away) counts as "still live": a stream never ends on a guess.
   */
  endedAt: () => Promise<Date | null>;
  /** Ask at most this often while the log is quiet (shared between streams of one key). */
  checkEveryMs: number;
  /** After the producer ended, wait this long for its last events still in flight (default 2 s). */
  graceMs?: number;
  /**
   * The first check waits this long (default 0: at once). A stream of work that was just started
   * skips a check that could only answer "still live" (a database read on every new stream).
   */
  firstCheckAfterMs?: number;
}

const REPLAY_PAGE = 500;

/**
 * Where the live phase of `followLog` goes instead of being yielded: `push` gets each batch of
 * frames (built by `framer`, shared with every other follower of the key) as the follower reads
 * it, up to and including a terminal one. No per-stream generator runs while the stream is live.
 */
export interface LiveSink {
  framer: Framer;
  push(frames: Frame[]): void;
}

/**
 * The live phase of a followed log, handed back by `followLog` (its return value) instead of
 * being awaited inside it: `start` it, and `end.liveEnded` is called once when the phase ends
 * (terminal frame pushed, abort, or the writer ended; with an error when an entry could not be
 * framed). Returning it lets every generator on the way finish, so an open stream keeps no
 * suspended generator chain while it only waits for events (the memory-per-stream target). The
 * end is told to an object, not a callback or a promise, so the stream that runs the phase is it.
 */
export interface LivePhase {
  start(end: LiveEnd): void;
}

/** What a live phase tells when it ends: `error` when an entry could not be framed. */
export interface LiveEnd {
  liveEnded(error?: Error): void;
}

/** Runs `phase` to its end: resolves when it ends, rejects when an entry could not be framed. */
export function runLive(phase: LivePhase): Promise<void> {
  return new Promise((resolve, reject) => phase.start({ liveEnded: (error) => (error ? reject(error) : resolve()) }));
}

/**
 * `source`'s values through `map`, and its return value passed on (a `for await` would drop it):
 * how a log's entries become events or messages without losing the `LivePhase` at the end. A
 * consumer that stops early closes `source` too (its `finally` unsubscribes), as `for await` would.
 */
export async function* mapYields<T, U, R>(source: AsyncGenerator<T, R>, map: (value: T) => U): AsyncGenerator<U, R> {
  let finished = false;
  try {
    for (;;) {
      const next = await source.next();
      if (next.done) {
        finished = true;
        return next.value;
      }
      yield map(next.value);
    }
  } finally {
    if (!finished) await source.return(undefined as R);
  }
}

/**
 * Every entry of `key` after `afterId`: first what is stored (replay), then live from the
 * process's one follower, until an entry `isTerminal`, `signal` aborts, or the producer has ended
 * without writing one (an expired or lost log, a crashed writer). In that last case it simply
 * returns: the caller tells the client how the producer ended (`SseSource.ended`).
 *
 * A client whose cursor is already past the end (its `Last-Event-ID` is at or after the terminal
 * entry) is handed that terminal entry again, so it too learns the stream is over.
 */
export async function* followLog(options: {
  redis: RedisClient;
  follower: StreamFollower;
  key: string;
  afterId: string;
  isTerminal: (value: string) => boolean;
  liveness: LogLiveness;
  signal: StreamSignal;
  /**
   * When given, live entries are pushed here as frames (not yielded); replay still yields, and the
   * generator returns the live phase for the caller to run.
   */
  live?: LiveSink;
  /**
   * False: no replay read; the follower's first read hands over what is stored after `afterId`
   * (the same entries, as the same bytes), for a log its reader has just started. Default true.
   */
  replay?: boolean;
}): AsyncGenerator<StreamEntry, LivePhase | undefined> {
  const { redis, follower, key, isTerminal, liveness, signal } = options;
  let last = options.afterId;
  while (options.replay !== false) {
    const page = await redis.xrange(key, `(${last}`, '+', 'COUNT', REPLAY_PAGE);
    for (const [id, fields] of page) {
      last = id;
      yield [id, fields[1]];
      if (isTerminal(fields[1]) || signal.aborted) return;
    }
    if (page.length < REPLAY_PAGE) break;
  }
  // A terminal entry at or before the cursor: the client asked from past the end. Only a cursor
  // the replay did not move can be there (an entry it read was not terminal, and nothing sorts
  // before the first entry), so a stream read from the start or past a replayed entry skips the read.
  if (last === options.afterId && last !== '0') {
    const [tail] = await redis.xrevrange(key, '+', '-', 'COUNT', 1);
    if (tail && !streamIdBefore(last, tail[0]) && isTerminal(tail[1][1])) {
      yield [tail[0], tail[1][1]];
      return;
    }
  }
  if (options.live) return new LiveFollow(follower, key, last, options.live, liveness, signal);

  const queue: StreamEntry[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = follower.subscribe(key, last, (entries) => {
    for (const entry of entries) queue.push(entry);
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort, { once: true });
  const graceMs = liveness.graceMs ?? 2_000;
  let nextCheck = Date.now() + (liveness.firstCheckAfterMs ?? 0);
  let endBy: number | undefined;
  try {
    while (!signal.aborted) {
      if (queue.length) {
        const batch = queue.splice(0, queue.length);
        for (const entry of batch) {
          yield entry;
          if (isTerminal(entry[1]) || signal.aborted) return;
        }
        // Entries arrived: the producer is alive; ask again only after a quiet period.
        if (endBy === undefined) nextCheck = Date.now() + liveness.checkEveryMs;
        continue;
      }
      const now = Date.now();
      if (endBy !== undefined && now >= endBy) return;
      if (endBy === undefined && now >= nextCheck) {
        // eslint-disable-next-line no-restricted-syntax -- unknown is treated as "not ended": the check runs again after checkEveryMs
        const endedAt = await follower.shared(`ended:${key}`, Math.min(liveness.checkEveryMs, 1_000), liveness.endedAt).catch(() => null);
        nextCheck = Date.now() + liveness.checkEveryMs;
        if (endedAt) endBy = Math.max(Date.now(), endedAt.getTime() + graceMs);
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, (endBy ?? nextCheck) - now);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    unsubscribe();
  }
}

/**
 * The live phase of `followLog` pushed into `sink`: the same rules (ends after a terminal frame,
 * on abort, or once liveness says the writer ended and the grace passed), but driven by the
 * follower's callback and one timer per stream, not a generator resumed per entry. Ends with an
 * error when an entry cannot be framed (the caller reports the stream interrupted, as a throwing
 * replay would).
 *
 * One object per open stream for its whole life (10,000 per node): it is its own follower
 * subscriber (`last`, `framer`, `deliver`) and its own abort listener (`handleEvent`), and its
 * timer calls a module function with it, so a waiting stream holds no closures, contexts or
 * promises for its live phase.
 */
class LiveFollow implements LivePhase, Subscriber {
  /** The follower's cursor for this stream: it hands only entries after it, and moves it. */
  last: string;
  readonly framer: Framer;
  private end: LiveEnd | undefined = undefined;
  /** When liveness is asked next (while the writer has not been seen to end). */
  private nextCheck = 0;
  /** The writer ended: the phase ends at this time (its grace for entries still in flight). */
  private endBy: number | undefined = undefined;
  private done = false;
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(
    private readonly follower: StreamFollower,
    private readonly key: string,
    after: string,
    private readonly sink: LiveSink,
    private readonly liveness: LogLiveness,
    private readonly signal: StreamSignal,
  ) {
    this.last = after;
    this.framer = sink.framer;
  }

  start(end: LiveEnd): void {
    if (this.signal.aborted) return void queueMicrotask(() => end.liveEnded());
    this.end = end;
    this.nextCheck = Date.now() + (this.liveness.firstCheckAfterMs ?? 0);
    try {
      this.follower.follow(this.key, this);
    } catch (error) {
      // A closed follower, or a cluster that has no node for the key's slot yet: the stream is interrupted.
      return this.finish(error instanceof Error ? error : new Error(String(error)));
    }
    this.signal.addEventListener('abort', this, { once: true });
    this.tick();
  }

  /** The signal aborted. */
  handleEvent(): void {
    this.finish();
  }

  deliver(_entries: StreamEntry[], frames: Frame[] | null | undefined): void {
    if (this.done) return;
    if (!frames) return this.finish(new Error(`An entry of ${this.key} could not be framed`));
    const end = frames.findIndex((frame) => frame.terminal);
    this.sink.push(end === -1 || end === frames.length - 1 ? frames : frames.slice(0, end + 1));
    if (end !== -1) return this.finish();
    // Entries arrived: the producer is alive; ask again only after a quiet period.
    if (this.endBy === undefined) this.nextCheck = Date.now() + this.liveness.checkEveryMs;
  }

  /** The timer only re-arms when due: an event does not touch it, it moves `nextCheck`. */
  tick(): void {
    if (this.done) return;
    const now = Date.now();
    if (this.endBy !== undefined) {
      if (now >= this.endBy) return this.finish();
      this.timer = setTimeout(tickLive, this.endBy - now, this);
      return;
    }
    if (now < this.nextCheck) {
      this.timer = setTimeout(tickLive, this.nextCheck - now, this);
      return;
    }
    const { liveness } = this;
    void this.follower
      .shared(`ended:${this.key}`, Math.min(liveness.checkEveryMs, 1_000), liveness.endedAt)
      // eslint-disable-next-line no-restricted-syntax -- unknown is treated as "not ended": the check runs again after checkEveryMs
      .catch(() => null)
      .then((endedAt) => {
        this.nextCheck = Date.now() + liveness.checkEveryMs;
        if (endedAt) this.endBy = Math.max(Date.now(), endedAt.getTime() + (liveness.graceMs ?? 2_000));
        this.tick();
      });
  }

  private finish(error?: Error): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.signal.removeEventListener('abort', this);
    this.follower.unfollow(this.key, this);
    const end = this.end;
    this.end = undefined;
    // Told after the current callback (the follower's fan-out, the abort), as a settled promise would.
    if (end) queueMicrotask(() => end.liveEnded(error));
  }
}

function tickLive(phase: LiveFollow): void {
  phase.tick();
}

/**
 * A JSON event log in one Redis stream per key: writers append, any node follows from the first
 * event, so a listener that arrives late loses nothing. Used for chat turns and ticket notes.
 */
export class JsonEventLog<E> {
  constructor(
    private readonly redis: RedisClient,
    private readonly keyOf: (id: string) => string,
    readonly isTerminal: (event: E) => boolean,
    private readonly ttlSeconds = 3_600,
    /** The process's reader; only needed by processes that `follow` (the API). */
    private readonly follower?: StreamFollower,
  ) {}

  key(id: string): string {
    return this.keyOf(id);
  }

  /** Events appended in this turn of the event loop and not yet written, by key. */
  private readonly unwritten = new Map<string, { entries: Array<readonly [id: '*', json: string]>; events: E[]; written: Promise<void> }>();

  /**
   * Called with each batch once it is stored, before its appends resolve (so the batches of one log
   * reach it in order); it must not reject. Unset: nothing.
   */
  protected afterWrite?: (id: string, events: E[]) => Promise<void>;

  /**
   * Appends `event`; resolves once it is stored. Events appended to one log in the same turn of the
   * event loop (the deltas of one read from the model) are written together, in order, by one
   * script call that also refreshes the TTL: a burst costs one command and one round trip.
   */
  append(id: string, event: E): Promise<void> {
    const key = this.keyOf(id);
    // Each entry as the script takes it: an automatic id and the event's JSON.
    const entry = ['*', JSON.stringify(event)] as const;
    const batch = this.unwritten.get(key);
    if (batch) {
      batch.entries.push(entry);
      batch.events.push(event);
      return batch.written;
    }
    const entries = [entry];
    const events = [event];
    const written = new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        // Later appends start a batch of their own, written after this one on the same connection.
        this.unwritten.delete(key);
        redisScripts(this.redis)
          .appendBatch({ log: key }, { ttlSeconds: this.ttlSeconds, entries })
          .then(() => this.afterWrite?.(id, events))
          .then(() => resolve(), reject);
      });
    });
    this.unwritten.set(key, { entries, events, written });
    return written;
  }

  /** Whether the log already holds its terminal event (the last one written). */
  async ended(id: string): Promise<boolean> {
    const [last] = await this.redis.xrevrange(this.keyOf(id), '+', '-', 'COUNT', 1);
    return last ? this.isTerminal(JSON.parse(last[1][1]) as E) : false;
  }

  /** Every event written so far, in order (empty once the log expired). */
  async stored(id: string): Promise<E[]> {
    const entries = await this.redis.xrange(this.keyOf(id), '-', '+');
    return entries.map(([, fields]) => JSON.parse(fields[1]) as E);
  }

  /** Forgets the log (before a new run writes it again). */
  async reset(id: string): Promise<void> {
    await this.redis.del(this.keyOf(id));
  }

  /**
   * Every event from the first, live, until a terminal one, `signal` aborts, or `liveness` says the
   * writer ended without one (then it returns; the caller says how it ended). With `live`, the live
   * phase is pushed there as frames shared by every follower of the log, not yielded:
   * the generator returns it (`LivePhase`) for the caller to run. `fresh`: the request reading it
   * has just queued the work that writes it, so the follower's first read hands over all it holds
   * (no replay read first).
   */
  follow(
    id: string,
    signal: StreamSignal,
    liveness: LogLiveness,
    live?: LiveSink,
    options: { fresh?: boolean } = {},
  ): AsyncGenerator<E, LivePhase | undefined> {
    if (!this.follower) throw new Error('This event log was built without a StreamFollower');
    const parse = (json: string) => JSON.parse(json) as E;
    const entries = followLog({
      redis: this.redis,
      follower: this.follower,
      key: this.keyOf(id),
      afterId: '0',
      isTerminal: (json) => this.isTerminal(parse(json)),
      liveness,
      signal,
      live,
      replay: !options.fresh,
    });
    return mapYields(entries, ([, json]) => parse(json));
  }
}

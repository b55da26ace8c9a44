import { followLog, mapYields, type LivePhase, type LiveSink, type LogLiveness } from './redis-streams';
import type { RedisClient } from './redis';
import type { StreamFollower } from './stream-follower';
import type { StreamSignal } from './stream-signal';
import { settled } from './settled';
import { eventLogOnce } from './redis-keys';
import { redisScripts } from './redis-scripts';

/**
 * Events in one Redis stream per producer (a generation, a flow execution), so an SSE client can
 * replay from the start or after `Last-Event-ID` and then follow live, on any API node. Entry ids
 * are `<seq>-0`, which makes `Last-Event-ID` a stream position; the first event is seq 1.
 */
export class SequencedEventLog<E extends { type: string }> {
  constructor(
    protected readonly redis: RedisClient,
    private readonly keyOf: (id: string) => string,
    private readonly ttlSeconds: number,
    private readonly terminal: (event: E) => boolean,
    /** The process's reader; only needed by processes that `follow` (the API). */
    private readonly follower?: StreamFollower,
  ) {}

  key(id: string): string {
    return this.keyOf(id);
  }

  /** Appends one event now at a known seq (used by the API for `queued`). */
  async append(id: string, seq: number, event: E): Promise<void> {
    const key = this.key(id);
    await redisScripts(this.redis).appendBatch(
      { log: key },
      { ttlSeconds: this.ttlSeconds, entries: [[`${seq}-0`, JSON.stringify(event)]] },
    );
  }

  /**
   * Appends one event after whatever the log holds, in one atomic step (read last seq, XADD next):
   * for writers that cannot know the seq (the reaper, a cancel from the API, the several workers
   * running the nodes of one flow execution). Returns the seq given.
   */
  async appendNext(id: string, event: E): Promise<number> {
    return redisScripts(this.redis).appendNext({ log: this.key(id) }, { json: JSON.stringify(event), ttlSeconds: this.ttlSeconds });
  }

  /**
   * `appendNext`, once per `tag`: a second call with the same tag (a retried job whose worker died
   * after appending, before it could note so elsewhere) appends nothing and returns 0.
   */
  async appendNextOnce(id: string, tag: string, event: E): Promise<number> {
    const key = this.key(id);
    return redisScripts(this.redis).appendNextOnce(
      { log: key, once: eventLogOnce(key) },
      { json: JSON.stringify(event), ttlSeconds: this.ttlSeconds, tag },
    );
  }

  /** The last sequence number written (0 when none). */
  async lastSeq(id: string): Promise<number> {
    const last = await this.redis.xrevrange(this.key(id), '+', '-', 'COUNT', 1);
    return last.length ? Number.parseInt(last[0][0], 10) : 0;
  }

  /**
   * A writer that batches appends: events queued in one tick go out in one pipeline. It is ready at
   * once: the log's position is read as it is made, and its first flush waits for it, so a caller
   * can emit (and go on to its next step) without waiting for that read.
   */
  writer(id: string): EventWriter<E> {
    return new EventWriter<E>(this.redis, this.key(id), this.ttlSeconds, this.lastSeq(id));
  }

  /** Events with seq > afterSeq already stored. */
  async readAfter(id: string, afterSeq: number): Promise<Array<SequencedOf<E>>> {
    const entries = await this.redis.xrange(this.key(id), `(${afterSeq}-0`, '+');
    return entries.map((entry) => parseEntry<E>(entry));
  }

  /**
   * Replays events after `afterSeq`, then follows live until a terminal event, `signal` aborts, or
   * `liveness` says the producer ended without one in the log (expired or lost log, dead worker):
   * then it returns and the caller reports how it ended. With `live`, the live events go to it as
   * frames instead of being yielded, and the generator returns the live phase (see `followLog`).
   */
  follow(
    id: string,
    afterSeq: number,
    signal: StreamSignal,
    liveness: LogLiveness,
    live?: LiveSink,
  ): AsyncGenerator<SequencedOf<E>, LivePhase | undefined> {
    if (!this.follower) throw new Error('This event log was built without a StreamFollower');
    const entries = followLog({
      redis: this.redis,
      follower: this.follower,
      key: this.key(id),
      afterId: `${afterSeq}-0`,
      isTerminal: (value) => this.terminal(JSON.parse(value) as E),
      liveness,
      signal,
      live,
    });
    return mapYields(entries, ([entryId, json]) => parseEntry<E>([entryId, ['e', json]]));
  }
}

/** A stored event with its sequence number (the SSE `id:`). */
export interface SequencedOf<E> {
  seq: number;
  event: E;
}

function parseEntry<E>([id, fields]: [string, string[]]): SequencedOf<E> {
  return { seq: Number.parseInt(id, 10), event: JSON.parse(fields[1]) as E };
}

/**
 * Between two writes of one log, at least this long, unless a caller awaits `flush` (a terminal
 * event): each write costs the writer a round trip and every follower of the log a read, and a model
 * streaming tool calls as fast as its socket takes them emits an event every few hundred
 * microseconds. Measured on a 364-call generation: 50 – 85 writes at one per round trip, with as
 * many reads by the follower.
 */
export const EVENT_WRITE_GAP_MS = 4;

/**
 * Batches appends for one log, one Redis command per batch. An event emitted while no write is in
 * the air, EVENT_WRITE_GAP_MS or more after the last write, goes out at the end of the current task
 * (a microtask: a `setImmediate` would wait behind every read the event loop still has to do,
 * several milliseconds while a model stream pours in); events emitted while a write is in the air,
 * or sooner after it, go out together once it is answered and the gap has passed. So the first
 * event of a burst reaches Redis at once, and 200 tool outputs cost a handful of round trips.
 * Events take the seqs after the log's last one, read when the writer was made: the first flush
 * waits for that read, and a read that failed fails the flush, as a failed write does.
 */
export class EventWriter<E extends { type: string }> {
  /** Events not yet flushed, each with its place after the log's last seq (1 for the first emitted). */
  private pending: Array<[number, string]> = [];
  private emitted = 0;
  private flushing: Promise<void> = Promise.resolve();
  /** Writes sent and not yet answered. */
  private inFlight = 0;
  private scheduled = false;
  private failure: Error | undefined;
  /** When the last write was sent (performance.now()), and the timer waiting out the gap after it. */
  private sentAt = -Infinity;
  private gapTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly ttlSeconds: number,
    /** The log's last seq when the writer was made (the first flush waits for it). */
    private readonly lastSeq: Promise<number>,
  ) {
    // Awaited by the first flush, which reports a failed read; unhandled until then otherwise.
    void settled(lastSeq);
  }

  emit(event: E): void {
    this.emitted += 1;
    this.pending.push([this.emitted, JSON.stringify(event)]);
    if (this.scheduled) return;
    this.scheduled = true;
    // A write in the air: this event goes with the next batch, sent when that write is answered.
    // A failed write is kept in `failure` and thrown by the next flush its caller awaits.
    if (!this.inFlight) queueMicrotask(() => this.flushScheduled());
  }

  private flushScheduled(): void {
    if (!this.scheduled || this.inFlight || this.gapTimer) return;
    const wait = this.sentAt + EVENT_WRITE_GAP_MS - performance.now();
    if (wait <= 0) void settled(this.flush());
    else
      this.gapTimer = setTimeout(() => {
        this.gapTimer = undefined;
        this.flushScheduled();
      }, wait);
  }

  /** Writes everything emitted so far, at once; rejects if any earlier write failed. */
  flush(): Promise<void> {
    this.scheduled = false;
    clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    this.sentAt = performance.now();
    const batch = this.pending;
    this.pending = [];
    this.inFlight += 1;
    this.flushing = this.flushing
      .then(async () => {
        if (!batch.length) return;
        const last = await this.lastSeq;
        // One command for the whole batch (not an XADD each): the writer's Redis cost is per flush.
        const entries = batch.map(([place, json]) => [`${last + place}-0`, json] as const);
        await redisScripts(this.redis).appendBatch({ log: this.key }, { ttlSeconds: this.ttlSeconds, entries });
      })
      .catch((error: unknown) => {
        this.failure ??= error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        this.inFlight -= 1;
        this.flushScheduled();
      });
    return this.flushing.then(() => {
      if (this.failure) throw this.failure;
    });
  }
}

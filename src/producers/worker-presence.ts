import { randomUUID } from 'node:crypto';
import { QUEUE_NAMES, type QueueName } from '../../config';
import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { RedisClient } from '../lib/redis';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts } from '../lib/redis-scripts';

/** Entries of processes silent this long are removed by the next beat of any worker. */
const FORGET_AFTER_MS = 3_600_000;

/** How long the API trusts one read of the workers' beats before asking Redis again. */
const READ_REUSE_MS = 1_000;

/** What a service that queues work asks before writing anything: is there a worker to run it? */
export interface QueueConsumers {
  /** Throws 503 `queue_unconsumed` when no worker has consumed `queue` for the window. */
  require(queue: QueueName): Promise<void>;
}

/** What the API says of each queue: a worker beat within the window, or none. */
export type QueueConsumerState = 'consumed' | 'no_worker';

/**
 * Which queues have a live worker. Each worker process beats for the queues it consumes (one
 * sorted set, member `queue|process`, score the beat's time) every third of the window; the API
 * counts a queue unconsumed once no worker has beaten for it for `windowMs`, measured from the
 * API's own start at the earliest (workers started with it get the window to say so). An
 * unconsumed queue is warned about in the log and `/readyz`, and a request that would wait on it
 * fails at once with 503 `queue_unconsumed` instead of hanging until its own timeout.
 */
export class WorkerPresence implements QueueConsumers {
  private readonly key: string;
  private readonly startedAt = Date.now();
  private last?: { at: number; beats: Promise<BeatsRead> };

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
    /** QUEUE_UNCONSUMED_SECONDS in ms: how long a queue may go without a worker's beat. */
    readonly windowMs: number,
  ) {
    this.key = redisKeys(keyPrefix).queueWorkers();
  }

  /** How often a worker beats: three beats per window, so one lost beat never makes a queue look unconsumed. */
  get beatMs(): number {
    return Math.max(100, Math.floor(this.windowMs / 3));
  }

  /**
   * Worker side: beats for `queues` now and every {@link beatMs} until `stop`, which takes this
   * process's entries out at once (a drained worker is not counted a moment longer).
   */
  async announce(queues: readonly QueueName[], logger: Pick<Logger, 'warn'>): Promise<{ stop(): Promise<void> }> {
    const members = queues.map((queue) => `${queue}|${randomUUID()}`);
    // One call per beat, timed by Redis as it is written: a beat that waited on a busy Redis still
    // lands before any read that reached Redis after it, and carries the time it landed.
    const beat = () => redisScripts(this.redis).queuePresenceBeat({ workers: this.key }, { members, forgetMs: FORGET_AFTER_MS });
    await beat();
    const timer = setInterval(
      () => void beat().catch((error: unknown) => logger.warn({ err: error }, 'worker presence beat failed; retried at the next beat')),
      this.beatMs,
    );
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await this.redis
          .zrem(this.key, ...members)
          .catch((error: unknown) => logger.warn({ err: error }, 'worker presence not withdrawn; it lapses after the window'));
      },
    };
  }

  /**
   * API side: each queue's state. A read of the beats is reused for a second (`fresh`: read now),
   * except where the time since the read alone would turn a queue unconsumed: a worker whose beat
   * came late is asked about again, not counted gone.
   */
  async states(fresh = false): Promise<Record<QueueName, QueueConsumerState>> {
    const now = Date.now();
    let last = this.last;
    if (fresh || !last || now - last.at >= READ_REUSE_MS) {
      const beats = this.readBeats();
      // A failed read is not reused: the next caller asks again.
      beats.catch(() => {
        if (this.last?.beats === beats) this.last = undefined;
      });
      last = this.last = { at: now, beats };
    }
    const read = await last.beats;
    // A read made for this call is judged at the moment Redis answered it, not when the call began
    // (on a busy host the two are far apart, and the earlier moment would count a late beat as live).
    const at = Math.max(now, read.readAt);
    const states = this.judge(read, at);
    if (at === read.readAt) return states;
    const then = this.judge(read, read.readAt);
    return QUEUE_NAMES.some((queue) => states[queue] !== then[queue]) ? this.states(true) : states;
  }

  /** The queues no worker has consumed for the whole window. */
  async unconsumed(): Promise<QueueName[]> {
    const states = await this.states();
    return QUEUE_NAMES.filter((queue) => states[queue] === 'no_worker');
  }

  /** Each queue's state at `now` (this process's clock), by one read of the beats. */
  private judge({ beats, offset }: BeatsRead, now: number): Record<QueueName, QueueConsumerState> {
    // Beats carry Redis's clock, so machines whose clocks differ agree; this process's clock is
    // moved onto it by the offset the read saw.
    const serverNow = now + offset;
    const since = (queue: QueueName) => Math.max(beats.get(queue) ?? 0, this.startedAt + offset);
    return Object.fromEntries(
      QUEUE_NAMES.map((queue) => [queue, serverNow - since(queue) >= this.windowMs ? 'no_worker' : 'consumed'] as const),
    ) as Record<QueueName, QueueConsumerState>;
  }

  /**
   * Throws 503 `queue_unconsumed` when no worker has consumed `queue` for the window, naming the
   * command that starts one: a request that would wait on it answers now, not after its timeout.
   * A failed read lets the request through (it meets its own timeout, as before).
   */
  async require(queue: QueueName): Promise<void> {
    // A refusal is read afresh: a worker that started within the last second is not missed.
    const states = await this.states()
      .then((cached) => (cached[queue] === 'no_worker' ? this.states(true) : cached))
      // eslint-disable-next-line no-restricted-syntax -- Redis unread: the request goes on and meets its own errors and timeout, as before
      .catch(() => undefined);
    if (states?.[queue] !== 'no_worker') return;
    throw new AppError(
      503,
      'queue_unconsumed',
      `No worker consumes the ${queue} queue (none seen for ${Math.round(this.windowMs / 1000)} s); start one with \`switchboard worker --queues=${queue}\` (or WORKER_QUEUES including ${queue})`,
      { queue },
      { 'Retry-After': String(Math.ceil(this.windowMs / 1000)) },
    );
  }

  /**
   * API side: warns (once per change) about the queues no worker consumes, after the first window
   * and then every window. The returned function stops it.
   */
  watch(logger: Pick<Logger, 'warn' | 'info'>): () => void {
    let reported = '';
    const check = async () => {
      const missing = await this.unconsumed();
      const now = missing.join(',');
      if (now === reported) return;
      if (missing.length)
        logger.warn(
          { queues: missing },
          `no worker consumes ${missing.join(', ')}: requests that need ${missing.length === 1 ? 'it' : 'them'} answer 503 queue_unconsumed; start \`switchboard worker --queues=${missing.join(',')}\``,
        );
      else if (reported) logger.info('every queue has a live worker again');
      reported = now;
    };
    const timer = setInterval(
      () => void check().catch((error: unknown) => logger.warn({ err: error }, 'could not read which queues have a worker')),
      this.windowMs,
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Redis's clock, in milliseconds: every process's beats and reads are timed by the one server. */
  private async serverNow(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  private async readBeats(): Promise<BeatsRead> {
    const serverNow = await this.serverNow();
    const readAt = Date.now();
    const offset = serverNow - readAt;
    const entries = await this.redis.zrangebyscore(this.key, serverNow - FORGET_AFTER_MS, '+inf', 'WITHSCORES');
    const beats = new Map<string, number>();
    for (let i = 0; i < entries.length; i += 2) {
      const queue = entries[i].slice(0, entries[i].indexOf('|'));
      beats.set(queue, Math.max(beats.get(queue) ?? 0, Number(entries[i + 1])));
    }
    return { beats, offset, readAt };
  }
}

/** One read of the beats: each queue's newest beat (Redis's clock), and when the read was made on both clocks. */
interface BeatsRead {
  beats: Map<string, number>;
  /** Redis's clock minus this process's, at the read. */
  offset: number;
  /** This process's clock when Redis told its time. */
  readAt: number;
}

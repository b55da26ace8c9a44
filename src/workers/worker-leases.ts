import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { QueueName } from '../../config';
import type { Logger } from '../lib/logger';
import { redisReady, type RedisClient } from '../lib/redis';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts } from '../lib/redis-scripts';
import type { QueueRegistry } from '../producers/registry';

/** Lapsed leases one heartbeat takes out; more wait for the next beat. */
const LAPSED_PER_BEAT = 20;
/** Between a worker name's identity (or host and pid) and its incarnation. */
const INCARNATION_SEPARATOR = '#';
/** Starts beyond a job's attempts after which a dead worker's job is left to BullMQ's stall limit. */
const MAX_RESTARTS = 2;

export interface WorkerLeasesOptions {
  /** The queues' Redis (the leases live beside the jobs they speak for). */
  redis: RedisClient;
  keyPrefix: string;
  queues: Pick<QueueRegistry, 'requeueActiveOf'>;
  /** Every queue whose active jobs a dead process may hold (all of them: any process may have run any). */
  queueNames: readonly QueueName[];
  /** How long a process counts as alive after its last heartbeat; it beats four times per lease. */
  leaseMs: number;
  /**
   * This process's identity across restarts, when something guarantees that one live process at
   * most holds it (its data directory, claimed by it alone). Its leases are named after it, and at
   * start it takes out the leases of its earlier incarnations and puts their jobs back at once.
   */
  identity?: string;
  logger: Logger;
}

/**
 * The dead-worker detector. Each worker process holds a lease in Redis under its own worker name
 * (the `name` its BullMQ workers write on each job they take, `processedBy`) and renews it four
 * times per lease. At each beat it also takes out the leases that lapsed: those processes were
 * killed (a process that stops cleanly gives its lease back), and their active jobs go back to
 * waiting at once, instead of waiting for BullMQ's job lock to lapse and its stall check to notice.
 * A lease that lapsed while this process could not reach Redis either (an outage stops every
 * beat) is taken out only after this process has beaten for a whole lease since: a live owner
 * renews it by then.
 * One script call per process and beat, whatever the number of jobs: the jobs' own locks keep
 * their length, so their renewals cost what they did.
 *
 * A process with an identity (see {@link WorkerLeasesOptions.identity}) knows at start that every
 * lease named after that identity belongs to an incarnation of it that is dead (a kill -9 and a
 * restart): it takes those out and puts their jobs back before its workers start, instead of
 * waiting for them to lapse like a stranger's.
 */
export class WorkerLeases {
  /**
   * This process's worker name: its identity, or host and pid, then a random part (the incarnation:
   * a restarted process keeps its identity, a restarted container may reuse a pid).
   */
  readonly name: string;
  private timer?: NodeJS.Timeout;
  private beating?: Promise<unknown>;
  private sweeping?: Promise<unknown>;
  /** Dead processes whose jobs a sweep under way has still to put back. */
  private readonly pending = new Set<string>();
  private stopped = false;
  /** Whether the first beat went out (before it, holding no lease is expected). */
  private started = false;
  /**
   * When (Redis ms) this process's unbroken run of beats began; 0 after a failed beat. Leases that
   * lapsed before it are taken out only a whole lease later (a Redis outage stops every beat).
   */
  private watchingSince = 0;
  private readonly key: string;
  private readonly log: Logger;

  constructor(private readonly options: WorkerLeasesOptions) {
    this.name = `${options.identity ?? `${hostname()}:${process.pid}`}${INCARNATION_SEPARATOR}${randomUUID().slice(0, 8)}`;
    this.key = redisKeys(options.keyPrefix).workerLeases();
    this.log = options.logger.child({ component: 'worker-leases', worker: this.name });
  }

  /**
   * Takes the lease (first beat) and beats until {@link stop}. With an identity, first takes out the
   * leases of this process's earlier incarnations and puts their active jobs back to waiting.
   */
  async start(): Promise<void> {
    // The connection fails fast: a start while it is (re)connecting waits for it rather than failing.
    await redisReady(this.options.redis);
    if (this.options.identity !== undefined) await this.takeOver(this.options.identity);
    await this.beat();
    this.timer = setInterval(
      () => {
        // Renewing never waits on a sweep: putting back a dead process's jobs can take longer than
        // a lease, and this process's own lease must not lapse meanwhile.
        this.beating ??= this.renew()
          .then((lapsed) => this.sweepLater(lapsed))
          .catch((error: unknown) => this.log.warn({ err: error }, 'worker lease not renewed'))
          .finally(() => (this.beating = undefined));
      },
      Math.max(100, Math.floor(this.options.leaseMs / 4)),
    );
    this.timer.unref();
  }

  /** Takes this process's lease and puts back the jobs of the earlier incarnations of `identity`. */
  private async takeOver(identity: string): Promise<void> {
    const earlier = await redisScripts(this.options.redis).workerLeaseTakeOver(
      { leases: this.key },
      { identity: `${identity}${INCARNATION_SEPARATOR}`, name: this.name, leaseMs: this.options.leaseMs },
    );
    if (earlier.length)
      this.log.warn({ earlierIncarnations: earlier }, 'this process restarted: the jobs its earlier run held go back to waiting');
    await this.sweep(earlier);
  }

  /** Renews this process's lease, and puts back the jobs of every process whose lease lapsed. */
  async beat(): Promise<string[]> {
    return this.sweep(await this.renew());
  }

  /** Renews this process's lease; the names of the processes whose lease lapsed (taken off the set). */
  private async renew(): Promise<string[]> {
    if (this.stopped) return [];
    let beat: { renewed: boolean; now: number; lapsed: string[] };
    try {
      beat = await redisScripts(this.options.redis).workerLeaseBeat(
        { leases: this.key },
        { name: this.name, leaseMs: this.options.leaseMs, max: LAPSED_PER_BEAT, watchingSince: this.watchingSince },
      );
    } catch (error) {
      this.watchingSince = 0;
      throw error;
    }
    const { renewed, now, lapsed } = beat;
    if (this.watchingSince === 0) this.watchingSince = now;
    if (!renewed && this.started)
      this.log.warn('this worker process missed its heartbeats for a whole lease: its running jobs may run twice');
    this.started = true;
    return lapsed;
  }

  /** Puts back the jobs of `dead` processes in the background, one sweep at a time; names that arrive meanwhile wait for it. */
  private sweepLater(dead: string[]): void {
    for (const name of dead) this.pending.add(name);
    if (this.sweeping || this.pending.size === 0) return;
    this.sweeping = (async () => {
      while (this.pending.size > 0 && !this.stopped) {
        const names = [...this.pending];
        this.pending.clear();
        await this.sweep(names).catch((error: unknown) => {
          // Their leases are gone from the set: BullMQ's stall check restarts what is left.
          this.log.warn({ err: error, deadWorkers: names }, 'jobs of dead worker processes not all put back');
        });
      }
    })().finally(() => (this.sweeping = undefined));
  }

  /** Puts the active jobs of the `dead` processes back to waiting; their ids. */
  private async sweep(dead: string[]): Promise<string[]> {
    const requeued: string[] = [];
    for (const name of dead) {
      for (const queue of this.options.queueNames) {
        const ids = await this.options.queues.requeueActiveOf(queue, name, MAX_RESTARTS, this.log);
        if (ids.length) this.log.warn({ deadWorker: name, queue, jobIds: ids }, 'jobs of a dead worker process put back to waiting');
        requeued.push(...ids);
      }
    }
    return requeued;
  }

  /** Stops beating and gives the lease back (call after the workers closed: their jobs are done). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    await this.sweeping;
    this.stopped = true;
    await this.options.redis
      .zrem(this.key, this.name)
      // Left in place, the lease lapses on its own and another process finds no job of ours.
      .catch((error: unknown) => this.log.warn({ err: error }, 'worker lease not given back; it lapses on its own'));
  }
}

import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { QueueName } from '../../config';

/** BullMQ key prefix for a deployment prefix (`sb` → `sb:bull`), shared by queues and workers. */
export const bullPrefix = (keyPrefix: string) => `${keyPrefix}:bull`;

/**
 * One BullMQ `Queue` per queue name, created on first use over a shared fail-fast connection, so
 * an enqueue while Redis is down rejects at once instead of waiting for a reconnect.
 */
export class QueueRegistry {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(
    private readonly connection: Redis,
    private readonly keyPrefix: string,
  ) {}

  get(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection, prefix: bullPrefix(this.keyPrefix), skipWaitingForReady: true });
      // Errors surface on the add() that caused them; the queue's own 'error' event must not crash the process.
      queue.on('error', () => undefined);
      this.queues.set(name, queue);
    }
    return queue;
  }

  all(): Queue[] {
    return [...this.queues.values()];
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.all().map((queue) => queue.close()));
  }
}

/** Defaults every job shares: retries with exponential backoff, bounded history. */
export const baseJobOptions: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { age: 24 * 3600, count: 5_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

import { randomUUID } from 'node:crypto';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { redisKeys } from '../../src/lib/redis-keys';
import { WorkerPresence } from '../../src/producers/worker-presence';
import { testRedisTarget } from '../support/database';
import { deleteKeysEverywhere } from '../support/redis';
import { eventually } from '../support/wait';

/**
 * Which queues have a live worker, read from the workers' beats in a real Redis: a read is reused
 * for a second, but never turns a queue unconsumed on its age alone.
 */
describe('WorkerPresence', () => {
  let redis: RedisClient;
  let prefix: string;

  beforeEach(async () => {
    redis = createRedis(testRedisTarget('queues'), 'command');
    await redisReady(redis);
    prefix = `presence-test-${randomUUID().slice(0, 8)}`;
  });

  afterEach(async () => {
    await deleteKeysEverywhere(redis, `${prefix}:*`);
    redis.disconnect();
  });

  const serverNow = async () => {
    const [seconds, micros] = await redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  };
  const beat = async (queue: string, at: number) => redis.zadd(redisKeys(prefix).queueWorkers(), at, `${queue}|${randomUUID()}`);

  test('a worker whose beat came after the reused read is still counted, not gone', async () => {
    // Given: an API's view whose first window has passed with no worker at all
    const presence = new WorkerPresence(redis, prefix, 1_000);
    await eventually(
      () => presence.states(true),
      (states) => states.generation === 'no_worker',
      5_000,
    );

    // When: a read sees the generation worker's last beat 700 ms old, and the worker beats again
    await beat('generation', (await serverNow()) - 700);
    const readAt = Date.now();
    expect((await presence.states(true)).generation).toBe('consumed');
    await beat('generation', await serverNow());

    // Then: later, inside the second that read is reused, the old beat alone is out of the window,
    // yet the queue is consumed: the late beat is read, not assumed missing
    await eventually(
      async () => Date.now() - readAt,
      (elapsed) => elapsed >= 400,
      2_000,
    );
    expect((await presence.states()).generation).toBe('consumed');
    expect(await presence.unconsumed()).not.toContain('generation');
  });

  test('a queue whose last beat is older than the window is unconsumed, and the refusal names its worker', async () => {
    // Given: a generation worker that beat once, then died
    const presence = new WorkerPresence(redis, prefix, 500);
    await beat('generation', await serverNow());
    expect((await presence.states(true)).generation).toBe('consumed');

    // Then: once the window passes with no beat, requests that need it are refused at once
    await eventually(
      () => presence.states(),
      (states) => states.generation === 'no_worker',
      5_000,
    );
    await expect(presence.require('generation')).rejects.toMatchObject({ status: 503, code: 'queue_unconsumed' });

    // When: a worker beats again, the next request goes through (a refusal is read afresh)
    await beat('generation', await serverNow());
    await expect(presence.require('generation')).resolves.toBeUndefined();
  });
});

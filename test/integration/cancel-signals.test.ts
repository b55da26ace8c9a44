import { randomUUID } from 'node:crypto';
import { CancelSignals } from '../../src/lib/cancel-signals';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { redisKeys } from '../../src/lib/redis-keys';
import { testRedisTarget } from '../support/database';
import { clientsEverywhere, deleteKeysEverywhere } from '../support/redis';

/** Resolves when `signal` aborts, or fails after `timeoutMs`. */
function aborted(signal: AbortSignal, timeoutMs: number): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not aborted within ${timeoutMs} ms`)), timeoutMs);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve(signal.reason);
      },
      { once: true },
    );
  });
}

/** Cancel requests across processes: a key that is remembered, plus a pub/sub message. */
describe('CancelSignals', () => {
  let redis: RedisClient;
  let signals: CancelSignals;
  let prefix: string;
  let connectionName: string;

  beforeEach(async () => {
    prefix = `cancel-test:${randomUUID()}`;
    connectionName = `cancel-test-${randomUUID()}`;
    // The subscriber is a duplicate of this connection, so it carries the same name.
    redis = createRedis(testRedisTarget('realtime'), 'command', { connectionName });
    await redisReady(redis);
    signals = new CancelSignals(redis, prefix);
    await signals.listen();
  });

  afterEach(async () => {
    await signals.close();
    await deleteKeysEverywhere(redis, `${prefix}:*`);
    redis.disconnect();
  });

  test('a request from another node aborts the watch at once, through the channel', async () => {
    const id = randomUUID();
    const watch = signals.watch('generation', id);
    const elsewhere = new CancelSignals(redis, prefix);
    await elsewhere.request('generation', id);
    const reason = await aborted(watch.signal, 10_000);
    expect(reason).toMatchObject({ name: 'CancelledError', kind: 'generation', id });
    expect(await redis.exists(redisKeys(prefix).cancelRequest('generation', id))).toBe(1);
    watch.release();
  });

  test('a request recorded while the subscriber was away (its message lost) lands when the subscriber reconnects', async () => {
    const id = randomUUID();
    const watch = signals.watch('chat', id);
    // The watch's first read (nothing requested yet) goes out before this one on the same connection.
    expect(await signals.isRequested('chat', id)).toBe(false);
    expect(watch.signal.aborted).toBe(false);

    // On a cluster, ioredis names its sharded subscriber's connection `ioredis-cluster(ssubscriber):<name>`.
    const named = new RegExp(` name=(ioredis-cluster\\(ssubscriber\\):)?${connectionName} `);
    const clients = (await clientsEverywhere(redis)).filter(({ line }) => named.test(line) && / s?sub=[1-9]/.test(line));
    expect(clients).toHaveLength(1);
    await clients[0].server.call('CLIENT', 'KILL', 'ID', clients[0].id);
    // The mark alone, with no message: only the re-read after the reconnect can see it.
    await redis.set(redisKeys(prefix).cancelRequest('chat', id), '1', 'EX', 60);

    const reason = await aborted(watch.signal, 15_000);
    expect(reason).toMatchObject({ name: 'CancelledError', kind: 'chat', id });
    watch.release();
  });

  test("a watch whose start reads the request in the run's row skips the key's read; a later request still aborts it", async () => {
    const id = randomUUID();
    const elsewhere = new CancelSignals(redis, prefix);
    // The subscriber is live (a message reaches a watch), so no reconnect's re-read runs below.
    const probeId = randomUUID();
    const probe = signals.watch('chat', probeId, { startReadsRequest: true });
    await elsewhere.request('chat', probeId);
    await aborted(probe.signal, 10_000);
    probe.release();
    // Requested before anyone watched, its message long gone: the mark alone. The start of such a
    // turn finds the request recorded on its run.
    await redis.set(redisKeys(prefix).cancelRequest('chat', id), '1', 'EX', 60);
    const plain = signals.watch('chat', id);
    const started = signals.watch('chat', id, { startReadsRequest: true });
    // A read after the watches' on the same connection: the plain watch's read has answered by now.
    expect(await signals.isRequested('chat', id)).toBe(true);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(plain.signal.aborted).toBe(true);
    expect(started.signal.aborted).toBe(false);

    await elsewhere.request('chat', id);
    expect(await aborted(started.signal, 10_000)).toMatchObject({ name: 'CancelledError', kind: 'chat', id });
    plain.release();
    started.release();
  });
});

/**
 * The stream follower alone on a local 3-master Redis Cluster, keys as the manyStreams scenario
 * follows them: `--idle` quiet generation logs (900 subscribers each) and `--hot` logs written every
 * 10 ms (`--subscribers` each). Prints the `XADD` → delivery delay of the hot entries, the `XREAD`s
 * the lanes sent per second, this process's CPU, and the heap one subscription costs (10,000 over
 * the same keys, after GC) on the cluster and, for comparison, on the Redis at REDIS_URL.
 *
 *   node --expose-gc -r ./bench/register.cjs bench/tools/cluster-follower.ts [--idle=10] [--hot=1] [--subscribers=1000] [--events=200]
 */
import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { redisKeys } from '../../src/lib/redis-keys';
import { StreamFollower } from '../../src/lib/stream-follower';
import { startRedisCluster } from '../../test/support/redis-cluster';

const flag = (name: string, fallback: number): number =>
  Number(process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);

async function delays(cluster: Cluster, options: { idle: number; hot: number; subscribers: number; events: number }) {
  const keys = redisKeys(`probe-${randomUUID().slice(0, 8)}`);
  const follower = new StreamFollower(cluster);
  const idle = Array.from({ length: options.idle }, () => keys.generationEvents(randomUUID()));
  const hot = Array.from({ length: options.hot }, () => keys.generationEvents(randomUUID()));
  for (const key of [...idle, ...hot]) await cluster.xadd(key, '1-0', 'e', 'queued');
  for (const key of idle) for (let i = 0; i < 900; i += 1) follower.subscribe(key, '1-0', () => undefined);
  const written = new Map<string, number>();
  const delay: number[] = [];
  for (const key of hot)
    for (let i = 0; i < options.subscribers; i += 1)
      follower.subscribe(key, '1-0', (entries) => {
        if (i !== 0) return;
        const now = performance.now();
        for (const [id] of entries) delay.push(now - written.get(`${key} ${id}`)!);
      });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const xreads = async () => {
    let calls = 0;
    for (const node of cluster.nodes('master'))
      calls += Number(/cmdstat_xread:calls=(\d+)/.exec(String(await node.info('commandstats')))?.[1] ?? 0);
    return calls;
  };
  const xreadsBefore = await xreads();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (let seq = 2; seq < options.events + 2; seq += 1) {
    for (const key of hot) {
      written.set(`${key} ${seq}-0`, performance.now());
      await cluster.xadd(key, `${seq}-0`, 'e', `event ${seq}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const xreadsPerSecond = Math.round(((await xreads()) - xreadsBefore) / seconds);
  await follower.close();
  delay.sort((a, b) => a - b);
  const at = (q: number) => Math.round(delay[Math.min(delay.length - 1, Math.floor(q * delay.length))] * 100) / 100;
  return {
    delivered: `${delay.length} of ${options.events * options.hot}`,
    delayMs: { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1) },
    xreadsPerSecond,
    cpuMsPerSecond: Math.round((cpu.user + cpu.system) / 1000 / seconds),
  };
}

async function bytesPerSubscription(redis: Redis | Cluster): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const keys = redisKeys(`probe-${randomUUID().slice(0, 8)}`);
  const follower = new StreamFollower(redis);
  const logs = Array.from({ length: 11 }, () => keys.generationEvents(randomUUID()));
  // One subscription per key first: the lanes and their connections are not counted.
  const stops = logs.map((key) => follower.subscribe(key, '0', () => undefined));
  await new Promise((resolve) => setTimeout(resolve, 300));
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 10_000; i += 1) {
    const state = { n: i };
    stops.push(follower.subscribe(logs[i % logs.length], '0', () => void state.n));
  }
  gc();
  const bytes = Math.round((process.memoryUsage().heapUsed - before) / 10_000);
  for (const stop of stops) stop();
  await follower.close();
  return bytes;
}

async function main() {
  const servers = await startRedisCluster(3);
  const cluster = new Cluster(servers.ports.map((port) => ({ host: '127.0.0.1', port })));
  const single = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  try {
    await cluster.ping();
    const options = { idle: flag('idle', 10), hot: flag('hot', 1), subscribers: flag('subscribers', 1_000), events: flag('events', 200) };
    console.log(JSON.stringify({ ...options, ...(await delays(cluster, options)) }));
    console.log(
      JSON.stringify({
        bytesPerSubscription: { cluster: await bytesPerSubscription(cluster), single: await bytesPerSubscription(single) },
      }),
    );
  } finally {
    single.disconnect();
    cluster.disconnect();
    await servers.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

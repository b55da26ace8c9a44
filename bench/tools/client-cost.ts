/**
 * What a Redis command costs the client: this process's CPU per call through ioredis, on the Redis
 * at REDIS_URL (default 127.0.0.1:6379) and on a local 3-master Redis Cluster, for a plain command
 * (`SET`, `XADD`), a script call (`EVAL`), and an event-log batch of two entries written as a
 * transaction (`MULTI`, two `XADD`s, `EXPIRE`, `EXEC`) and as one call of the event logs' script
 * (`appendBatch`). `--calls` per
 * shape, 32 in flight, keys spread over 1,000 hash tags; two rounds, the first warms up.
 *
 *   node -r ./bench/register.cjs bench/tools/client-cost.ts [--calls=40000]
 */
import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { redisScripts } from '../../src/lib/redis-scripts';
import { startRedisCluster } from '../../test/support/redis-cluster';

const CALLS = Number(process.argv.find((arg) => arg.startsWith('--calls='))?.slice('--calls='.length) ?? 40_000);
const IN_FLIGHT = 32;

type Client = Redis | Cluster;

/** This run's hash tag for call `i`: keys spread over 1,000 slots, none shared with another run. */
const RUN = randomUUID().slice(0, 8);
const tag = (i: number): string => `{cost-${RUN}:${i % 1000}}`;

const shapes: Record<string, (client: Client, i: number) => Promise<unknown>> = {
  set: (client, i) => client.set(`${tag(i)}:k`, 'v'),
  xadd: (client, i) => client.xadd(`${tag(i)}:s`, 'MAXLEN', '~', '100', '*', 'e', 'x'.repeat(32)),
  eval: (client, i) => client.eval("return redis.call('INCR', KEYS[1])", 1, `${tag(i)}:n`),
  'batch of 2 as MULTI': (client, i) => {
    const key = `${tag(i)}:s`;
    return client
      .multi()
      .xadd(key, 'MAXLEN', '~', '100', '*', 'e', 'x')
      .xadd(key, 'MAXLEN', '~', '100', '*', 'e', 'y')
      .expire(key, 100)
      .exec();
  },
  // The event logs' own script, as they send it (by its SHA).
  'batch of 2 as a script': (client, i) =>
    redisScripts(client).appendBatch(
      { log: `${tag(i)}:s` },
      {
        ttlSeconds: 100,
        entries: [
          ['*', 'x'],
          ['*', 'y'],
        ],
      },
    ),
};

/** Microseconds of this process's CPU per call of `shape`, `calls` calls with IN_FLIGHT at a time. */
async function cpuPerCall(client: Client, shape: (client: Client, i: number) => Promise<unknown>, calls: number): Promise<number> {
  const start = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < calls) await shape(client, next++);
    }),
  );
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}

async function main(): Promise<void> {
  const cluster = await startRedisCluster(3);
  const clients: Record<string, Client> = {
    'one Redis': new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'),
    cluster: new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port }))),
  };
  try {
    const rows: Array<Record<string, string>> = [];
    for (const round of [1, 2]) {
      for (const [shapeName, shape] of Object.entries(shapes)) {
        const row: Record<string, string> = { shape: shapeName };
        for (const [topology, client] of Object.entries(clients))
          row[topology] = `${(await cpuPerCall(client, shape, CALLS)).toFixed(1)} µs`;
        if (round === 2) rows.push(row);
      }
    }
    console.table(rows);
  } finally {
    const single = clients['one Redis'] as Redis;
    const keys = Array.from({ length: 1000 }, (_, i) => [':k', ':s', ':n'].map((suffix) => `${tag(i)}${suffix}`)).flat();
    await single.del(...keys).catch(() => undefined);
    for (const client of Object.values(clients)) client.disconnect();
    await cluster.stop();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

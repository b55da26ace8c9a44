import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis, isCluster, RedisConnections, type RedisClient } from '../../src/lib/redis';
import { testRedisSplit, testRedisTarget } from './database';

/**
 * What a test reads or watches on the run's Redis, whatever its topology: one server, every
 * master of the Redis Cluster of a TEST_REDIS_CLUSTER=1 run, or the three servers (queues,
 * realtime, cache) of a TEST_REDIS_SPLIT=1 run. A command that names no key (KEYS, MONITOR, CLIENT
 * LIST) goes to one node of a cluster only, and a connection sees one server of a split, so a test
 * asks each server here.
 */

/**
 * A connection for a test's own BullMQ `Queue`, `QueueEvents` or `Worker` on the run's Redis of
 * the queues (the cluster's seeds under TEST_REDIS_CLUSTER=1). BullMQ opens only single-server connections from
 * options, so a cluster needs a connection object; BullMQ never closes one it was given: close it
 * after the queues that use it.
 */
export function testBullConnection(): RedisClient {
  return createRedis(testRedisTarget('queues'), 'blocking');
}

/**
 * A test's own connections by concern on the run's Redis, as a Switchboard opens them: one pair
 * per distinct server (one under one Redis or a cluster, three under TEST_REDIS_SPLIT=1), so the
 * parts a test wires itself (queues, cancel signals, a budget, a journey store) each sit where the
 * app's do. `ready()` before the fail-fast ones take commands; `quit()` closes them.
 */
export function testRedisConnections(): RedisConnections {
  return RedisConnections.open({
    queues: testRedisTarget('queues'),
    realtime: testRedisTarget('realtime'),
    cache: testRedisTarget('cache'),
  });
}

/** A BullMQ `Queue` on the run's Redis under `prefix`, with a connection of its own that `close()` closes too. */
export class TestQueue extends Queue {
  private readonly own: RedisClient;

  constructor(name: string, prefix: string) {
    const connection = testBullConnection();
    super(name, { connection, prefix });
    this.own = connection;
  }

  override async close(): Promise<void> {
    try {
      await super.close();
    } finally {
      await this.own.quit();
    }
  }
}

/** BullMQ `QueueEvents` on the run's Redis under `prefix`, with a connection of its own that `close()` closes too. */
export class TestQueueEvents extends QueueEvents {
  private readonly own: RedisClient;

  private constructor(name: string, prefix: string, connection: RedisClient, lastEventId: string) {
    super(name, { connection, prefix, lastEventId });
    this.own = connection;
  }

  /**
   * Opens it on the queue's events from the last one there now. BullMQ's default starts at its
   * first read, which can come after a job the test adds next has already finished (sooner on a
   * cluster, whose connection takes longer to be ready), and that job's event would be missed.
   */
  static async open(name: string, prefix: string): Promise<TestQueueEvents> {
    const connection = testBullConnection();
    try {
      const [last] = (await connection.xrevrange(`${prefix}:${name}:events`, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
      return new TestQueueEvents(name, prefix, connection, last?.[0] ?? '0-0');
    } catch (error) {
      connection.disconnect();
      throw error;
    }
  }

  override async close(): Promise<void> {
    try {
      await super.close();
    } finally {
      await this.own.quit();
    }
  }
}

/** The servers `client` itself talks to: itself, or each master of a cluster (data lives on masters). */
export function redisServers(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/**
 * The servers the "everywhere" helpers ask through `client`: those it talks to and, under
 * TEST_REDIS_SPLIT=1, when it is connected to one of the run's three servers, the other two as
 * well (through connections of their own, closed when `client` closes), as a cluster's every master.
 */
function serversEverywhere(client: RedisClient): Redis[] {
  return isCluster(client) ? redisServers(client) : [client, ...splitSiblings(client)];
}

const siblings = new WeakMap<Redis, Redis[]>();

/** The run's other split servers than the one `client` is connected to (none when it is on none of them). */
function splitSiblings(client: Redis): Redis[] {
  const split = testRedisSplit();
  if (!split) return [];
  const known = siblings.get(client);
  if (known) return known;
  const address = (url: string) => {
    const { hostname, port } = new URL(url);
    return `${hostname}:${port || '6379'}`;
  };
  const urls = Object.values(split);
  const own = `${client.options.host ?? '127.0.0.1'}:${client.options.port ?? 6379}`;
  if (!urls.some((url) => address(url) === own)) return [];
  const others = urls
    .filter((url) => address(url) !== own)
    .map((url) => {
      const { hostname, port } = new URL(url);
      // Unnamed (a test counting its named connections must not count these) and queueing
      // commands until connected (a fail-fast client's would reject before then).
      return client.duplicate({ host: hostname, port: Number(port), connectionName: undefined, enableOfflineQueue: true });
    });
  siblings.set(client, others);
  client.once('end', () => others.forEach((other) => other.disconnect()));
  return others;
}

/** Every key matching `pattern`, on every server behind `client`. */
export async function keysEverywhere(client: RedisClient, pattern: string): Promise<string[]> {
  return (await Promise.all(serversEverywhere(client).map((server) => server.keys(pattern)))).flat();
}

/**
 * Deletes every key matching `pattern`, on every server behind `client`. One DEL per key: the
 * keys of one cluster node sit in many slots, and a multi-key DEL needs one.
 */
export async function deleteKeysEverywhere(client: RedisClient, pattern: string): Promise<void> {
  await Promise.all(
    serversEverywhere(client).map(async (server) => {
      const keys = await server.keys(pattern);
      // On a cluster through `client`, which follows a key's slot wherever it has moved.
      await Promise.all(keys.map((key) => (isCluster(client) ? client.del(key) : server.del(key))));
    }),
  );
}

/** One client connection as a server's CLIENT LIST shows it, and the server it is connected to. */
export interface ServerClient {
  server: Redis;
  /** The CLIENT LIST line (`id=… addr=… name=… sub=…`). */
  line: string;
  id: string;
}

/** The client connections of every server behind `client` (to find one, and CLIENT KILL it where it is). */
export async function clientsEverywhere(client: RedisClient): Promise<ServerClient[]> {
  const lists = await Promise.all(
    serversEverywhere(client).map(async (server) => ({ server, list: String(await server.call('CLIENT', 'LIST')) })),
  );
  return lists.flatMap(({ server, list }) =>
    list
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => ({ server, line, id: /\bid=(\d+)/.exec(line)?.[1] ?? '' })),
  );
}

/** A command a server's MONITOR reported: its arguments (name first) and where it came from. */
export interface MonitoredCommand {
  args: string[];
  /** `ip:port` of the sending connection, or `lua` for a command a script ran. */
  source: string;
}

/**
 * MONITOR on every server behind `client` (a connection of its own per server), calling
 * `onCommand` for each command seen, in each server's order. Resolves once every server
 * monitors; `stop()` closes the monitors.
 */
export async function monitorEverywhere(client: RedisClient, onCommand: (command: MonitoredCommand) => void): Promise<{ stop(): void }> {
  const monitors = await Promise.all(serversEverywhere(client).map((server) => openMonitor(server)));
  for (const monitor of monitors) {
    monitor.on('monitor', (_time: string, args: string[], source: string) => onCommand({ args, source }));
  }
  return { stop: () => monitors.forEach((monitor) => monitor.disconnect()) };
}

/**
 * A MONITOR connection to `server`, resolved once it monitors. ioredis's own `monitor()` takes it
 * as monitoring only a tick after MONITOR's `OK`: on a busy server the first lines can come in the
 * same read as the `OK`, and ioredis reports each as a "Command queue state error" (an error
 * event, unhandled after the first). Those lines are commands from before this monitor started,
 * which no caller waits for: they are dropped here; any other error fails the monitor.
 */
function openMonitor(server: Redis): Promise<Redis> {
  const monitor = server.duplicate({ monitor: true, lazyConnect: false });
  return new Promise((resolve, reject) => {
    const early = (error: Error) => {
      if (!error.message.startsWith('Command queue state error')) reject(error);
    };
    monitor.on('error', early);
    monitor.once('monitoring', () => {
      monitor.off('error', early);
      resolve(monitor);
    });
  });
}

import { randomUUID } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { redisKeys, keySlot } from '../../src/lib/redis-keys';
import { pipelineByKey } from '../../src/lib/redis';
import { FOLLOWER_CONNECTION_NAME, StreamFollower, type StreamEntry } from '../../src/lib/stream-follower';
import { startRedisCluster, type LocalRedisCluster } from '../support/redis-cluster';
import { waitUntil } from '../support/wait';

/**
 * The follower and batched commands on a real three-master Redis Cluster: keys of every node
 * followed through one lane per node, and a slot moved to another node mid-follow.
 */
describe('on a Redis Cluster', () => {
  let servers: LocalRedisCluster;
  let cluster: Cluster;
  let follower: StreamFollower;
  const keys = redisKeys(`fol-${randomUUID().slice(0, 8)}`);

  beforeAll(async () => {
    servers = await startRedisCluster(3);
    cluster = new Cluster(servers.ports.map((port) => ({ host: '127.0.0.1', port })));
    await cluster.ping();
  }, 60_000);

  beforeEach(() => {
    follower = new StreamFollower(cluster);
  });

  afterEach(async () => {
    await follower.close();
  });

  afterAll(async () => {
    await cluster?.quit();
    await servers?.stop();
  });

  /** The master serving `key` (its `host:port`) and its connection. */
  const nodeOf = (key: string): { id: string; redis: Redis } => {
    const id = cluster.slots[keySlot(key)][0];
    return { id, redis: cluster.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === id)! };
  };

  /** Moves `key`'s slot, with its keys, to the master `to`, as a resharding does. */
  const moveSlot = async (key: string, to: Redis): Promise<void> => {
    const slot = keySlot(key);
    const from = nodeOf(key).redis;
    const [fromId, toId] = await Promise.all([from.cluster('MYID'), to.cluster('MYID')]);
    await to.cluster('SETSLOT', slot, 'IMPORTING', fromId);
    await from.cluster('SETSLOT', slot, 'MIGRATING', toId);
    const inSlot = (await from.cluster('GETKEYSINSLOT', slot, 100)) as string[];
    if (inSlot.length) await from.migrate('127.0.0.1', to.options.port!, '', 0, 5_000, 'KEYS', ...inSlot);
    for (const node of cluster.nodes('master')) await node.cluster('SETSLOT', slot, 'NODE', toId);
  };

  /** A generation log key on the same master as `key`, in another slot. */
  const neighbourOf = (key: string): string => {
    let neighbour = keys.generationEvents(randomUUID());
    while (nodeOf(neighbour).id !== nodeOf(key).id || keySlot(neighbour) === keySlot(key)) neighbour = keys.generationEvents(randomUUID());
    return neighbour;
  };

  /** Generation log keys until there is one on each master. */
  const keysOnEveryNode = (): string[] => {
    const byNode = new Map<string, string>();
    while (byNode.size < 3) {
      const key = keys.generationEvents(randomUUID());
      if (!byNode.has(nodeOf(key).id)) byNode.set(nodeOf(key).id, key);
    }
    return [...byNode.values()];
  };

  test('logs on every master are followed at once, each with one reading connection per node', async () => {
    const followed = keysOnEveryNode();
    const received = new Map<string, StreamEntry[]>(followed.map((key) => [key, []]));
    for (const key of followed) follower.subscribe(key, '0', (entries) => received.get(key)!.push(...entries));

    for (const [index, key] of followed.entries()) {
      await cluster.xadd(key, '1-0', 'e', `first ${index}`);
      await cluster.xadd(key, '2-0', 'e', `second ${index}`);
    }

    await waitUntil(() => [...received.values()].every((entries) => entries.length === 2));
    followed.forEach((key, index) =>
      expect(received.get(key)).toEqual([
        ['1-0', `first ${index}`],
        ['2-0', `second ${index}`],
      ]),
    );
    expect(follower.size).toBe(3);
    for (const node of cluster.nodes('master')) {
      const readers = String(await node.client('LIST'))
        .split('\n')
        .filter((line: string) => line.includes(`name=${FOLLOWER_CONNECTION_NAME}`));
      expect(readers).toHaveLength(1);
    }
  });

  test('many logs of different slots on each master are all followed, in order, as subscriptions come and go', async () => {
    // 40 generation logs: each its own slot, about 13 per master, so every lane reads across slots.
    const followed = Array.from({ length: 40 }, () => keys.generationEvents(randomUUID()));
    const perNode = new Map<string, Set<number>>();
    for (const key of followed) perNode.set(nodeOf(key).id, (perNode.get(nodeOf(key).id) ?? new Set()).add(keySlot(key)));
    expect([...perNode.values()].some((slots) => slots.size > 1)).toBe(true);

    const received = new Map<string, StreamEntry[]>();
    const unsubscribes = new Map<string, () => void>();
    const follow = (key: string): void => {
      received.set(key, []);
      unsubscribes.set(
        key,
        follower.subscribe(key, '0', (entries) => received.get(key)!.push(...entries)),
      );
    };
    const appendAll = async (list: string[], ids: number[]): Promise<void> => {
      await Promise.all(
        list.map(async (key) => {
          for (const id of ids) await cluster.xadd(key, `${id}-0`, 'e', `${key} #${id}`);
        }),
      );
    };
    const expected = (key: string, ids: number[]): StreamEntry[] => ids.map((id) => [`${id}-0`, `${key} #${id}`]);

    const first = followed.slice(0, 30);
    for (const key of first) follow(key);
    await appendAll(first, [1, 2, 3]);
    await waitUntil(() => first.every((key) => received.get(key)!.length === 3), 10_000);

    // Mid-follow: ten more logs join (with entries written before they joined), five leave.
    const joined = followed.slice(30);
    await appendAll(joined, [1]);
    for (const key of joined) follow(key);
    const left = first.slice(0, 5);
    for (const key of left) unsubscribes.get(key)!();
    await appendAll(followed, [4, 5]);

    const staying = followed.filter((key) => !left.includes(key));
    await waitUntil(() => staying.every((key) => received.get(key)!.length >= (joined.includes(key) ? 3 : 5)), 10_000);
    for (const key of first.slice(5)) expect(received.get(key)).toEqual(expected(key, [1, 2, 3, 4, 5]));
    for (const key of joined) expect(received.get(key)).toEqual(expected(key, [1, 4, 5]));
    for (const key of left) expect(received.get(key)).toEqual(expected(key, [1, 2, 3]));
    expect(follower.size).toBe(35);
    for (const node of cluster.nodes('master')) {
      const readers = String(await node.client('LIST'))
        .split('\n')
        .filter((line: string) => line.includes(`name=${FOLLOWER_CONNECTION_NAME}`));
      expect(readers).toHaveLength(1);
    }
  }, 30_000);

  test('a followed log whose slot moves to another master keeps flowing: nothing lost, nothing repeated', async () => {
    const [key, other] = keysOnEveryNode();
    // A neighbour on the same master in another slot: the lane reads across slots while the slot moves.
    const neighbour = neighbourOf(key);
    const received: StreamEntry[] = [];
    const besides: StreamEntry[] = [];
    follower.subscribe(key, '0', (entries) => received.push(...entries));
    follower.subscribe(neighbour, '0', (entries) => besides.push(...entries));
    await cluster.xadd(key, '1-0', 'e', 'before');
    await waitUntil(() => received.length === 1);

    // Move the key's slot to the master of `other`, as a resharding does.
    await moveSlot(key, nodeOf(other).redis);

    await cluster.xadd(key, '2-0', 'e', 'after');
    await cluster.xadd(key, '3-0', 'e', 'later');

    await cluster.xadd(neighbour, '1-0', 'e', 'stayed');

    await waitUntil(() => received.length >= 3 && besides.length >= 1, 15_000);
    expect(besides).toEqual([['1-0', 'stayed']]);
    expect(received).toEqual([
      ['1-0', 'before'],
      ['2-0', 'after'],
      ['3-0', 'later'],
    ]);
  }, 30_000);

  test('subscribers that moved lanes with their slot stop at unsubscribe; the others go on, each entry once, in order', async () => {
    const [key, other] = keysOnEveryNode();
    const neighbour = neighbourOf(key);
    const leaving: StreamEntry[] = [];
    const staying: StreamEntry[] = [];
    const stopLeaving = follower.subscribe(key, '0', (entries) => leaving.push(...entries));
    follower.subscribe(key, '0', (entries) => staying.push(...entries));
    follower.subscribe(neighbour, '0', () => undefined);
    await cluster.xadd(key, '1-0', 'e', 'before');
    await waitUntil(() => leaving.length === 1 && staying.length === 1);

    await moveSlot(key, nodeOf(other).redis);
    await cluster.xadd(key, '2-0', 'e', 'moved');
    await waitUntil(() => leaving.length === 2 && staying.length === 2, 15_000);

    // Unsubscribed in the lane it moved to: the next entry reaches the subscriber that stayed only.
    stopLeaving();
    expect(follower.size).toBe(2);
    await cluster.xadd(key, '3-0', 'e', 'after');
    await waitUntil(() => staying.length === 3);
    expect(leaving.map(([id]) => id)).toEqual(['1-0', '2-0']);
    expect(staying).toEqual([
      ['1-0', 'before'],
      ['2-0', 'moved'],
      ['3-0', 'after'],
    ]);
  }, 30_000);

  test('a lane reading several slots waits on the slot whose entries came last, and reads each of them at once', async () => {
    const key = keys.generationEvents(randomUUID());
    const quiet = [neighbourOf(key), neighbourOf(key), neighbourOf(key)];
    // Watching before anything is followed: the node is quiet while MONITOR starts.
    const watcher = await nodeOf(key).redis.monitor();
    // The key each short blocking read of the lane waited on.
    const waitedOn: string[] = [];
    watcher.on('monitor', (_time: string, args: string[]) => {
      if (args[0].toLowerCase() === 'xread' && args.includes('BLOCK')) waitedOn.push(args[args.indexOf('STREAMS') + 1]);
    });
    const received: StreamEntry[] = [];
    follower.subscribe(key, '0', (entries) => received.push(...entries));
    for (const neighbour of quiet) follower.subscribe(neighbour, '0', () => undefined);
    try {
      await cluster.xadd(key, '1-0', 'e', 'first');
      await waitUntil(() => received.length === 1);
      const from = waitedOn.length;
      // Each entry written once the one before arrived: from now on the lane waits on this slot only.
      for (let seq = 2; seq <= 10; seq += 1) {
        await waitUntil(() => waitedOn.length > from + seq - 2);
        await cluster.xadd(key, `${seq}-0`, 'e', `#${seq}`);
        await waitUntil(() => received.length === seq);
      }
      expect(received.map(([id]) => id)).toEqual(Array.from({ length: 10 }, (_, i) => `${i + 1}-0`));
      expect(new Set(waitedOn.slice(from + 1))).toEqual(new Set([key]));
    } finally {
      watcher.disconnect();
    }
  }, 30_000);

  test('keySlot agrees with CLUSTER KEYSLOT, hash tags and odd braces included', async () => {
    const samples = [
      'foo',
      keys.canvasLog(randomUUID()),
      keys.bullmqPrefix(),
      '{}foo',
      'foo{}{bar}',
      'foo{{bar}}zap',
      'foo{bar}{zap}',
      'ключ{é}',
      ...Array.from({ length: 50 }, () => randomUUID()),
    ];
    for (const key of samples) expect([key, keySlot(key)]).toEqual([key, Number(await cluster.cluster('KEYSLOT', key))]);
  });

  test('pipelineByKey sends one pipeline per node and answers each item in order', async () => {
    const items = Array.from({ length: 30 }, (_, index) => ({ key: keys.sseLeases(`user-${index}`), value: index }));
    await pipelineByKey(
      cluster,
      items,
      (item) => item.key,
      (pipeline, item) => pipeline.set(item.key, String(item.value)).get(item.key),
    );
    const replies = await pipelineByKey(
      cluster,
      items,
      (item) => item.key,
      (pipeline, item) => pipeline.get(item.key),
    );

    expect(replies.map((reply) => reply[0][1])).toEqual(items.map((item) => String(item.value)));
    expect(new Set(items.map((item) => nodeOf(item.key).id)).size).toBe(3);
  });
});

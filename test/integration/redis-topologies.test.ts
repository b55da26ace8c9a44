import { Cluster, Redis } from 'ioredis';
import { keySlot } from '../../src/lib/redis-keys';
import { CanvasLog } from '../../src/realtime/canvas-log';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { startRedisCluster, startRedisSplit, type LocalRedisServers } from '../support/redis-cluster';
import { connectCanvas, join, record, type CanvasClient } from '../support/sockets';
import { keysEverywhere } from '../support/redis';
import { readSse, type SseMessage } from '../support/sse';
import { waitUntil } from '../support/wait';

const PROMPT = 'Plan the launch: a heading, three todos and a short paragraph';
const launchTurn = {
  toolCalls: [
    { name: 'create_heading', args: { text: 'Launch plan', level: 1 } },
    { name: 'create_todo', args: { text: 'book venue', checked: false } },
    { name: 'create_todo', args: { text: 'invite press', checked: false } },
    { name: 'create_todo', args: { text: 'ship beta', checked: false } },
    { name: 'create_text', args: { text: 'We launch in May.' } },
  ],
};
const longTurn = {
  toolCalls: Array.from({ length: 30 }, (_, i) => ({ name: 'create_todo', args: { text: `item ${i}`, checked: false } })),
};
const ended = (m: SseMessage) => ['complete', 'error', 'cancelled'].includes(m.event ?? '');

interface Topology {
  servers: LocalRedisServers;
  /** The app's Redis settings. */
  env: Record<string, string>;
  /** A connection that reads any key the app wrote (a cluster client, or per concern). */
  clients: { queues: Redis | Cluster; realtime: Redis | Cluster; cache: Redis | Cluster };
}

const topologies: Array<[string, () => Promise<Topology>]> = [
  [
    'a three-master Redis Cluster',
    async () => {
      const servers = await startRedisCluster(3);
      const client = new Cluster(servers.nodes.split(',').map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })));
      return { servers, env: { REDIS_CLUSTER_NODES: servers.nodes }, clients: { queues: client, realtime: client, cache: client } };
    },
  ],
  [
    'three Redis servers, one per concern',
    async () => {
      const servers = await startRedisSplit();
      const { REDIS_URL_QUEUES, REDIS_URL_REALTIME, REDIS_URL_CACHE } = servers.env;
      return {
        servers,
        env: servers.env,
        clients: { queues: new Redis(REDIS_URL_QUEUES), realtime: new Redis(REDIS_URL_REALTIME), cache: new Redis(REDIS_URL_CACHE) },
      };
    },
  ],
];

/**
 * The product's Redis paths on a Redis Cluster (every script and transaction in one slot, BullMQ
 * under its hash-tagged prefix, event logs followed per node) and on Redis split by concern:
 * generation end to end, limits and budgets, cancel, and where the keys land.
 */
describe.each(topologies)('on %s', (_name, start) => {
  let topology: Topology;
  let t: TestApp;
  let owner: TestUser;
  let editor: TestUser;
  let canvasId: string;
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    topology = await start();
    t = await startTestApp({
      redis: topology.env,
      llmDelayMs: 10,
      env: {
        TIER_LIMITS: JSON.stringify({
          free: { generationsPerMinute: 100, generationsPerHour: 100, concurrentGenerations: 5 },
          pro: { generationsPerMinute: 1 },
        }),
      },
    });
    [owner, editor] = await Promise.all([registerUser(t.api, 'Owner'), registerUser(t.api, 'Editor')]);
    canvasId = await createCanvas(t.api, owner);
    await addMember(t.api, owner, canvasId, editor, 'editor');
  }, 120_000);

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await t?.stop();
    await Promise.all([...new Set(Object.values(topology?.clients ?? {}))].map((client) => client.quit()));
    await topology?.servers.stop();
  });

  const connect = async (user: TestUser) => {
    const socket = await connectCanvas(t.url, user.accessToken);
    sockets.push(socket);
    return socket;
  };

  const generate = (user: TestUser, body: Record<string, unknown>, onMessage?: (m: SseMessage) => void) =>
    readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body,
      until: ended,
      onMessage,
      timeoutMs: 30_000,
    });

  test('a generation goes HTTP → queue → worker → sockets and SSE, with every block stored once and every seq in order', async () => {
    const [ownerSocket, editorSocket] = await Promise.all([connect(owner), connect(editor)]);
    expect((await join(ownerSocket, canvasId)).ok).toBe(true);
    expect((await join(editorSocket, canvasId)).ok).toBe(true);
    const chunks = [record(ownerSocket, 'blocks_bulk_added_chunk'), record(editorSocket, 'blocks_bulk_added_chunk')];
    t.llm.push(launchTurn, { text: 'Created the plan.' });

    const sse = await generate(editor, { prompt: PROMPT });

    expect(sse.status).toBe(200);
    expect(sse.messages.at(-1)!.event).toBe('complete');
    const ids = sse.messages.map((m) => Number(m.id));
    expect(ids).toEqual(ids.map((_, i) => i + 1));
    const complete = sse.messages.at(-1)!.data;
    const expected = complete.blocks.map((b: { id: string }) => b.id);
    expect(expected).toHaveLength(5);
    for (const received of chunks) {
      await waitUntil(() => received.flatMap((c) => c.blocks).length === 5);
      expect(received.flatMap((c) => c.blocks.map((b) => b.id))).toEqual(expected);
    }
    const stored = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: owner.accessToken });
    expect(stored.body.blocks.map((b: { id: string }) => b.id)).toEqual(expected);

    // A replay of the same stream (Last-Event-ID) reads the generation's log on its node.
    const replay = await readSse(`${t.api}/canvases/${canvasId}/ai/generations/${complete.generationId}/events`, {
      token: owner.accessToken,
      headers: { 'Last-Event-ID': '2' },
      until: ended,
    });
    expect(replay.messages.map((m) => Number(m.id))).toEqual(ids.slice(2));
  }, 60_000);

  test('an event logged and never sent (its process died between log and fan-out) shows as a gap the next event reveals, and canvas:sync fills it', async () => {
    const user = await registerUser(t.api, 'Gap');
    const gapCanvas = await createCanvas(t.api, user);
    const socket = await connect(user);
    expect((await join(socket, gapCanvas)).ok).toBe(true);
    const added = record(socket, 'block_added');
    const addBlock = (text: string) =>
      request('POST', `${t.api}/canvases/${gapCanvas}/blocks`, { token: user.accessToken, body: { type: 'text', content: { text } } });
    await addBlock('first');
    await waitUntil(() => added.length === 1);

    // The first step alone, as a process killed before the second would leave it: logged with seq 2, not sent.
    const log = new CanvasLog(topology.clients.realtime, t.keyPrefix, { maxEvents: 1_000, ttlSeconds: 3_600, maxCatchUp: 1_000 });
    expect(await log.append(gapCanvas, 'block_added', { canvasId: gapCanvas, block: { id: 'lost' } })).toBe(2);
    await addBlock('third');

    await waitUntil(() => added.length === 2);
    expect(added.map((event) => event.seq)).toEqual([1, 3]);
    const filled = await socket.timeout(5_000).emitWithAck('canvas:sync', { canvasId: gapCanvas, afterSeq: 1 } as never);
    expect(filled).toMatchObject({
      ok: true,
      resync: false,
      lastSeq: 3,
      events: [expect.objectContaining({ seq: 2 }), expect.objectContaining({ seq: 3 })],
    });
  });

  test('every key lands where its concern lives: BullMQ under its hash tag, canvas keys together in one slot', async () => {
    const { queues, realtime, cache } = topology.clients;
    const prefix = t.keyPrefix;
    const bullKeys = await keysEverywhere(queues, `{${prefix}}:bull:generation:*`);
    expect(bullKeys.length).toBeGreaterThan(0);
    expect(new Set(bullKeys.map(keySlot)).size).toBe(1);
    const canvasKeys = await keysEverywhere(realtime, `${prefix}:canvas:{${canvasId}}:*`);
    expect(canvasKeys.sort()).toEqual([`${prefix}:canvas:{${canvasId}}:log`, `${prefix}:canvas:{${canvasId}}:seq`]);
    expect(await keysEverywhere(cache, `${prefix}:rl:gen:{${editor.id}}:m`)).toHaveLength(1);
    if (queues !== realtime) {
      // Split: each server holds only its concern's keys.
      expect(await keysEverywhere(realtime, `{${prefix}}:bull:*`)).toEqual([]);
      expect(await keysEverywhere(cache, `{${prefix}}:bull:*`)).toEqual([]);
      expect(await keysEverywhere(queues, `${prefix}:canvas:*`)).toEqual([]);
      expect(await keysEverywhere(cache, `${prefix}:canvas:*`)).toEqual([]);
      expect(await keysEverywhere(queues, `${prefix}:rl:*`)).toEqual([]);
      expect(await keysEverywhere(realtime, `${prefix}:rl:*`)).toEqual([]);
    }
  });

  test('the generation limits hold: past the per-minute cap the next request is 429', async () => {
    const limited = await registerUser(t.api, 'Limited');
    const limitedCanvas = await createCanvas(t.api, limited);
    await t.app.repos.users.changePlan(limited.id, { tier: 'pro' }, { actorId: limited.id });
    t.llm.push(launchTurn, { text: 'Done.' });
    const first = await readSse(`${t.api}/canvases/${limitedCanvas}/ai/generate-stream`, {
      method: 'POST',
      token: limited.accessToken,
      body: { prompt: PROMPT },
      until: ended,
    });
    expect(first.messages.at(-1)!.event).toBe('complete');
    const second = await readSse(`${t.api}/canvases/${limitedCanvas}/ai/generate-stream`, {
      method: 'POST',
      token: limited.accessToken,
      body: { prompt: PROMPT },
      until: ended,
    });
    expect(second.status).toBe(429);
    const blocks = await request('GET', `${t.api}/canvases/${limitedCanvas}/blocks`, { token: limited.accessToken });
    expect(blocks.body.blocks).toHaveLength(5);
  }, 60_000);

  test('a user without budget is refused with budget_exceeded before anything is queued', async () => {
    const broke = await registerUser(t.api, 'Broke');
    const brokeCanvas = await createCanvas(t.api, broke);
    await t.app.repos.users.changePlan(broke.id, { limitOverrides: { tokensPerHour: 0 } }, { actorId: broke.id });
    const answer = await readSse(`${t.api}/canvases/${brokeCanvas}/ai/generate-stream`, {
      method: 'POST',
      token: broke.accessToken,
      body: { prompt: PROMPT },
      until: ended,
    });
    expect(answer.status).toBe(429);
    expect(answer.body.error.code).toBe('budget_exceeded');
    const budget = await request('GET', `${t.api}/usage/budget`, { token: broke.accessToken });
    expect(budget.status).toBe(200);
  });

  test('failed sign-ins past the threshold lock the account (both keys of the throttle in one slot)', async () => {
    const user = await registerUser(t.api, 'Throttled');
    const statuses: number[] = [];
    for (let i = 0; i < 7; i += 1) {
      const answer = await request('POST', `${t.api}/auth/login`, { body: { email: user.email, password: 'not the password' } });
      statuses.push(answer.status);
    }
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses.at(-1)).toBe(429);
  });

  test('a cancel from the API reaches the worker streaming the model: the stream ends cancelled and nothing is stored', async () => {
    t.llm.push(longTurn, { text: 'Done.' });
    let cancelled: Promise<{ status: number }> | undefined;
    const sse = await generate(owner, { prompt: PROMPT }, (m) => {
      if (m.event === 'tool_output' && !cancelled)
        cancelled = request('POST', `${t.api}/canvases/${canvasId}/ai/generations/${m.data.generationId}/cancel`, {
          token: owner.accessToken,
        });
    });
    expect((await cancelled!).status).toBe(202);
    expect(sse.messages.at(-1)!.event).toBe('cancelled');
    const generationId = sse.headers.get('x-generation-id')!;
    const view = await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: owner.accessToken });
    expect(view.body.generation).toMatchObject({ status: 'cancelled', blockCount: 0 });
  }, 60_000);
});

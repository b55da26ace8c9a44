import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { demoResponder } from '../../src/demo-model';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/app/embedded-redis';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { createRedis, redisReady } from '../../src/lib/redis';
import { FOLLOWER_CONNECTION_NAME } from '../../src/lib/stream-follower';
import { startTestApp, testConfig, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseResult } from '../support/sse';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { eventually } from '../support/wait';

/**
 * Streams: one reader per node serves every open stream (an open stream costs no Redis
 * connection of its own), and the per-user cap holds across API nodes.
 */

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}
const said = (req: ChatRequest, word: string) => JSON.stringify(req.messages).includes(word);

async function openStream(url: string, token: string, init: { method?: string; body?: unknown } = {}) {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'text/event-stream',
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
    signal: controller.signal,
  });
  return { response, close: () => (controller.abort(), response.body?.cancel().catch(() => undefined)) };
}

describe('one reader per node', () => {
  let privateRedis: EmbeddedRedis;
  let redis: Redis;
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  const hold = gate();

  beforeAll(async () => {
    // A Redis of its own (one server, on every Redis topology of the run), so CLIENT LIST and the
    // connection counter see this app only.
    privateRedis = await startEmbeddedRedis(`${process.cwd()}/.data/test/reader-${randomUUID().slice(0, 8)}`);
    redis = createRedis(privateRedis.url, 'command');
    await redisReady(redis);
    t = await startTestApp({
      redis: { REDIS_URL: privateRedis.url },
      env: { MAX_STREAMS_PER_USER: '200' },
      responder: async (req) => {
        if (said(req, 'hold-me')) await hold.opened;
        return demoResponder(req);
      },
    });
    user = await registerUser(t.api, 'Reader');
    canvasId = await createCanvas(t.api, user);
  });

  afterAll(async () => {
    hold.open();
    redis.disconnect();
    await t.stop();
    await privateRedis.stop();
  });

  const clients = async () => (await redis.client('LIST')) as string;
  const connectionsReceived = async () => Number(/total_connections_received:(\d+)/.exec(await redis.info('stats'))![1]);

  test('given 100 open streams of a running generation, Redis holds no connection per stream, and every stream gets the live end', async () => {
    const started = await openStream(`${t.api}/canvases/${canvasId}/ai/generate-stream`, user.accessToken, {
      method: 'POST',
      body: { prompt: 'hold-me: a heading' },
    });
    const generationId = started.response.headers.get('x-generation-id')!;
    void started.close(); // aborts the request; the body's cancel catches its own failure
    const url = `${t.api}/canvases/${canvasId}/ai/generations/${generationId}/events`;
    const follow = (onFirst: () => void) =>
      readSse(url, { token: user.accessToken, timeoutMs: 60_000, onMessage: onFirst, until: (m) => m.event === 'complete' });
    // One stream first: the node's reader connects for it.
    let firstSeen = 0;
    const streams: Array<Promise<SseResult>> = [follow(() => void (firstSeen += 1))];
    await eventually(clients, (list) => list.includes(`name=${FOLLOWER_CONNECTION_NAME}`));
    const baseline = { clients: (await clients()).trim().split('\n').length, received: await connectionsReceived() };

    let seen = 0;
    const counted = new Set<number>();
    for (let i = 0; i < 100; i += 1) streams.push(follow(() => void (counted.has(i) || (counted.add(i), (seen += 1)))));
    await eventually(
      async () => seen,
      (n) => n === 100,
      30_000,
    );
    const peak = (await clients()).trim().split('\n');
    hold.open();
    const results = await Promise.all(streams);
    const received = (await connectionsReceived()) - baseline.received;

    expect(firstSeen).toBeGreaterThan(0);
    expect(results.every((sse) => sse.messages.at(-1)!.event === 'complete')).toBe(true);
    expect(peak.filter((line) => line.includes(`name=${FOLLOWER_CONNECTION_NAME}`))).toHaveLength(1);
    // Figures for the report: connections at the peak against one stream open, and new ones accepted.
    process.stdout.write(
      `one reader per node: ${baseline.clients} Redis clients with 1 stream, ${peak.length} with 101; ${received} connections opened meanwhile\n`,
    );
    expect(peak.length).toBeLessThanOrEqual(baseline.clients + 1);
    expect(received).toBeLessThanOrEqual(1);
  }, 120_000);
});

describe('the stream cap counts across nodes', () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  const nodes: RunningSwitchboard[] = [];
  const hold = gate();
  const open: Array<{ close(): unknown }> = [];

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    llm = await startScriptedLLM(async (req) => {
      if (said(req, 'hold-me')) await hold.opened;
      return demoResponder(req);
    });
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    for (const roles of ['api,worker', 'api']) {
      const config = testConfig({ keyPrefix, databaseUrl: database.url, env: { SWITCHBOARD_ROLES: roles, MAX_STREAMS_PER_USER: '4' } });
      nodes.push(
        await startSwitchboard(config, {
          logger: createLogger({ level: 'silent' }),
          endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
        }),
      );
    }
  });

  afterAll(async () => {
    open.forEach((stream) => stream.close());
    hold.open();
    for (const node of nodes.reverse()) await node.stop();
    await llm.close();
    await database.drop();
  });

  test('a user with two streams on each of two nodes is refused a fifth on either', async () => {
    const [a, b] = nodes.map((node) => `${node.url}/api/v1`);
    const user = await registerUser(a, 'Both');
    const canvasId = await createCanvas(a, user);
    const started = await openStream(`${a}/canvases/${canvasId}/ai/generate-stream`, user.accessToken, {
      method: 'POST',
      body: { prompt: 'hold-me: across nodes' },
    });
    const generationId = started.response.headers.get('x-generation-id')!;
    void started.close(); // aborts the request; the body's cancel catches its own failure
    const path = `/canvases/${canvasId}/ai/generations/${generationId}/events`;
    // The POST's slot is given back when its connection closes.
    await eventually(
      async () => {
        const attempt = await openStream(`${open.length % 2 ? b : a}${path}`, user.accessToken);
        if (attempt.response.status === 200) open.push(attempt);
        else await attempt.response.text();
        return open.length;
      },
      (n) => n === 4,
    );

    const onA = await request('GET', `${a}${path}`, { token: user.accessToken });
    const onB = await request('GET', `${b}${path}`, { token: user.accessToken });

    expect([onA.status, onA.body.error.code]).toEqual([429, 'too_many_streams']);
    expect([onB.status, onB.body.error.code]).toEqual([429, 'too_many_streams']);
  }, 90_000);
});

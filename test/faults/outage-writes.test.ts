import { Redis } from 'ioredis';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisUrl } from '../support/database';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, record, type CanvasClient } from '../support/sockets';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { eventually, waitUntil } from '../support/wait';

/**
 * A block write while Redis is unreachable (decision 0077): the room event cannot get its seq nor
 * reach the room, so the write is refused with 503 and nothing is stored; a 201 always means the
 * room got the event.
 */
describe('block writes during a Redis outage', () => {
  let proxy: TcpProxy;
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  let observer: CanvasClient;

  beforeAll(async () => {
    // The outage is a proxy between the app and one redis-server that the test cuts: the app runs on
    // the run's single server through it, on every Redis topology of the run (a cluster's nodes
    // would each need a proxy, and cutting one of them is another fault).
    const redis = new URL(testRedisUrl());
    proxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port) });
    t = await startTestApp({ redis: { REDIS_URL: `redis://127.0.0.1:${proxy.port}` } });
    user = await registerUser(t.api, 'Writer');
    canvasId = await createCanvas(t.api, user);
    observer = await connectCanvas(t.url, user.accessToken);
    await join(observer, canvasId);
  }, 60_000);

  afterAll(async () => {
    observer?.close();
    await proxy.restore().catch(() => undefined);
    await t.stop();
    await proxy.close();
  });

  const blockTexts = async () =>
    ((await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken })).body.blocks ?? []).map(
      (b: { content: { text: string } }) => b.content.text,
    );

  test('POST, PATCH and DELETE answer 503 and change nothing; once Redis is back, a 201 reaches the room', async () => {
    const kept = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text: 'before the outage' } },
    });
    expect(kept.status).toBe(201);
    const added = record(observer, 'block_added');

    await proxy.cut();
    await eventually(
      async () => (await request('GET', `${t.url}/readyz`)).status,
      (status) => status === 503,
    );
    const refused = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text: 'during the outage' } },
    });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('service_unavailable');
    const patched = await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${kept.body.block.id}`, {
      token: user.accessToken,
      body: { content: { text: 'changed in the dark' } },
    });
    expect(patched.status).toBe(503);
    const deleted = await request('DELETE', `${t.api}/canvases/${canvasId}/blocks/${kept.body.block.id}`, { token: user.accessToken });
    expect(deleted.status).toBe(503);

    await proxy.restore();
    await eventually(
      async () => (await request('GET', `${t.url}/readyz`)).status,
      (status) => status === 200,
    );
    expect(await blockTexts()).toEqual(['before the outage']);

    const after = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text: 'after the outage' } },
    });
    expect(after.status).toBe(201);
    await waitUntil(() => added.some((event) => event.block.id === after.body.block.id), 15_000);
    expect(added.map((event) => event.block.content.text)).not.toContain('during the outage');
  }, 60_000);

  test('a room event Redis refuses (while the session check still passes) fails the write: 503, nothing stored, nothing sent', async () => {
    const redis = new Redis(testRedisUrl());
    const seqKey = `${t.keyPrefix}:canvas:{${canvasId}}:seq`;
    const added = record(observer, 'block_added');
    try {
      const before = await blockTexts();
      // A key of the wrong type: the canvas log's Lua call fails exactly as a Redis error would.
      const saved = await redis.get(seqKey);
      await redis.del(seqKey);
      await redis.rpush(seqKey, 'not a counter');
      const refused = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
        token: user.accessToken,
        body: { type: 'text', content: { text: 'never announced' } },
      });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('service_unavailable');
      expect(await blockTexts()).toEqual(before);
      await redis.del(seqKey);
      if (saved) await redis.set(seqKey, saved);

      const ok = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
        token: user.accessToken,
        body: { type: 'text', content: { text: 'announced' } },
      });
      expect(ok.status).toBe(201);
      await waitUntil(() => added.some((event) => event.block.id === ok.body.block.id), 15_000);
      expect(added.map((event) => event.block.content.text)).toEqual(['announced']);
    } finally {
      redis.disconnect();
    }
  }, 30_000);
});

import { QUEUE_NAMES } from '../../config';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { QueueRegistry } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { request } from '../support/http';

/**
 * The queue dashboard acts with an admin's rights, and a browser attaches cached Basic credentials
 * to any site's request: state-changing calls must come from the dashboard's own origin, its pages
 * load nothing from other hosts, and its password cannot be guessed without limit.
 */
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const FAILURES = 3;

describe('queue dashboard', () => {
  let t: TestApp;
  let redis: RedisClient;
  let queues: QueueRegistry;
  beforeAll(async () => {
    t = await startTestApp({ env: { ADMIN_USER: 'ops', ADMIN_PASSWORD: 'ops-password', LOGIN_FAILURES_BEFORE_BACKOFF: String(FAILURES) } });
    redis = createRedis(testRedisTarget('queues'), 'command');
    await redisReady(redis);
    queues = new QueueRegistry(redis, t.keyPrefix);
  }, 60_000);
  afterAll(async () => {
    await queues.close();
    redis.disconnect();
    await t.stop();
  });

  const admin = { authorization: basic('ops', 'ops-password') };
  const add = (queue: string, headers: Record<string, string>, rawBody: string) =>
    request('POST', `${t.url}/admin/queues/api/queues/${queue}/add`, { headers: { ...admin, ...headers }, rawBody });
  const waiting = (queue: 'broadcast') => queues.counts(queue);
  const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

  test('cross-site POSTs (text, form, multipart, or only an Origin) are refused and add nothing', async () => {
    const before = total(await waiting('broadcast'));
    const evil = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' };
    const json = JSON.stringify({ name: 'forged', data: {} });
    const forged = [
      add('broadcast', { ...evil, 'content-type': 'text/plain' }, json),
      add('broadcast', { ...evil, 'content-type': 'application/x-www-form-urlencoded' }, 'name=forged&data=%7B%7D'),
      add(
        'broadcast',
        { ...evil, 'content-type': 'multipart/form-data; boundary=X' },
        '--X\r\nContent-Disposition: form-data; name="name"\r\n\r\nforged\r\n--X--\r\n',
      ),
      add('broadcast', { ...evil, 'content-type': 'application/json' }, json),
      add('broadcast', { origin: 'https://evil.example', 'content-type': 'application/json' }, json),
      add('broadcast', { 'sec-fetch-site': 'same-site', 'content-type': 'application/json' }, json),
    ];
    for (const res of await Promise.all(forged)) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('cross_site_request');
    }
    expect(total(await waiting('broadcast'))).toBe(before);
  });

  test('the same POST from the dashboard itself goes through', async () => {
    const res = await add(
      'embeddings',
      { 'sec-fetch-site': 'same-origin', origin: t.url, 'content-type': 'application/json' },
      JSON.stringify({ name: 'dashboard-made', data: { from: 'admin' } }),
    );
    expect(res.status).toBe(200);
    expect(res.body.job.name).toBe('dashboard-made');
  });

  test('an admin sees every queue of the catalog, and only those', async () => {
    const res = await request('GET', `${t.url}/admin/queues/api/queues`, { headers: admin });

    expect(res.status).toBe(200);
    expect(res.body.queues.map((queue: { name: string }) => queue.name).sort()).toEqual([...QUEUE_NAMES].sort());
  });

  test('the page links nothing on other hosts, and its policy allows this origin only', async () => {
    const page = await request('GET', `${t.url}/admin/queues`, { headers: admin });
    expect(page.status).toBe(200);
    expect(String(page.body)).toContain('<html');
    expect(String(page.body)).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[a-z]/i);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("font-src 'self' data:");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(csp).not.toContain('https:');
  });

  test(`after ${FAILURES} wrong Basic passwords the address gets 429, even with the right one`, async () => {
    for (let i = 0; i < FAILURES; i += 1)
      expect(
        (await request('GET', `${t.url}/admin/queues/api/queues`, { headers: { authorization: basic('ops', `guess-${i}`) } })).status,
      ).toBe(403);
    const locked = await request('GET', `${t.url}/admin/queues/api/queues`, { headers: admin });
    expect(locked.status).toBe(429);
    expect(locked.body.error.code).toBe('rate_limited');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

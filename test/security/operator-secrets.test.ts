import { randomInt } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app';
import { request, type JsonResponse } from '../support/http';

/**
 * Every operator secret — the dashboard's Basic ADMIN_USER/ADMIN_PASSWORD wherever it is accepted,
 * and the METRICS_TOKEN bearer — is checked behind one per-address back-off: wrong guesses on any
 * path count towards the same lock, and a locked address is refused everywhere, right secret or not.
 * Loopback proxies are trusted here, so each test is its own client through `X-Forwarded-For`.
 */
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const FAILURES = 3;
const RIGHT = basic('ops', 'ops-password');
const METRICS_TOKEN = 'metrics-token-for-tests';

describe('operator secrets share one back-off', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      env: {
        ADMIN_USER: 'ops',
        ADMIN_PASSWORD: 'ops-password',
        METRICS_TOKEN,
        LOGIN_FAILURES_BEFORE_BACKOFF: String(FAILURES),
        TRUST_PROXY: 'loopback',
      },
    });
  }, 60_000);
  afterAll(() => t.stop());

  /** A client address of its own for one test. */
  const newClient = () => `10.${randomInt(0, 255)}.${randomInt(0, 255)}.${randomInt(1, 255)}`;
  const paths = {
    native: () => `${t.api}/metrics/json`,
    legacy: () => `${t.url}/api/agent-builder/metrics/json`,
    dashboard: () => `${t.url}/admin/queues/api/queues`,
  };
  const get = (url: string, client: string, authorization: string) =>
    request('GET', url, { headers: { authorization, 'x-forwarded-for': client } });
  const expectLocked = (res: JsonResponse) => {
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe('rate_limited');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  };

  test.each(Object.keys(paths) as Array<keyof typeof paths>)(
    `on the %s path, ${FAILURES} wrong Basic passwords lock the address: then the right one gets 429 with Retry-After`,
    async (name) => {
      // Given: a client with the right password gets in, which is no failure
      const client = newClient();
      expect((await get(paths[name](), client, RIGHT)).status).toBe(200);

      // When: it guesses wrong as many times as the back-off allows
      for (let i = 0; i < FAILURES; i += 1) expect((await get(paths[name](), client, basic('ops', `guess-${i}`))).status).toBe(403);

      // Then: the next try, right password or not, is refused with Retry-After
      expectLocked(await get(paths[name](), client, RIGHT));
      expectLocked(await get(paths[name](), client, basic('ops', 'one-more-guess')));
    },
  );

  test('wrong guesses spread over the paths add up, and the lock holds on every path and on /metrics', async () => {
    const client = newClient();

    // When: one wrong password on each path that accepts it
    expect((await get(paths.native(), client, basic('ops', 'a'))).status).toBe(403);
    expect((await get(paths.legacy(), client, basic('ops', 'b'))).status).toBe(403);
    expect((await get(paths.dashboard(), client, basic('ops', 'c'))).status).toBe(403);

    // Then: the address is locked on each of them, and for the metrics token too
    for (const path of Object.values(paths)) expectLocked(await get(path(), client, RIGHT));
    expectLocked(await get(`${t.url}/metrics`, client, `Bearer ${METRICS_TOKEN}`));
    expectLocked(await get(`${t.url}/metrics/queues`, client, `Bearer ${METRICS_TOKEN}`));
    expectLocked(await get(`${t.url}/api/agent-builder/metrics/prometheus`, client, `Bearer ${METRICS_TOKEN}`));
  });

  test('wrong METRICS_TOKEN guesses count too: the dashboard password is then refused from that address', async () => {
    const client = newClient();
    expect((await get(`${t.url}/metrics`, client, `Bearer ${METRICS_TOKEN}`)).status).toBe(200);

    for (let i = 0; i < FAILURES; i += 1) expect((await get(`${t.url}/metrics`, client, `Bearer guess-${i}`)).status).toBe(401);

    expectLocked(await get(`${t.url}/metrics`, client, `Bearer ${METRICS_TOKEN}`));
    expectLocked(await get(paths.native(), client, RIGHT));
    // Another address is not held by this one's lock.
    expect((await get(paths.native(), newClient(), RIGHT)).status).toBe(200);
  });
});

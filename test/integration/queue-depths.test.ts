import { QUEUE_NAMES } from '../../config';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request } from '../support/http';
import { testBullConnection } from '../support/redis';
import { eventually } from '../support/wait';

const METRICS_TOKEN = 'queue-depths-metrics-token';

/**
 * `GET /metrics/queues`: every queue's jobs by state as JSON, behind the METRICS_TOKEN bearer, for an
 * autoscaler reading a value at a JSON path. An api-only app runs no worker, so what is enqueued stays
 * queued and the counts can be read as they are.
 */
describe('queue depths for autoscalers', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { SWITCHBOARD_ROLES: 'api', METRICS_TOKEN } });
  }, 60_000);
  afterAll(() => t.stop());

  const depths = () => request('GET', `${t.url}/metrics/queues`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });

  test('without the metrics token, or with a wrong one, it is 401 with a Bearer challenge', async () => {
    for (const headers of [{}, { authorization: 'Bearer not-the-metrics-token' }] as Record<string, string>[]) {
      const res = await request('GET', `${t.url}/metrics/queues`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
      expect(res.body.error.code).toBe('unauthorized');
    }
  });

  test("a chat turn waiting in the fairly shared assistant queue counts as waiting, though BullMQ's wait list is empty", async () => {
    // Given an empty deployment: every queue is listed, with nothing in it
    const empty = await depths();
    expect(empty.status).toBe(200);
    expect(Object.keys(empty.body.queues).sort()).toEqual([...QUEUE_NAMES].sort());
    for (const name of QUEUE_NAMES) expect(empty.body.queues[name]).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0, completed: 0 });

    // When a person sends a chat message (the request waits for an answer no worker gives)
    const user = await registerUser(t.api, 'Queued');
    const asking = new AbortController();
    const answer = fetch(`${t.api}/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'Hello', tools: 'none' }),
      signal: asking.signal,
    }).catch(() => undefined);
    try {
      // Then the turn is counted as waiting once it is queued
      const queued = await eventually(depths, (res) => res.body.queues.assistant.waiting === 1);
      expect(queued.body.queues.assistant).toMatchObject({ waiting: 1, active: 0 });
      // and it sits in BullMQ's prioritized set, where a scaler reading the wait list sees nothing
      const redis = testBullConnection();
      try {
        const prefix = `${bullPrefix(t.keyPrefix)}:assistant`;
        expect(await redis.llen(`${prefix}:wait`)).toBe(0);
        expect(await redis.zcard(`${prefix}:prioritized`)).toBe(1);
      } finally {
        redis.disconnect();
      }

      // and many readers at once all get the same answer
      const all = await Promise.all(Array.from({ length: 20 }, depths));
      expect(new Set(all.map((res) => `${res.status} ${res.body.queues.assistant.waiting}`))).toEqual(new Set(['200 1']));
    } finally {
      asking.abort();
      await answer;
    }
  });
});

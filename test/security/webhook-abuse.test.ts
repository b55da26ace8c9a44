import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';

/**
 * Webhooks send outbound traffic to a URL of the caller's choosing, so what a caller can make them
 * send is bounded: test sends and redeliveries count against a per-user, per-tier limit (429 with
 * `Retry-After`, no row, no POST past it), and an endpoint's delivery log keeps its newest
 * `WEBHOOK_DELIVERIES_KEPT` rows however many messages it was sent.
 */

const SENDS_PER_MINUTE = 3;
const KEPT = 3;

describe('webhook sends are limited and their log is capped', () => {
  let t: TestApp;
  let server: http.Server;
  let origin: string;
  const received: Array<{ path: string; id: string }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push({ path: req.url ?? '/', id: String(req.headers['webhook-id']) });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await startTestApp({
      env: {
        WEBHOOK_PRIVATE_ORIGINS: origin,
        WEBHOOK_DELIVERIES_KEPT: String(KEPT),
        TIER_LIMITS: JSON.stringify({ free: { webhookSendsPerMinute: SENDS_PER_MINUTE } }),
      },
    });
  });
  afterAll(async () => {
    await t.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const endpoint = async (user: TestUser, path: string, events = ['run.succeeded']): Promise<string> => {
    const res = await request('POST', `${t.api}/webhooks`, { token: user.accessToken, body: { url: `${origin}${path}`, events } });
    if (res.status !== 201) throw new Error(`create webhook: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.webhook.id;
  };
  const testSend = (user: TestUser, endpointId: string) =>
    request('POST', `${t.api}/webhooks/${endpointId}/test`, { token: user.accessToken });
  const rowsOf = async (endpointId: string): Promise<Array<{ id: string; status: string }>> => {
    const result = await t.app.repos.db.execute(
      sql`select id::text, status from webhook_deliveries where endpoint_id = ${endpointId} order by created_at desc, id desc`,
    );
    return ((result as { rows?: unknown[] }).rows ?? result) as Array<{ id: string; status: string }>;
  };
  const at = (path: string) => received.filter((message) => message.path === path);

  test('past the limit a test send and a redelivery are 429 with Retry-After, and send nothing and write nothing', async () => {
    const ada = await registerUser(t.api, 'WebhookLimitAda');
    const path = `/limited/${randomUUID()}`;
    const endpointId = await endpoint(ada, path);
    for (let i = 0; i < SENDS_PER_MINUTE; i += 1) expect((await testSend(ada, endpointId)).status).toBe(202);
    await eventually(
      () => rowsOf(endpointId),
      (rows) => rows.every((row) => row.status === 'delivered'),
    );

    const refused = await testSend(ada, endpointId);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    const [delivered] = await rowsOf(endpointId);
    const redelivery = await request('POST', `${t.api}/webhooks/${endpointId}/deliveries/${delivered.id}/redeliver`, {
      token: ada.accessToken,
    });
    expect(redelivery.status).toBe(429);
    expect(Number(redelivery.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // Neither a row nor a POST: the log holds the three sends, all delivered, and the receiver saw three.
    const rows = await rowsOf(endpointId);
    expect(rows).toHaveLength(SENDS_PER_MINUTE);
    expect(rows.every((row) => row.status === 'delivered')).toBe(true);
    expect(at(path)).toHaveLength(SENDS_PER_MINUTE);
  });

  test('the limit is per user: another user still sends while the first is refused', async () => {
    const [ada, bob] = await Promise.all([registerUser(t.api, 'WebhookPerUserAda'), registerUser(t.api, 'WebhookPerUserBob')]);
    const [adaEndpoint, bobEndpoint] = await Promise.all([endpoint(ada, `/ada/${randomUUID()}`), endpoint(bob, `/bob/${randomUUID()}`)]);
    for (let i = 0; i < SENDS_PER_MINUTE; i += 1) expect((await testSend(ada, adaEndpoint)).status).toBe(202);
    expect((await testSend(ada, adaEndpoint)).status).toBe(429);
    expect((await testSend(bob, bobEndpoint)).status).toBe(202);
    expect(await rowsOf(bobEndpoint)).toHaveLength(1);
  });

  test("an endpoint's delivery log keeps its newest deliveries however many it was sent", async () => {
    const cleo = await registerUser(t.api, 'WebhookCapCleo');
    const path = `/capped/${randomUUID()}`;
    const endpointId = await endpoint(cleo, path);
    const created = await request('POST', `${t.api}/flows`, {
      token: cleo.accessToken,
      body: { type: 'agentflow', name: 'Often', definition: { nodes: [{ id: 'a', prompt: 'Say hi' }], output: 'a' } },
    });
    expect(created.status).toBe(201);
    const runs = KEPT + 3;
    for (let i = 1; i <= runs; i += 1) {
      const { messages } = await readSse(`${t.api}/flows/${created.body.flow.id}/execute/stream`, {
        method: 'POST',
        token: cleo.accessToken,
        body: { input: {} },
        timeoutMs: 30_000,
      });
      expect(messages.at(-1)?.event).toBe('execution_completed');
      await waitUntil(() => at(path).length >= i, 15_000);
      const log = await eventually(
        () => rowsOf(endpointId),
        (rows) => rows.every((row) => row.status === 'delivered'),
      );
      expect(log.length).toBeLessThanOrEqual(KEPT);
    }
    // The log is the newest messages the receiver got.
    const rows = await rowsOf(endpointId);
    expect(rows).toHaveLength(KEPT);
    expect(new Set(rows.map((row) => row.id))).toEqual(
      new Set(
        at(path)
          .slice(-KEPT)
          .map((message) => message.id),
      ),
    );
    const listed = await request('GET', `${t.api}/webhooks/${endpointId}/deliveries`, { token: cleo.accessToken });
    expect(listed.body.deliveries).toHaveLength(KEPT);
  }, 90_000);
});

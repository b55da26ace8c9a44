import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeviceSimulator } from '@switchboard/client/testing';
import { sql } from 'drizzle-orm';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';

/**
 * Webhooks out: run ends and approval requests of a user (or one flow) become signed POSTs on the
 * `webhooks` queue, checked here with the Standard Webhooks scheme written out independently;
 * retried after a receiver's 500, timed out when it hangs, logged, redelivered; private addresses,
 * another user's endpoints and a flood handled as an attacker would try them.
 */

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** The receiver's own check: HMAC-SHA256 of `id.timestamp.body` under the secret's base64 key. */
function signatureValid(secret: string, message: Received): boolean {
  const id = String(message.headers['webhook-id']);
  const timestamp = String(message.headers['webhook-timestamp']);
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = Buffer.from(`v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${message.body}`).digest('base64')}`);
  const given = Buffer.from(String(message.headers['webhook-signature']));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe('webhooks out', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  let server: http.Server;
  let origin: string;
  const received: Received[] = [];
  const logs: string[] = [];
  /** How many 500s each `/flaky-<n>/…` path still answers before a 200. */
  const failuresLeft = new Map<string, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const path = req.url ?? '/';
        received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        if (path.startsWith('/hang')) return; // never answers
        const flaky = /^\/flaky-(\d+)\//.exec(path);
        if (flaky) {
          const left = failuresLeft.get(path) ?? Number(flaky[1]);
          failuresLeft.set(path, left - 1);
          if (left > 0) return void res.writeHead(500).end('boom');
        }
        if (path.startsWith('/slow')) {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          // An attempt the sender gave up on (past its timeout on a loaded machine) is no longer in
          // flight once its connection closes, although this answer was not written yet.
          let open = true;
          const ended = () => {
            if (open) inFlight -= 1;
            open = false;
          };
          res.on('close', ended);
          setTimeout(() => {
            ended();
            if (!res.destroyed) res.writeHead(204).end();
          }, 20);
          return;
        }
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await startTestApp({
      env: {
        WEBHOOK_PRIVATE_ORIGINS: origin,
        WEBHOOK_BACKOFF_MS: '50',
        WEBHOOK_ATTEMPTS: '3',
        WEBHOOK_TIMEOUT_MS: '300',
        WEBHOOK_CONCURRENCY: '4',
        HITL_TIMEOUT_MS: '60000',
        // The flood below sends 120 test messages in a few seconds; the limit has its own test.
        TIER_LIMITS: JSON.stringify({ free: { webhookSendsPerMinute: 1_000 } }),
      },
      logs: (line) => logs.push(line),
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  });
  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const createEndpoint = (user: TestUser, body: Record<string, unknown>) =>
    request('POST', `${t.api}/webhooks`, { token: user.accessToken, body });
  const endpoint = async (user: TestUser, path: string, extra: Record<string, unknown> = {}) => {
    const res = await createEndpoint(user, { url: `${origin}${path}`, events: ['run.succeeded', 'run.failed'], ...extra });
    if (res.status !== 201) throw new Error(`create webhook: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { webhook: { id: string }; secret: string };
  };
  const deliveries = (user: TestUser, endpointId: string) =>
    request('GET', `${t.api}/webhooks/${endpointId}/deliveries`, { token: user.accessToken });
  const createFlow = async (user: TestUser, definition: unknown): Promise<string> => {
    const res = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: 'Hooked', definition },
    });
    if (res.status !== 201) throw new Error(`create flow: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.flow.id;
  };
  const runFlow = (user: TestUser, flowId: string) =>
    readSse(`${t.api}/flows/${flowId}/execute/stream`, { method: 'POST', token: user.accessToken, body: { input: {} }, timeoutMs: 30_000 });
  const at = (path: string) => received.filter((message) => message.path === path);

  test("a flow's finished run is delivered signed the Standard Webhooks way and logged", async () => {
    const path = `/ok/${randomUUID()}`;
    const flowId = await createFlow(ada, { nodes: [{ id: 'a', prompt: 'Say hi' }], output: 'a' });
    const { webhook, secret } = await endpoint(ada, path, { flowId });
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    t.llm.push({ text: 'hi' });

    const run = await runFlow(ada, flowId);
    expect(run.messages.at(-1)?.event).toBe('execution_completed');
    const executionId = run.messages.at(-1)?.data.executionId ?? run.messages[0].data.executionId;

    await waitUntil(() => at(path).length === 1);
    const [message] = at(path);
    expect(signatureValid(secret, message)).toBe(true);
    expect(signatureValid(`whsec_${Buffer.alloc(24, 1).toString('base64')}`, message)).toBe(false);
    expect(Math.abs(Number(message.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(message.headers['content-type']).toBe('application/json');
    const payload = JSON.parse(message.body);
    expect(payload).toMatchObject({ type: 'run.succeeded', data: { kind: 'flow', status: 'succeeded', flowId } });
    if (executionId) expect(payload.data.executionId).toBe(executionId);

    const log = await eventually(
      () => deliveries(ada, webhook.id),
      (res) => res.body.deliveries?.[0]?.status === 'delivered',
    );
    expect(log.body.deliveries).toEqual([
      expect.objectContaining({
        id: message.headers['webhook-id'],
        eventType: 'run.succeeded',
        status: 'delivered',
        attempts: 1,
        responseStatus: 200,
        payload,
      }),
    ]);
  });

  test("an endpoint of one flow hears nothing of the user's other runs", async () => {
    const path = `/ok/${randomUUID()}`;
    const flowId = await createFlow(ada, { nodes: [{ id: 'a', prompt: 'One' }], output: 'a' });
    const other = await createFlow(ada, { nodes: [{ id: 'a', prompt: 'Two' }], output: 'a' });
    const { webhook } = await endpoint(ada, path, { flowId });
    t.llm.push({ text: 'two' });
    await runFlow(ada, other);
    // A test message queued after the other flow's end arrives after anything that end queued.
    await request('POST', `${t.api}/webhooks/${webhook.id}/test`, { token: ada.accessToken });
    await waitUntil(() => at(path).length >= 1);
    expect(at(path).map((message) => JSON.parse(message.body).type)).toEqual(['webhook.test']);
  });

  test('a receiver that answers 500 gets the message again after a backoff; the log shows both attempts', async () => {
    const path = `/flaky-1/${randomUUID()}`;
    const { webhook, secret } = await endpoint(ada, path);
    const test = await request('POST', `${t.api}/webhooks/${webhook.id}/test`, { token: ada.accessToken });
    expect(test.status).toBe(202);

    await waitUntil(() => at(path).length === 2);
    const [first, second] = at(path);
    expect(second.headers['webhook-id']).toBe(first.headers['webhook-id']);
    expect(second.body).toBe(first.body);
    expect(signatureValid(secret, second)).toBe(true);
    const log = await eventually(
      () => deliveries(ada, webhook.id),
      (res) => res.body.deliveries?.[0]?.status === 'delivered',
    );
    expect(log.body.deliveries[0]).toMatchObject({ attempts: 2, responseStatus: 200, lastError: null, eventType: 'webhook.test' });
    // Both attempts, not only the last: the 500 that was retried, then the 200, each with its time.
    const [failed, delivered] = log.body.deliveries[0].attemptLog;
    expect(log.body.deliveries[0].attemptLog).toHaveLength(2);
    expect(failed).toMatchObject({ attempt: 1, status: 'retrying', responseStatus: 500, error: 'HTTP 500' });
    expect(delivered).toMatchObject({ attempt: 2, status: 'delivered', responseStatus: 200, error: null });
    expect(Date.parse(failed.attemptedAt)).toBeLessThanOrEqual(Date.parse(delivered.attemptedAt));
    expect(Date.parse(delivered.attemptedAt)).toBe(Date.parse(log.body.deliveries[0].lastAttemptAt));
  });

  test('a receiver that always fails ends failed after the configured attempts, and a redelivery sends it again', async () => {
    const path = `/flaky-3/${randomUUID()}`;
    const { webhook, secret } = await endpoint(ada, path);
    await request('POST', `${t.api}/webhooks/${webhook.id}/test`, { token: ada.accessToken });

    const failed = await eventually(
      () => deliveries(ada, webhook.id),
      (res) => res.body.deliveries?.[0]?.status === 'failed',
    );
    expect(failed.body.deliveries[0]).toMatchObject({ attempts: 3, responseStatus: 500, lastError: 'HTTP 500' });
    expect(at(path)).toHaveLength(3);

    // A delivery being attempted cannot be redelivered; a failed one can (the receiver is fixed now).
    const redelivered = await request('POST', `${t.api}/webhooks/${webhook.id}/deliveries/${failed.body.deliveries[0].id}/redeliver`, {
      token: ada.accessToken,
    });
    expect(redelivered.status).toBe(202);
    expect(redelivered.body.delivery.status).toBe('pending');
    await waitUntil(() => at(path).length === 4);
    const again = at(path)[3];
    expect(again.headers['webhook-id']).toBe(failed.body.deliveries[0].id);
    expect(signatureValid(secret, again)).toBe(true);
    const log = await eventually(
      () => deliveries(ada, webhook.id),
      (res) => res.body.deliveries?.[0]?.status === 'delivered',
    );
    expect(log.body.deliveries[0]).toMatchObject({ attempts: 4, responseStatus: 200 });
    // The first round's three failures and the redelivery's success, in order.
    expect(
      log.body.deliveries[0].attemptLog.map((a: { attempt: number; status: string; error: string | null }) => [
        a.attempt,
        a.status,
        a.error,
      ]),
    ).toEqual([
      [1, 'retrying', 'HTTP 500'],
      [2, 'retrying', 'HTTP 500'],
      [3, 'failed', 'HTTP 500'],
      [4, 'delivered', null],
    ]);
    const twice = await request('POST', `${t.api}/webhooks/${webhook.id}/deliveries/${randomUUID()}/redeliver`, { token: ada.accessToken });
    expect(twice.status).toBe(404);
  });

  test('a receiver that never answers is cut off at the timeout, each attempt, and the delivery ends failed', async () => {
    const path = `/hang/${randomUUID()}`;
    const { webhook } = await endpoint(ada, path);
    await request('POST', `${t.api}/webhooks/${webhook.id}/test`, { token: ada.accessToken });
    const failed = await eventually(
      () => deliveries(ada, webhook.id),
      (res) => res.body.deliveries?.[0]?.status === 'failed',
    );
    expect(failed.body.deliveries[0]).toMatchObject({ attempts: 3, responseStatus: null, lastError: 'no answer within 300 ms' });
    expect(failed.body.deliveries[0].attemptLog).toEqual(
      [1, 2, 3].map((attempt) =>
        expect.objectContaining({
          attempt,
          status: attempt < 3 ? 'retrying' : 'failed',
          responseStatus: null,
          error: 'no answer within 300 ms',
        }),
      ),
    );
    expect(at(path)).toHaveLength(3);
    // Each failed attempt's log line says why.
    const lines = logs.filter((line) => line.includes(failed.body.deliveries[0].id) && line.includes('webhook attempt failed'));
    expect(lines.map((line) => (JSON.parse(line) as { reason?: string }).reason)).toEqual(Array(3).fill('no answer within 300 ms'));
  });

  test('a dangerous tool waiting for approval is announced; the flow-scoped endpoint hears it', async () => {
    const path = `/ok/${randomUUID()}`;
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: ada.accessToken,
      deviceId,
      seed: { tasks: [{ id: '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab', title: 'Old', status: 'done', priority: 'low' }] },
      reconnection: false,
    });
    devices.push(device);
    const flowId = await createFlow(ada, { nodes: [{ id: 'a', prompt: 'Delete it', tools: ['delete_task'] }], output: 'a', deviceId });
    await endpoint(ada, path, { flowId, events: ['approval.requested', 'run.failed'] });
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab' } }] });
    const asked = nextDeviceEvent<{ approvalId: string }>(device, 'approval_requested');
    const stream = runFlow(ada, flowId);
    const { approvalId } = await asked;

    await waitUntil(() => at(path).length === 1);
    expect(JSON.parse(at(path)[0].body)).toMatchObject({
      type: 'approval.requested',
      data: { approvalId, toolName: 'delete_task', flowId, expiresAt: expect.any(String) },
    });
    await request('PUT', `${t.api}/hitl/requests/${approvalId}/reject`, { token: ada.accessToken });
    await stream;
    await waitUntil(() => at(path).length === 2);
    expect(JSON.parse(at(path)[1].body)).toMatchObject({ type: 'run.failed', data: { flowId, status: 'failed' } });
  });

  describe('as an attacker would try it', () => {
    test.each([
      ['loopback', 'http://127.0.0.1:9/hook'],
      ['loopback by name', 'http://localhost:9/hook'],
      ['cloud metadata', 'http://169.254.169.254/latest/meta-data'],
      ['private network', 'http://10.1.2.3/hook'],
      ['IPv6 loopback', 'http://[::1]:9/hook'],
      ['IPv4 inside IPv6', 'http://[::ffff:127.0.0.1]:9/hook'],
      ['another scheme', 'file:///etc/passwd'],
      ['credentials in the URL', 'ORIGIN_WITH_CREDENTIALS'],
    ])('an endpoint on a %s address is refused with 400 and nothing is stored', async (_name, given) => {
      // The receiver's origin is allowed to be private: only the credentials in it are wrong.
      const url = given === 'ORIGIN_WITH_CREDENTIALS' ? `${origin.replace('http://', 'http://user:pw@')}/hook` : given;
      const res = await createEndpoint(bob, { url, events: ['run.succeeded'] });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'validation_failed' });
      expect((await request('GET', `${t.api}/webhooks`, { token: bob.accessToken })).body.webhooks).toEqual([]);
    });

    test('a private address is refused naming the setting an operator uses to allow it', async () => {
      const res = await createEndpoint(bob, { url: 'http://10.1.2.3/hook', events: ['run.succeeded'] });

      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body.error)).toContain('adding http://10.1.2.3 to WEBHOOK_PRIVATE_ORIGINS');
    });

    test('bad bodies are 400s in the error shape, never a 500', async () => {
      for (const body of [
        {},
        { url: `${origin}/x`, events: [] },
        { url: `${origin}/x`, events: ['run.exploded'] },
        { url: `${origin}/x`, events: ['run.succeeded'], extra: 1 },
        { url: '\ud800', events: ['run.succeeded'] },
      ]) {
        const res = await createEndpoint(bob, body);
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('validation_failed');
      }
    });

    test("another user's endpoints, deliveries and flows are 404s, and none of them are touched", async () => {
      const path = `/ok/${randomUUID()}`;
      const { webhook } = await endpoint(ada, path);
      await request('POST', `${t.api}/webhooks/${webhook.id}/test`, { token: ada.accessToken });
      const log = await eventually(
        () => deliveries(ada, webhook.id),
        (res) => res.body.deliveries?.[0]?.status === 'delivered',
      );
      const deliveryId = log.body.deliveries[0].id;
      const asBob = (method: string, url: string) => request(method, `${t.api}${url}`, { token: bob.accessToken });
      expect((await asBob('GET', `/webhooks/${webhook.id}`)).status).toBe(404);
      expect((await asBob('GET', `/webhooks/${webhook.id}/deliveries`)).status).toBe(404);
      expect((await asBob('POST', `/webhooks/${webhook.id}/deliveries/${deliveryId}/redeliver`)).status).toBe(404);
      expect((await asBob('POST', `/webhooks/${webhook.id}/test`)).status).toBe(404);
      expect((await asBob('DELETE', `/webhooks/${webhook.id}`)).status).toBe(404);
      expect((await asBob('GET', '/webhooks')).body.webhooks.map((w: { id: string }) => w.id)).not.toContain(webhook.id);
      const adaFlow = await createFlow(ada, { nodes: [{ id: 'a', prompt: 'Mine' }], output: 'a' });
      const onAdaFlow = await createEndpoint(bob, { url: `${origin}/bob`, events: ['run.succeeded'], flowId: adaFlow });
      expect(onAdaFlow.status).toBe(404);
      expect(at(path)).toHaveLength(1);
      expect((await request('GET', `${t.api}/webhooks/${webhook.id}`, { token: ada.accessToken })).status).toBe(200);
    });

    test('the secret is shown once: never listed, never read back, stored sealed, never logged', async () => {
      const path = `/ok/${randomUUID()}`;
      const { webhook, secret } = await endpoint(ada, path);
      await request('POST', `${t.api}/webhooks/${webhook.id}/test`, { token: ada.accessToken });
      await waitUntil(() => at(path).length === 1);
      const key = secret.slice('whsec_'.length);
      const list = await request('GET', `${t.api}/webhooks`, { token: ada.accessToken });
      const one = await request('GET', `${t.api}/webhooks/${webhook.id}`, { token: ada.accessToken });
      const log = await deliveries(ada, webhook.id);
      for (const res of [list, one, log]) expect(JSON.stringify(res.body)).not.toContain(key);
      const stored = await t.app.repos.db.execute(sql`select secret_sealed from webhook_endpoints where id = ${webhook.id}`);
      expect(JSON.stringify(stored)).not.toContain(key);
      // The data export lists the endpoint, and says a secret is stored without giving it.
      const exported = await request('GET', `${t.api}/me/export`, { token: ada.accessToken });
      expect(exported.status).toBe(200);
      expect(exported.body.webhooks).toContainEqual(
        expect.objectContaining({ id: webhook.id, url: `${origin}${path}`, secret: { stored: true } }),
      );
      expect(JSON.stringify(exported.body)).not.toContain(key);
      expect(logs.some((line) => line.includes(webhook.id))).toBe(true);
      expect(logs.filter((line) => line.includes(key))).toEqual([]);
    });

    test('a flood of events waits on the queue: the receiver never sees more at once than the worker concurrency', async () => {
      const path = `/slow/${randomUUID()}`;
      const { webhook } = await endpoint(ada, path);
      maxInFlight = 0;
      const count = 120;
      for (let i = 0; i < count; i += 30)
        await Promise.all(
          Array.from({ length: 30 }, () => request('POST', `${t.api}/webhooks/${webhook.id}/test`, { token: ada.accessToken })),
        );
      // Delivery is at least once: an attempt past the short timeout above is sent again with the
      // same id, so the wait is for every id, not for as many messages.
      const ids = () => new Set(at(path).map((message) => message.headers['webhook-id']));
      await waitUntil(() => ids().size >= count, 30_000);
      expect(ids().size).toBe(count);
      expect(maxInFlight).toBeGreaterThan(1);
      expect(maxInFlight).toBeLessThanOrEqual(4);
      const rows = await t.app.repos.db.execute(
        sql`select status, count(*)::int as n from webhook_deliveries where endpoint_id = ${webhook.id} group by status`,
      );
      expect(JSON.stringify(rows)).toContain('delivered');
    }, 60_000);

    test('deleting an endpoint drops its log; a delivery queued for it is dropped without a request', async () => {
      const path = `/ok/${randomUUID()}`;
      const { webhook } = await endpoint(ada, path);
      expect((await request('DELETE', `${t.api}/webhooks/${webhook.id}`, { token: ada.accessToken })).status).toBe(204);
      expect((await deliveries(ada, webhook.id)).status).toBe(404);
      expect((await request('POST', `${t.api}/webhooks/${webhook.id}/test`, { token: ada.accessToken })).status).toBe(404);
    });
  });
});

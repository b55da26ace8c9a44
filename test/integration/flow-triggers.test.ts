import { randomUUID } from 'node:crypto';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { createLogger } from '../../src/lib/logger';
import { TriggerScheduler } from '../../src/triggers/trigger-scheduler';
import { latestSlot } from '../../src/triggers/trigger-definition';
import { signWebhook } from '../../src/webhooks/signature';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * Flow triggers end to end on a real app (Redis, database, `flows` workers, a scripted model):
 * signed inbound webhooks (verification, replay, rate limit, debounce, concurrency per key),
 * schedules fired once per slot across schedulers with their catch-up policy, and the owner-only
 * routes with their refusals. The model answers each node with the text its prompt was rendered to.
 */
describe('flow triggers', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  /** Holds a node's model answer while it returns a pending promise (concurrency tests). */
  let hold: ((req: ChatRequest) => Promise<void> | void) | undefined;

  beforeAll(async () => {
    t = await startTestApp({
      responder: async (req): Promise<ChatTurn> => {
        await hold?.(req);
        return { text: `ran: ${messageText(req.messages.at(-1)!)}` };
      },
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  });
  afterAll(() => t.stop());
  afterEach(() => void (hold = undefined));

  const createFlow = async (user: TestUser, prompt = 'Hello {{input.name}}'): Promise<string> => {
    const res = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: 'Triggered', definition: { nodes: [{ id: 'greet', prompt }], output: 'greet' } },
    });
    expect(res.status).toBe(201);
    return res.body.flow.id;
  };
  const createTrigger = (user: TestUser, flowId: string, body: unknown) =>
    request('POST', `${t.api}/flows/${flowId}/triggers`, { token: user.accessToken, body });
  const executions = async (user: TestUser, flowId: string) =>
    (await request('GET', `${t.api}/flows/${flowId}/executions`, { token: user.accessToken })).body.executions as Array<{
      id: string;
      status: string;
      input: Record<string, unknown>;
      output: unknown;
    }>;
  /** A delivery as a Standard Webhooks sender signs it. */
  const deliver = (url: string, secret: string, body: string, options: { id?: string; timestamp?: number; signature?: string } = {}) => {
    const id = options.id ?? `msg_${randomUUID()}`;
    const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
    return request('POST', url, {
      rawBody: body,
      headers: {
        'webhook-id': id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': options.signature ?? signWebhook(secret, id, timestamp, body),
      },
    });
  };
  const webhookTrigger = async (user: TestUser, flowId: string, extra: Record<string, unknown> = {}) => {
    const res = await createTrigger(user, flowId, { type: 'webhook', name: 'Inbound', ...extra });
    expect(res.status).toBe(201);
    expect(res.body.trigger.url).toMatch(new RegExp(`/api/v1/hooks/${res.body.trigger.id}$`));
    // The URL is on PUBLIC_URL; the test app listens on a port of its own.
    return { id: res.body.trigger.id as string, url: `${t.api}/hooks/${res.body.trigger.id}`, secret: res.body.secret as string };
  };

  describe('signed inbound webhooks', () => {
    test('a signed delivery runs the flow with its JSON body as the input; its id replayed runs nothing more (409)', async () => {
      const flowId = await createFlow(ada);
      const hook = await webhookTrigger(ada, flowId);
      expect(hook.secret).toMatch(/^whsec_/);

      const body = JSON.stringify({ name: 'Grace' });
      const first = await deliver(hook.url, hook.secret, body, { id: 'msg_replayed' });
      expect(first.status).toBe(202);
      expect(first.body).toEqual({ accepted: true, fire: expect.stringMatching(/^hook-/), debounced: false });
      const [run] = await eventually(
        () => executions(ada, flowId),
        (list) => list.length === 1 && list[0].status === 'completed',
      );
      expect(run.input).toEqual({ name: 'Grace' });
      expect(run.output).toBe('ran: Hello Grace');

      const replay = await deliver(hook.url, hook.secret, body, { id: 'msg_replayed' });
      expect(replay.status).toBe(409);
      expect(replay.body.error.code).toBe('webhook_replayed');
      const trigger = await request('GET', `${t.api}/flows/${flowId}/triggers/${hook.id}`, { token: ada.accessToken });
      expect(trigger.body.trigger).toMatchObject({ lastExecutionId: run.id, lastError: null, type: 'webhook' });
      expect(trigger.body).not.toHaveProperty('secret');
      expect(await executions(ada, flowId)).toHaveLength(1);
    });

    test('a bad signature, another secret, a stale timestamp or missing headers are 401 and nothing runs', async () => {
      const flowId = await createFlow(ada);
      const hook = await webhookTrigger(ada, flowId);
      const other = await webhookTrigger(ada, flowId);
      const body = JSON.stringify({ name: 'Mallory' });

      const forged = await deliver(hook.url, hook.secret, body, { signature: 'v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' });
      expect([forged.status, forged.body.error.code]).toEqual([401, 'invalid_signature']);
      // Signed with another trigger's secret: a valid signature, of the wrong key.
      const wrongKey = await deliver(hook.url, other.secret, body);
      expect([wrongKey.status, wrongKey.body.error.code]).toEqual([401, 'invalid_signature']);
      // The body changed after signing.
      const id = `msg_${randomUUID()}`;
      const now = Math.floor(Date.now() / 1000);
      const tampered = await deliver(hook.url, hook.secret, JSON.stringify({ name: 'Eve' }), {
        id,
        timestamp: now,
        signature: signWebhook(hook.secret, id, now, body),
      });
      expect([tampered.status, tampered.body.error.code]).toEqual([401, 'invalid_signature']);
      const stale = await deliver(hook.url, hook.secret, body, { timestamp: now - 3600 });
      expect([stale.status, stale.body.error.code]).toEqual([401, 'timestamp_out_of_tolerance']);
      const bare = await request('POST', hook.url, { rawBody: body });
      expect([bare.status, bare.body.error.code]).toEqual([401, 'invalid_signature']);
      const unknown = await deliver(`${t.api}/hooks/${randomUUID()}`, hook.secret, body);
      expect(unknown.status).toBe(404);

      // A refused delivery's id is not spent: the sender's correctly signed retry of it runs.
      const retried = await deliver(hook.url, hook.secret, body, { id });
      expect(retried.status).toBe(202);
      await eventually(
        () => executions(ada, flowId),
        (list) => list.length === 1,
      );
    });

    test('a body that is not a JSON object is 400, a disabled trigger 409, a deleted one 404: nothing runs', async () => {
      const flowId = await createFlow(ada, 'Static prompt');
      const hook = await webhookTrigger(ada, flowId);
      for (const body of ['[1,2]', '"text"', '{not json', JSON.stringify({ 'bad key!': 1 })]) {
        const res = await deliver(hook.url, hook.secret, body);
        expect({ body, status: res.status }).toEqual({ body, status: 400 });
      }
      const nul = await deliver(hook.url, hook.secret, JSON.stringify({ name: 'a\u0000b' }));
      expect(nul.status).toBe(400);
      const large = await deliver(hook.url, hook.secret, JSON.stringify({ name: 'x'.repeat(40_000) }));
      expect([large.status, large.body.error.code]).toEqual([400, 'input_too_large']);

      const off = await request('PATCH', `${t.api}/flows/${flowId}/triggers/${hook.id}`, {
        token: ada.accessToken,
        body: { enabled: false },
      });
      expect(off.status).toBe(200);
      const disabled = await deliver(hook.url, hook.secret, '{}');
      expect([disabled.status, disabled.body.error.code]).toEqual([409, 'trigger_disabled']);
      expect((await request('DELETE', `${t.api}/flows/${flowId}/triggers/${hook.id}`, { token: ada.accessToken })).status).toBe(204);
      expect((await deliver(hook.url, hook.secret, '{}')).status).toBe(404);
      expect(await executions(ada, flowId)).toHaveLength(0);
    });

    test('past its rate limit a delivery is 429 trigger_rate_limited with Retry-After', async () => {
      const flowId = await createFlow(ada, 'Static prompt');
      const hook = await webhookTrigger(ada, flowId, { rateLimit: { limit: 2, perSeconds: 60 } });
      expect((await deliver(hook.url, hook.secret, '{}')).status).toBe(202);
      expect((await deliver(hook.url, hook.secret, '{}')).status).toBe(202);
      const third = await deliver(hook.url, hook.secret, '{}');
      expect([third.status, third.body.error.code]).toEqual([429, 'trigger_rate_limited']);
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
      await eventually(
        () => executions(ada, flowId),
        (list) => list.length === 2 && list.every((run) => run.status === 'completed'),
      );
    });

    test('debounced deliveries close together run once, with the last input', async () => {
      const flowId = await createFlow(ada);
      // A window that outlasts three deliveries on a busy host (each extends it).
      const hook = await webhookTrigger(ada, flowId, { debounceSeconds: 4 });
      for (const name of ['one', 'two', 'three']) {
        const res = await deliver(hook.url, hook.secret, JSON.stringify({ name }));
        expect(res.body.debounced).toBe(true);
      }
      const [run] = await eventually(
        () => executions(ada, flowId),
        (list) => list.length === 1 && list[0].status === 'completed',
      );
      expect(run.input).toEqual({ name: 'three' });
      // Nothing else was left waiting: a later delivery (after the window) is its own run.
      await deliver(hook.url, hook.secret, JSON.stringify({ name: 'four' }));
      const runs = await eventually(
        () => executions(ada, flowId),
        (list) => list.length === 2 && list.every((r) => r.status === 'completed'),
      );
      expect(runs.map((r) => r.input.name).sort()).toEqual(['four', 'three']);
    });

    test('a concurrency key lets one execution per key run at once; the next fire of that key waits for it', async () => {
      const flowId = await createFlow(ada, 'Order for {{input.customerId}}');
      const hook = await webhookTrigger(ada, flowId, { concurrency: { key: '{{input.customerId}}', limit: 1 } });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      hold = (req) => (messageText(req.messages.at(-1)!).includes('c-1') ? gate : undefined);

      expect((await deliver(hook.url, hook.secret, JSON.stringify({ customerId: 'c-1', n: 1 }))).status).toBe(202);
      await eventually(
        () => executions(ada, flowId),
        (list) => list.length === 1 && list[0].status === 'running',
      );
      expect((await deliver(hook.url, hook.secret, JSON.stringify({ customerId: 'c-1', n: 2 }))).status).toBe(202);
      expect((await deliver(hook.url, hook.secret, JSON.stringify({ customerId: 'c-2', n: 3 }))).status).toBe(202);
      // Another key is not held back: it completes while c-1's first is still running.
      const meanwhile = await eventually(
        () => executions(ada, flowId),
        (list) => list.some((run) => run.input.customerId === 'c-2' && run.status === 'completed'),
      );
      expect(meanwhile.filter((run) => run.input.customerId === 'c-1')).toHaveLength(1);
      release();
      const all = await eventually(
        () => executions(ada, flowId),
        (list) => list.length === 3 && list.every((run) => run.status === 'completed'),
        20_000,
      );
      expect(all.map((run) => run.input.n).sort()).toEqual([1, 2, 3]);
    });
  });

  describe('schedules', () => {
    /** A scheduler process of its own over the app's stores: several of them tick as several scheduler roles would. */
    const scheduler = () =>
      new TriggerScheduler({
        repos: t.app.repos,
        triggers: t.app.flowTriggers,
        logger: createLogger({ level: 'silent' }),
        tick: '* * * * *',
      });

    test('the next run is visible, computed in the time zone; a cron more frequent than the plan is 403 naming the limit', async () => {
      const flowId = await createFlow(ada);
      const res = await createTrigger(ada, flowId, {
        type: 'schedule',
        name: 'Mornings in Tokyo',
        cron: '0 9 * * *',
        timezone: 'Asia/Tokyo',
        input: { name: 'Tokyo' },
      });
      expect(res.status).toBe(201);
      const next = new Date(res.body.trigger.nextRunAt);
      expect(next.getUTCHours()).toBe(0); // 09:00 in Tokyo is 00:00 UTC
      expect(next.getTime()).toBeGreaterThan(Date.now());
      expect(res.body.trigger).toMatchObject({ cron: '0 9 * * *', timezone: 'Asia/Tokyo', catchUp: 'skip', url: null });
      expect(res.body).not.toHaveProperty('secret');

      const often = await createTrigger(ada, flowId, { type: 'schedule', name: 'Often', cron: '*/5 * * * *', input: { name: 'x' } });
      expect(often.status).toBe(403);
      expect(often.body.error).toMatchObject({
        code: 'schedule_too_frequent',
        details: { limit: 'minScheduleIntervalSeconds', minIntervalSeconds: 900, scheduleIntervalSeconds: 300, tier: 'free' },
      });
      // Two fires a minute apart in an otherwise hourly pattern count by their closest gap.
      const pair = await createTrigger(ada, flowId, { type: 'schedule', name: 'Pair', cron: '0,1 * * * *', input: { name: 'x' } });
      expect(pair.body.error?.code).toBe('schedule_too_frequent');
      // The plan decides: on pro, every 5 minutes is allowed.
      await t.app.repos.users.setTier(bob.id, 'pro');
      const bobFlow = await createFlow(bob);
      const pro = await createTrigger(bob, bobFlow, { type: 'schedule', name: 'Pro', cron: '*/5 * * * *', input: { name: 'x' } });
      expect(pro.status).toBe(201);
    });

    test('two schedulers ticking on the same due slot start one execution, and the schedule moves on', async () => {
      const flowId = await createFlow(ada);
      const res = await createTrigger(ada, flowId, { type: 'schedule', name: 'Hourly', cron: '0 * * * *', input: { name: 'Hourly' } });
      const nextRunAt = new Date(res.body.trigger.nextRunAt);
      const at = new Date(nextRunAt.getTime() + 5_000);
      const [a, b] = [scheduler(), scheduler()];
      const claimed = await Promise.all([a.tick(at), b.tick(at), a.tick(at)]);
      expect(claimed.reduce((sum, n) => sum + n, 0)).toBeGreaterThanOrEqual(1);
      const runs = await eventually(
        () => executions(ada, flowId),
        (list) => list.length === 1 && list[0].status === 'completed',
      );
      expect(runs[0].input).toEqual({ name: 'Hourly' });
      // Ticking again at the same moment finds nothing due; the next run is an hour on.
      await Promise.all([a.tick(at), b.tick(at)]);
      const trigger = (await request('GET', `${t.api}/flows/${flowId}/triggers/${res.body.trigger.id}`, { token: ada.accessToken })).body
        .trigger;
      expect(new Date(trigger.nextRunAt).getTime()).toBe(nextRunAt.getTime() + 3_600_000);
      expect(trigger.lastExecutionId).toBe(runs[0].id);
      expect(await executions(ada, flowId)).toHaveLength(1);
    });

    test('after downtime, catchUp skip passes the missed slots; run_once runs the latest once', async () => {
      const flowId = await createFlow(ada);
      const skip = await createTrigger(ada, flowId, { type: 'schedule', name: 'Skip', cron: '0 * * * *', input: { name: 'skip' } });
      const once = await createTrigger(ada, flowId, {
        type: 'schedule',
        name: 'Once',
        cron: '0 * * * *',
        catchUp: 'run_once',
        input: { name: 'once' },
      });
      const due = new Date(skip.body.trigger.nextRunAt);
      // The scheduler comes back five hours and ten minutes after the first missed slot.
      const back = new Date(due.getTime() + 5 * 3_600_000 + 10 * 60_000);
      await scheduler().tick(back);
      const runs = await eventually(
        () => executions(ada, flowId),
        (list) => list.length === 1 && list[0].status === 'completed',
      );
      expect(runs[0].input).toEqual({ name: 'once' });
      for (const trigger of [skip, once]) {
        const now = (await request('GET', `${t.api}/flows/${flowId}/triggers/${trigger.body.trigger.id}`, { token: ada.accessToken })).body
          .trigger;
        expect(new Date(now.nextRunAt).getTime()).toBe(latestSlot('0 * * * *', 'UTC', back).getTime() + 3_600_000);
      }
    });
  });

  describe('the routes', () => {
    test("another user's flow is 404 for every trigger route; a chatflow has none (409)", async () => {
      const flowId = await createFlow(ada);
      const hook = await webhookTrigger(ada, flowId);
      const as = (method: string, path: string, body?: unknown) =>
        request(method, `${t.api}/flows/${flowId}${path}`, { token: bob.accessToken, body });
      expect((await as('GET', '/triggers')).status).toBe(404);
      expect((await as('POST', '/triggers', { type: 'webhook', name: 'Stolen' })).status).toBe(404);
      expect((await as('GET', `/triggers/${hook.id}`)).status).toBe(404);
      expect((await as('PATCH', `/triggers/${hook.id}`, { enabled: false })).status).toBe(404);
      expect((await as('DELETE', `/triggers/${hook.id}`)).status).toBe(404);
      // Bob's own flow does not reach Ada's trigger either.
      const bobFlow = await createFlow(bob);
      expect((await request('GET', `${t.api}/flows/${bobFlow}/triggers/${hook.id}`, { token: bob.accessToken })).status).toBe(404);

      const chat = await request('POST', `${t.api}/flows`, {
        token: ada.accessToken,
        body: { type: 'chatflow', name: 'Chat', definition: { systemPrompt: 'Hi' } },
      });
      const refused = await createTrigger(ada, chat.body.flow.id, { type: 'webhook', name: 'No' });
      expect([refused.status, refused.body.error.code]).toEqual([409, 'not_an_agentflow']);
    });

    test('bad bodies are 400 naming the field, and write nothing', async () => {
      const flowId = await createFlow(ada);
      const cases: Array<[unknown, string]> = [
        [{ type: 'cron', name: 'x' }, 'type'],
        [{ type: 'schedule', name: 'x', cron: 'every day', input: { name: 'x' } }, 'cron'],
        [{ type: 'schedule', name: 'x', cron: '0 * * * *', timezone: 'Mars/Olympus', input: { name: 'x' } }, 'timezone'],
        [{ type: 'schedule', name: 'x', cron: '0 * * * *', catchUp: 'all', input: { name: 'x' } }, 'catchUp'],
        [{ type: 'schedule', name: 'x', cron: '0 * * * *', input: { name: 'x' }, debounceSeconds: 5 }, 'debounceSeconds'],
        [{ type: 'schedule', name: 'x', cron: '0 * * * *', input: { name: 'x' }, rateLimit: { limit: 1, perSeconds: 60 } }, 'rateLimit'],
        [{ type: 'webhook', name: 'x', concurrency: { limit: 0 } }, 'concurrency.limit'],
        [{ type: 'webhook', name: 'x', concurrency: { key: '{{nodes.a.output}}', limit: 1 } }, 'concurrency.key'],
        [{ type: 'webhook', name: 'x', debounceSeconds: 7200 }, 'debounceSeconds'],
        [{ type: 'webhook', name: '' }, 'name'],
        [{ type: 'connector', name: 'x', agentId: 'nope' }, 'agentId'],
      ];
      for (const [body, path] of cases) {
        const res = await createTrigger(ada, flowId, body);
        expect({ path, status: res.status, code: res.body.error?.code }).toEqual({ path, status: 400, code: 'validation_failed' });
        expect(res.body.error.details.map((d: { path: string; message: string }) => `${d.path} ${d.message}`).join(' ')).toContain(path);
      }
      const missing = await createTrigger(ada, flowId, { type: 'schedule', name: 'x', cron: '0 * * * *' });
      expect([missing.status, missing.body.error.code, missing.body.error.details]).toEqual([400, 'missing_input', { missing: ['name'] }]);
      const agent = await createTrigger(ada, flowId, { type: 'connector', name: 'x', agentId: randomUUID() });
      expect(agent.status).toBe(404);
      const list = await request('GET', `${t.api}/flows/${flowId}/triggers`, { token: ada.accessToken });
      expect(list.body.triggers).toEqual([]);
    });

    test('a write API key may manage triggers (it may run the flow anyway); a read key may only list them', async () => {
      const flowId = await createFlow(ada);
      const key = async (scopes: string[]) =>
        (await request('POST', `${t.api}/api-keys`, { token: ada.accessToken, body: { name: `k-${randomUUID().slice(0, 6)}`, scopes } }))
          .body.secret as string;
      const write = await key(['read', 'write']);
      const read = await key(['read']);
      const created = await createTrigger({ ...ada, accessToken: write }, flowId, { type: 'webhook', name: 'By key' });
      expect(created.status).toBe(201);
      const refused = await createTrigger({ ...ada, accessToken: read }, flowId, { type: 'webhook', name: 'By read key' });
      expect(refused.status).toBe(403);
      const listed = await request('GET', `${t.api}/flows/${flowId}/triggers`, { token: read });
      expect(listed.body.triggers).toHaveLength(1);
    });
  });
});

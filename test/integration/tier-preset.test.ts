import { randomUUID } from 'node:crypto';
import { count, eq } from 'drizzle-orm';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { ChatRequest, ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { chatMessages, chatSessions, hitlRequests } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * The model: a message asking for two listings lists the tasks twice in one round, one asking for
 * two deletions deletes two tasks in one round; once the round's results are in, or for any other
 * message, it answers in a line.
 */
function responder(req: ChatRequest): ChatTurn {
  const asked = String([...req.messages].reverse().find((message) => message.role === 'user')?.content ?? '');
  const answered = req.messages.at(-1)?.role === 'tool';
  if (!answered && asked.includes('list my tasks twice'))
    return {
      toolCalls: [
        { name: 'list_tasks', args: {} },
        { name: 'list_tasks', args: { search: 'launch' } },
      ],
    };
  if (!answered && asked.includes('delete both tasks'))
    return {
      toolCalls: [
        { name: 'delete_task', args: { task_id: 't1' } },
        { name: 'delete_task', args: { task_id: 't2' } },
      ],
    };
  return { text: 'Done.' };
}

/**
 * `TIER_PRESET=seed`: the design's plans without hand-written JSON, and its hourly limits enforced
 * on every path they name (model calls, operations on the user's device, approval requests).
 * TIER_LIMITS here lowers the free plan's hourly limits over the preset, so each one shows with a
 * few calls.
 */
describe('TIER_PRESET=seed', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      responder,
      env: {
        TIER_PRESET: 'seed',
        TIER_LIMITS: JSON.stringify({ free: { requestsPerHour: 2, deviceOperationsPerHour: 1, approvalsPerHour: 1 } }),
      },
    });
  }, 60_000);

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  }, 30_000);

  const connect = async (user: TestUser) => {
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed: {
        tasks: [
          { id: 't1', title: 'Book venue' },
          { id: 't2', title: 'Invite press' },
        ],
      },
      reconnection: false,
    });
    devices.push(device);
    return device;
  };
  const chat = (user: TestUser, body: Record<string, unknown>) => request('POST', `${t.api}/chat`, { token: user.accessToken, body });
  const messagesOf = async (user: TestUser) => {
    const [row] = await t.app.repos.db
      .select({ n: count() })
      .from(chatMessages)
      .innerJoin(chatSessions, eq(chatMessages.sessionId, chatSessions.id))
      .where(eq(chatSessions.userId, user.id));
    return row.n;
  };

  test("a free user's plan is the preset's: 100 model requests a month, cloud models only; TIER_LIMITS laid over it", async () => {
    const user = await registerUser(t.api, 'Plan');
    const me = await request('GET', `${t.api}/me`, { token: user.accessToken });
    expect(me.status).toBe(200);
    const limits = me.body.user?.limits ?? me.body.limits;
    expect(limits).toEqual(
      expect.objectContaining({
        requestsPerMonth: 100,
        requestsPerHour: 2,
        features: expect.objectContaining({ localModels: false, cloudAgents: true, flows: true }),
      }),
    );
    const budget = await request('GET', `${t.api}/usage/budget`, { token: user.accessToken });
    expect(budget.body.windows).toEqual([
      expect.objectContaining({ window: 'hour', limitRequests: 2 }),
      expect.objectContaining({ window: 'month', limitRequests: 100 }),
    ]);
  });

  test('model calls per hour: two turns answer, the third is 429 budget_exceeded (hour, requests) and writes nothing', async () => {
    const user = await registerUser(t.api, 'Hourly');
    for (const message of ['First question', 'Second question']) {
      const answered = await chat(user, { message, tools: 'none' });
      expect(answered.status).toBe(200);
    }
    const before = await messagesOf(user);
    const refused = await chat(user, { message: 'Third question', tools: 'none' });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toEqual(
      expect.objectContaining({
        code: 'budget_exceeded',
        details: expect.objectContaining({ window: 'hour', dimension: 'requests', limit: 2 }),
      }),
    );
    expect(await messagesOf(user)).toBe(before);
  });

  test('device operations per hour: past the limit a tool call is not run on the device and the model is told why', async () => {
    const user = await registerUser(t.api, 'Operations');
    const device = await connect(user);
    const requestsBefore = t.llm.chatRequests().length;
    const answered = await chat(user, { message: 'Please list my tasks twice', deviceId: device.deviceId });
    expect(answered.status).toBe(200);
    expect(answered.body.response).toBe('Done.');
    // One operation reached the device; the other was refused before it was sent.
    expect(device.calls).toHaveLength(1);
    const second = t.llm.chatRequests().slice(requestsBefore)[1];
    const results = second.messages.filter((message) => message.role === 'tool').map((message) => String(message.content));
    expect(results).toHaveLength(2);
    expect(results.filter((text) => text.startsWith('Error: list_tasks was NOT run'))).toHaveLength(1);
    expect(results.find((text) => text.startsWith('Error:'))).toMatch(/device operation/);
  });

  test('approval requests per hour: a round that would ask for more ends the turn 429 rate_limited before any is asked', async () => {
    const user = await registerUser(t.api, 'Approvals');
    const device = await connect(user);
    const refused = await chat(user, { message: 'Please delete both tasks', deviceId: device.deviceId });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
    const [asked] = await t.app.repos.db.select({ n: count() }).from(hitlRequests).where(eq(hitlRequests.userId, user.id));
    expect(asked.n).toBe(0);
    expect(device.calls).toHaveLength(0);
  });
});

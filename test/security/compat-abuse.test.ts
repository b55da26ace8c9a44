import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

/**
 * The compatibility edge under attack: another user's ids answer 404 as on the native routes, the
 * native routes' limits count the compatible paths in the same buckets, and a bad snake_case body
 * is a 400 in the API's error shape that writes nothing.
 */
describe('compatibility edge: attacks', () => {
  let t: TestApp;
  let owner: TestUser;
  let stranger: TestUser;

  beforeAll(async () => {
    t = await startTestApp({
      responder: demoResponder,
      env: { TIER_LIMITS: JSON.stringify({ free: { chatPerMinute: 6, generationsPerMinute: 2, concurrentGenerations: 5 } }) },
    });
    [owner, stranger] = await Promise.all([registerUser(t.api, 'Owner'), registerUser(t.api, 'Stranger')]);
  });

  afterAll(() => t.stop());

  const call = (who: TestUser, method: string, path: string, body?: unknown) =>
    request(method, `${t.url}${path}`, { token: who.accessToken, body });
  const native = (who: TestUser, method: string, path: string, body?: unknown) =>
    request(method, `${t.api}${path}`, { token: who.accessToken, body });

  async function conversation(who: TestUser): Promise<string> {
    const turn = await native(who, 'POST', '/chat', { message: 'The printer is offline.', tools: 'none' });
    expect(turn.status).toBe(200);
    return turn.body.sessionId as string;
  }

  test("given another user's session, flow, execution and canvas ids, every compatible path answers 404, never 403, and changes nothing", async () => {
    const user = await registerUser(t.api, 'Victim');
    const sessionId = await conversation(user);
    const flow = await native(user, 'POST', '/flows', {
      type: 'agentflow',
      name: 'Private',
      definition: { nodes: [{ id: 'a', prompt: 'hi' }], output: 'a' },
    });
    const flowId = flow.body.flow.id as string;
    const execution = await native(user, 'POST', `/flows/${flowId}/execute`, { input: {} });
    const chatflow = await native(user, 'POST', '/flows', { type: 'chatflow', name: 'Private chat', definition: { systemPrompt: 'Hi.' } });
    const canvasId = await createCanvas(t.api, user, `Private ${randomUUID().slice(0, 6)}`);

    const attempts: Array<[string, string, unknown?]> = [
      ['POST', `/api/ai-sessions/${sessionId}/resolve`, { resolution_summary: 'mine now' }],
      ['POST', `/api/ai-sessions/${sessionId}/escalate`, { escalation_reason: 'x' }],
      ['POST', `/api/ai-sessions/${sessionId}/pause`],
      ['GET', `/api/ai-sessions/${sessionId}/documentation`],
      ['GET', `/api/ai-sessions/${sessionId}/documentation/stream`],
      ['GET', `/api/agent-builder/chatflow/sessions/${sessionId}/history`],
      ['DELETE', `/api/agent-builder/chatflow/sessions/${sessionId}`],
      ['POST', '/api/agent-builder/chatflow/chat', { message: 'hi', session_id: sessionId }],
      ['POST', `/api/agent-builder/chatflow/workflows/${chatflow.body.flow.id}/chat`, { message: 'hi' }],
      ['POST', `/api/agent-builder/workflows/${flowId}/execute`, { input: {} }],
      ['POST', `/api/agent-builder/flows/agentflows/${flowId}/execute`, { input: {} }],
      ['POST', `/api/agent-builder/flows/chatflows/${chatflow.body.flow.id}/chat`, { message: 'hi' }],
      ['GET', `/api/agent-builder/ai-agent-chat/sessions/${sessionId}/history`],
      ['POST', `/api/agent-builder/agentflows/${flowId}/execute`, { input: {} }],
      ['GET', `/api/agent-builder/agentflows/${flowId}/executions`],
      ['GET', `/api/agent-builder/agentflows/${flowId}/executions/${execution.body.executionId}`],
      ['GET', `/api/v1/sessions/${sessionId}`],
      ['GET', `/api/v1/sessions/${sessionId}/history`],
      ['DELETE', `/api/v1/sessions/${sessionId}`],
      ['POST', '/api/v1/agent/chat', { session_id: sessionId, message: 'hi' }],
      ['POST', `/api/v1/canvas/${canvasId}/ai/generate-stream`, { prompt: 'A heading' }],
    ];
    for (const [method, path, body] of attempts) {
      const res = await call(stranger, method, path, body);
      expect({ method, path, status: res.status, code: res.body?.error?.code }).toEqual({ method, path, status: 404, code: 'not_found' });
    }

    const session = await native(user, 'GET', `/chat/sessions/${sessionId}`);
    expect(session.body.session).toMatchObject({ status: 'active', escalationReason: null });
    const history = await native(user, 'GET', `/chat/sessions/${sessionId}/history`);
    expect(history.body.messages).toHaveLength(2);
    const executions = await native(user, 'GET', `/flows/${flowId}/executions`);
    expect(executions.body.executions).toHaveLength(1);
    const blocks = await native(user, 'GET', `/canvases/${canvasId}/blocks`);
    expect(blocks.body.blocks).toEqual([]);
  });

  test('without a token, or with a malformed id, the compatible paths answer as the native ones (401, 404)', async () => {
    const anonymous = await request('POST', `${t.url}/api/ai-sessions/${randomUUID()}/resolve`, { body: {} });
    expect({ status: anonymous.status, code: anonymous.body.error.code }).toEqual({ status: 401, code: 'unauthorized' });
    const anonymousSessions = await request('POST', `${t.url}/api/v1/sessions`, { body: {} });
    expect(anonymousSessions.status).toBe(401);
    const malformed = await call(owner, 'GET', '/api/ai-sessions/not-a-uuid/documentation');
    expect({ status: malformed.status, code: malformed.body.error.code }).toEqual({ status: 404, code: 'not_found' });
  });

  test('a flood of chats counts native and compatible requests in one bucket: the next one is 429 with Retry-After on either path', async () => {
    const user = await registerUser(t.api, 'Flooder');
    // chatPerMinute is 6: three native turns, two agent-builder chats, one new CodeLab session.
    for (let i = 0; i < 3; i += 1)
      expect((await native(user, 'POST', '/chat', { message: `native ${i}`, tools: 'none' })).status).toBe(200);
    for (let i = 0; i < 2; i += 1)
      expect((await call(user, 'POST', '/api/agent-builder/chatflow/chat', { message: `compat ${i}` })).status).toBe(200);
    expect((await call(user, 'POST', '/api/v1/sessions')).status).toBe(201);

    const sessionsBefore = (await native(user, 'GET', '/chat/sessions')).body.sessions.length as number;
    for (const [method, path, body] of [
      ['POST', '/api/agent-builder/chatflow/chat', { message: 'one more' }],
      ['POST', '/api/v1/agent/chat', { message: 'one more' }],
      ['POST', '/api/v1/sessions', undefined],
    ] as const) {
      const refused = await call(user, method, path, body);
      expect({ path, status: refused.status, code: refused.body.error.code }).toEqual({ path, status: 429, code: 'rate_limited' });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    const nativeRefused = await native(user, 'POST', '/chat', { message: 'native again', tools: 'none' });
    expect(nativeRefused.status).toBe(429);
    expect((await native(user, 'GET', '/chat/sessions')).body.sessions).toHaveLength(sessionsBefore);
  });

  test('generations: the canvas path and the native one share the per-minute limit', async () => {
    const user = await registerUser(t.api, 'Generator');
    const canvasId = await createCanvas(t.api, user, `Flood ${randomUUID().slice(0, 6)}`);
    const generate = (path: string) =>
      readSse(`${path}/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'A heading' },
        until: (message) => message.event === 'complete' || message.event === 'error',
      });
    expect((await generate(`${t.api}/canvases`)).status).toBe(200);
    expect((await generate(`${t.url}/api/v1/canvas`)).status).toBe(200);
    const refused = await generate(`${t.url}/api/v1/canvas`);
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 429, code: 'rate_limited' });
    expect((await generate(`${t.api}/canvases`)).status).toBe(429);
  });

  test('the notes stream: 20 a minute across the native and FlowPilot paths', async () => {
    const user = await registerUser(t.api, 'Reader');
    const sessionId = await conversation(user);
    expect((await native(user, 'POST', `/chat/sessions/${sessionId}/resolve`, {})).status).toBe(200);
    await eventually(
      () => native(user, 'GET', `/chat/sessions/${sessionId}/documentation`),
      (read) => read.body.documentationStatus === 'ready',
    );
    const open = (base: string) =>
      readSse(`${base}/${sessionId}/documentation/stream`, { token: user.accessToken, until: (message) => message.data === '[DONE]' });
    for (let i = 0; i < 10; i += 1) expect((await open(`${t.api}/chat/sessions`)).status).toBe(200);
    for (let i = 0; i < 10; i += 1) expect((await open(`${t.url}/api/ai-sessions`)).status).toBe(200);
    const refused = await open(`${t.url}/api/ai-sessions`);
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 429, code: 'rate_limited' });
    expect((await open(`${t.api}/chat/sessions`)).status).toBe(429);
  });

  test('bad snake_case bodies are a 400 naming the fields as sent, in the API error shape, and nothing is written', async () => {
    const sessionId = await conversation(owner);
    const sessionsBefore = (await native(owner, 'GET', '/chat/sessions')).body.sessions.length as number;

    const cases: Array<[string, string, unknown, string]> = [
      ['POST', `/api/ai-sessions/${sessionId}/escalate`, { escalation_reason: 42 }, 'escalation_reason'],
      ['POST', `/api/ai-sessions/${sessionId}/escalate`, { escalation_reason: 'x'.repeat(2_001) }, 'escalation_reason'],
      ['POST', `/api/ai-sessions/${sessionId}/resolve`, { resolution_summary: '' }, 'resolution_summary'],
      ['POST', `/api/ai-sessions/${sessionId}/resolve`, { resolution_summery: 'typo' }, 'resolution_summery'],
      ['POST', `/api/ai-sessions/${sessionId}/pause`, { pause_reason: 'lunch' }, 'pause_reason'],
      ['POST', `/api/ai-sessions/${sessionId}/resolve`, { resolution_summary: 'a', resolutionSummary: 'b' }, 'resolution_summary'],
      ['POST', '/api/v1/agent/chat', { session_id: 'not-a-uuid', message: 'hi' }, 'session_id'],
      ['POST', '/api/v1/agent/chat', { session_id: sessionId, message: '' }, 'message'],
      ['POST', '/api/v1/sessions', { session_title: 'x' }, 'session_title'],
      ['POST', '/api/agent-builder/chatflow/chat', { message: 'hi', config: { provider: 'scripted', model_name: 'x' } }, 'model_name'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await call(owner, method, path, body);
      expect({ path, status: res.status, code: res.body.error?.code }).toEqual({ path, status: 400, code: 'validation_failed' });
      expect(typeof res.body.error.message).toBe('string');
      expect(JSON.stringify(res.body.error.details)).toContain(field);
    }
    const notJson = await request('POST', `${t.url}/api/ai-sessions/${sessionId}/escalate`, {
      token: owner.accessToken,
      rawBody: '{"escalation_reason": ',
    });
    expect(notJson.status).toBe(400);
    const notJsonType = await request('POST', `${t.url}/api/v1/sessions`, {
      token: owner.accessToken,
      rawBody: 'title=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect({ status: notJsonType.status, code: notJsonType.body.error.code }).toEqual({ status: 415, code: 'unsupported_media_type' });
    const withNul = await call(owner, 'POST', `/api/ai-sessions/${sessionId}/escalate`, { escalation_reason: 'a\u0000b' });
    expect(withNul.status).toBe(400);
    // A lone surrogate, in a value or in a key: PostgreSQL could not store it; refused, never a 500.
    const loneValue = await call(owner, 'POST', `/api/ai-sessions/${sessionId}/escalate`, { escalation_reason: 'a\ud800b' });
    expect({ status: loneValue.status, code: loneValue.body.error.code }).toEqual({ status: 400, code: 'validation_failed' });
    const loneKey = await call(owner, 'POST', `/api/ai-sessions/${sessionId}/escalate`, { ['escalation_\ud800reason']: 'x' });
    expect({ status: loneKey.status, code: loneKey.body.error.code }).toEqual({ status: 400, code: 'validation_failed' });

    const session = await native(owner, 'GET', `/chat/sessions/${sessionId}`);
    expect(session.body.session).toMatchObject({ status: 'active', escalationReason: null });
    expect((await native(owner, 'GET', `/chat/sessions/${sessionId}/history`)).body.messages).toHaveLength(2);
    expect((await native(owner, 'GET', '/chat/sessions')).body.sessions).toHaveLength(sessionsBefore);
  });
});

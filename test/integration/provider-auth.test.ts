import { MODEL_FAILURE_TEXT } from '../../src/ai/llm';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request } from '../support/http';
import { readSse } from '../support/sse';

/**
 * A model provider that refuses the deployment's key (401 or 403) is not a provider that is down:
 * every path ends with `llm_auth_failed` and a message saying an operator must fix the key, the
 * request is sent once (no retry mends a key), and /readyz says `unauthorized` (provider-probe.test.ts).
 */
describe.each([401, 403])('a provider answering %i to the key', (status) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ responder: () => ({ error: { status, message: 'Incorrect API key provided: sk-wrong' } }) });
  });

  afterAll(async () => {
    await t?.stop();
  });

  test('a generation ends with llm_auth_failed and the operator message, after one request to the provider', async () => {
    const user = await registerUser(t.api, `Auth${status}`);
    const canvasId = await createCanvas(t.api, user);
    const before = t.llm.chatRequests().length;

    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'A heading and two todos' },
      timeoutMs: 20_000,
      until: (message) => message.event === 'complete' || message.event === 'error',
    });

    const last = sse.messages.at(-1)!;
    expect(last.event).toBe('error');
    expect(last.data).toMatchObject({ code: 'llm_auth_failed', message: MODEL_FAILURE_TEXT.llm_auth_failed });
    expect(last.data.message).toContain('an operator must fix the key');
    // The provider's own text (it may echo the key) never reaches the user.
    expect(JSON.stringify(sse.messages)).not.toContain('sk-wrong');
    expect(t.llm.chatRequests().length - before).toBe(1);
  });

  test('an agentflow node fails llm_auth_failed at its first attempt: the node is not retried', async () => {
    const user = await registerUser(t.api, `AuthFlow${status}`);
    const flow = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: 'Auth check', definition: { nodes: [{ id: 'draft', prompt: 'Write a line' }], output: 'draft' } },
    });
    expect(flow.status).toBe(201);
    const before = t.llm.chatRequests().length;

    const sse = await readSse(`${t.api}/flows/${flow.body.flow.id}/execute/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { input: {} },
      timeoutMs: 20_000,
      until: (message) => ['execution_completed', 'execution_failed', 'cancelled'].includes(message.event ?? ''),
    });

    const nodeFailed = sse.messages.find((message) => message.event === 'node_failed');
    expect(nodeFailed?.data.error).toEqual({ code: 'llm_auth_failed', message: MODEL_FAILURE_TEXT.llm_auth_failed });
    expect(sse.messages.at(-1)?.event).toBe('execution_failed');
    expect(t.llm.chatRequests().length - before).toBe(1);
  });

  test('a chat turn answers 503 llm_auth_failed, not llm_unavailable', async () => {
    const user = await registerUser(t.api, `AuthChat${status}`);

    const chat = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'Hello', tools: 'none' } });

    expect(chat.status).toBe(503);
    expect(chat.body.error).toEqual({ code: 'llm_auth_failed', message: MODEL_FAILURE_TEXT.llm_auth_failed });
  });
});

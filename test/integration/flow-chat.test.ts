import { createHash } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { flowEmbeds, llmUsage } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

/**
 * Chatflow chat (JSON and SSE) with history in chat sessions, the flow's model through
 * the gateway, usage billed to the owner and counted as chatflow executions; embeds: create, list,
 * revoke, the public chat with its origin rules, CORS and limits, sessions bound to their embed.
 * Real server, real scripted model over HTTP, real Redis and PostgreSQL.
 */
const lastUser = (req: ChatRequest) => String([...req.messages].reverse().find((m) => m.role === 'user')?.content ?? '');
const echo = (req: ChatRequest) => {
  const said = lastUser(req);
  if (said.includes('FAIL')) return { error: { status: 500, message: 'provider exploded with secret text' } };
  return { text: `Echo one. Echo two: ${said}` };
};

async function createFlow(api: string, user: TestUser, body: Record<string, unknown>): Promise<string> {
  const res = await request('POST', `${api}/flows`, { token: user.accessToken, body });
  if (res.status !== 201) throw new Error(`create flow failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.flow.id;
}
const chatflow = (definition: Record<string, unknown> = {}) => ({
  type: 'chatflow',
  name: 'Helper',
  definition: { systemPrompt: 'You are a pirate helper.', ...definition },
});

describe('chatflows: chat and embeds', () => {
  let t: TestApp;
  let owner: TestUser;
  let other: TestUser;
  let flowId: string;

  beforeAll(async () => {
    t = await startTestApp({ responder: echo });
    owner = await registerUser(t.api, 'Owner');
    other = await registerUser(t.api, 'Other');
    flowId = await createFlow(
      t.api,
      owner,
      chatflow({ model: { provider: 'scripted', model: 'scripted-model' }, temperature: 0.3, historyWindow: 2 }),
    );
  });

  afterAll(() => t.stop());

  const chat = (user: TestUser, id: string, body: unknown) =>
    request('POST', `${t.api}/flows/${id}/chat`, { token: user.accessToken, body });
  const publicChat = (token: string, body: unknown, headers: Record<string, string> = {}) =>
    request('POST', `${t.api}/embed/public/${token}/chat`, { body, headers });
  const createEmbed = async (id: string, allowedOrigins: string[], user = owner) => {
    const res = await request('POST', `${t.api}/flows/${id}/embeds`, { token: user.accessToken, body: { allowedOrigins } });
    expect(res.status).toBe(201);
    return res.body as { embedId: string; embedToken: string };
  };
  async function requestsDuring<T>(work: () => Promise<T>): Promise<{ result: T; requests: ChatRequest[] }> {
    const before = t.llm.chatRequests().length;
    const result = await work();
    return { result, requests: t.llm.chatRequests().slice(before) };
  }
  const chatflowUsageRows = (userId: string) =>
    t.app.repos.db
      .select()
      .from(llmUsage)
      .where(and(eq(llmUsage.userId, userId), eq(llmUsage.purpose, 'chatflow')));
  const executions = async (status: string) => {
    const text = (await request('GET', `${t.url}/metrics`)).body as string;
    const match = text.match(new RegExp(`switchboard_flow_executions_total\\{type="chatflow",status="${status}"\\} (\\d+)`));
    return match ? Number(match[1]) : 0;
  };

  test("JSON chat: the flow prompt, model and temperature reach the model; history is the session's, cut to historyWindow; usage is the owner's", async () => {
    const countedBefore = await executions('completed');

    const { result: first, requests: firstRequests } = await requestsDuring(() => chat(owner, flowId, { message: 'Ahoy one' }));
    const second = await chat(owner, flowId, { message: 'Ahoy two', sessionId: first.body.sessionId });
    const { result: third, requests: thirdRequests } = await requestsDuring(() =>
      chat(owner, flowId, { message: 'Ahoy three', sessionId: first.body.sessionId }),
    );

    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      sessionId: expect.any(String),
      response: 'Echo one. Echo two: Ahoy one',
      usage: {
        provider: 'scripted',
        model: 'scripted-model',
        inputTokens: expect.any(Number),
        outputTokens: expect.any(Number),
        costUsd: expect.any(Number),
      },
    });
    expect(firstRequests).toHaveLength(1);
    expect(firstRequests[0]).toMatchObject({ model: 'scripted-model', temperature: 0.3 });
    expect(firstRequests[0].tools ?? []).toEqual([]);
    expect(firstRequests[0].messages[0]).toMatchObject({ role: 'system', content: 'You are a pirate helper.' });
    expect(second.status).toBe(200);
    expect(second.body.sessionId).toBe(first.body.sessionId);
    // historyWindow 2: the system prompt, the last two messages before it, and the new one.
    expect(third.status).toBe(200);
    expect(thirdRequests[0].messages.map((m) => `${m.role}:${m.content}`)).toEqual([
      'system:You are a pirate helper.',
      'user:Ahoy two',
      'assistant:Echo one. Echo two: Ahoy two',
      'user:Ahoy three',
    ]);
    const session = await request('GET', `${t.api}/chat/sessions/${first.body.sessionId}`, { token: owner.accessToken });
    expect(session.body.session).toMatchObject({ mode: 'flow', flowId, embedId: null, deviceId: null });
    const history = await request('GET', `${t.api}/chat/sessions/${first.body.sessionId}/history`, { token: owner.accessToken });
    expect(history.body.messages.map((m: { role: string; content: string }) => `${m.role}:${m.content}`)).toEqual([
      'user:Ahoy one',
      'assistant:Echo one. Echo two: Ahoy one',
      'user:Ahoy two',
      'assistant:Echo one. Echo two: Ahoy two',
      'user:Ahoy three',
      'assistant:Echo one. Echo two: Ahoy three',
    ]);
    expect(await chatflowUsageRows(owner.id)).toHaveLength(3);
    // The worker counts a turn as it ends it, a moment after the answer reached the client.
    await eventually(
      () => executions('completed'),
      (n) => n === countedBefore + 3,
    );
  });

  test('SSE chat: text_chunk {sessionId, text} events, then final {sessionId, response, usage}; a failing model is error {code, message} and a failed execution', async () => {
    const failedBefore = await executions('failed');

    const sse = await readSse(`${t.api}/flows/${flowId}/chat/stream`, {
      method: 'POST',
      token: owner.accessToken,
      body: { message: 'Stream it' },
    });
    const failing = await readSse(`${t.api}/flows/${flowId}/chat/stream`, {
      method: 'POST',
      token: owner.accessToken,
      body: { message: 'please FAIL' },
    });
    const failingJson = await chat(owner, flowId, { message: 'FAIL again' });

    expect(sse.status).toBe(200);
    const sessionId = sse.headers.get('x-chat-session-id');
    const chunks = sse.messages.filter((m) => m.event === 'text_chunk');
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(chunk.data).toMatchObject({ type: 'text_chunk', sessionId, text: expect.any(String) });
    const final = sse.messages.at(-1)!;
    expect(final.event).toBe('final');
    expect(final.data).toMatchObject({
      sessionId,
      response: 'Echo one. Echo two: Stream it',
      usage: { provider: 'scripted', model: 'scripted-model' },
    });
    expect(chunks.map((c) => c.data.text).join('')).toBe(final.data.response);
    expect(failing.messages.at(-1)).toMatchObject({ event: 'error', data: { code: 'llm_unavailable', message: expect.any(String) } });
    expect(JSON.stringify(failing.messages)).not.toContain('secret text');
    expect(failingJson.status).toBe(503);
    expect(failingJson.body.error.code).toBe('llm_unavailable');
    await eventually(
      () => executions('failed'),
      (n) => n === failedBefore + 2,
    );
  });

  test('two users: no chat, embeds or sessions across them; an agentflow is no chatflow; an assistant chat cannot take over a flow session', async () => {
    const mine = await chat(owner, flowId, { message: 'Mine' });
    const theirFlow = await createFlow(t.api, other, chatflow());
    const agentflow = await createFlow(t.api, owner, {
      type: 'agentflow',
      name: 'DAG',
      definition: { nodes: [{ id: 'a', prompt: 'Say hi' }], output: 'a' },
    });
    const { embedId } = await createEmbed(flowId, ['https://shop.example']);

    const responses = {
      chat: await chat(other, flowId, { message: 'Let me in' }),
      stream: (
        await readSse(`${t.api}/flows/${flowId}/chat/stream`, { method: 'POST', token: other.accessToken, body: { message: 'Let me in' } })
      ).status,
      session: await chat(other, theirFlow, { message: 'Hijack', sessionId: mine.body.sessionId }),
      ownSessionOtherFlow: await chat(owner, await createFlow(t.api, owner, chatflow()), {
        message: 'Wrong flow',
        sessionId: mine.body.sessionId,
      }),
      listEmbeds: await request('GET', `${t.api}/flows/${flowId}/embeds`, { token: other.accessToken }),
      createEmbed: await request('POST', `${t.api}/flows/${flowId}/embeds`, {
        token: other.accessToken,
        body: { allowedOrigins: ['https://evil.example'] },
      }),
      deleteEmbed: await request('DELETE', `${t.api}/flows/${flowId}/embeds/${embedId}`, { token: other.accessToken }),
      deleteViaOwnFlow: await request('DELETE', `${t.api}/flows/${theirFlow}/embeds/${embedId}`, { token: other.accessToken }),
      history: await request('GET', `${t.api}/chat/sessions/${mine.body.sessionId}/history`, { token: other.accessToken }),
      agentflow: await chat(owner, agentflow, { message: 'Hello' }),
      agentflowEmbed: await request('POST', `${t.api}/flows/${agentflow}/embeds`, {
        token: owner.accessToken,
        body: { allowedOrigins: ['https://shop.example'] },
      }),
      assistant: await request('POST', `${t.api}/chat`, {
        token: owner.accessToken,
        body: { message: 'Take over', sessionId: mine.body.sessionId, tools: 'none' },
      }),
    };

    expect(responses.chat.status).toBe(404);
    expect(responses.stream).toBe(404);
    expect(responses.session.status).toBe(404);
    expect(responses.ownSessionOtherFlow.status).toBe(404);
    expect(responses.listEmbeds.status).toBe(404);
    expect(responses.createEmbed.status).toBe(404);
    expect(responses.deleteEmbed.status).toBe(404);
    expect(responses.deleteViaOwnFlow.status).toBe(404);
    expect(responses.history.status).toBe(404);
    expect(responses.agentflow.status).toBe(409);
    expect(responses.agentflow.body.error.code).toBe('not_a_chatflow');
    expect(responses.agentflowEmbed.status).toBe(409);
    expect(responses.assistant.status).toBe(409);
    expect(responses.assistant.body.error.code).toBe('flow_session');
    // The embed survived the stranger's attempts.
    expect(
      (await request('GET', `${t.api}/flows/${flowId}/embeds`, { token: owner.accessToken })).body.embeds.map((e: { id: string }) => e.id),
    ).toContain(embedId);
  });

  test('bad input is a clear 400 and writes nothing: lone surrogate, NUL, oversized, unknown field, bad origins', async () => {
    const { embedToken } = await createEmbed(flowId, ['https://shop.example']);
    const sessionsBefore = (await request('GET', `${t.api}/chat/sessions?limit=200`, { token: owner.accessToken })).body.sessions.length;
    const bodies = [
      { rawBody: '{"message":"hi \\ud800 there"}' },
      { rawBody: '{"message":"nul \\u0000 here"}' },
      { body: { message: 'x'.repeat(8_001) } },
      { body: { message: '   ' } },
      { body: { message: 'hi', extra: true } },
      { body: { message: 'hi', sessionId: 'not-a-uuid' } },
      { rawBody: '{"message":' },
    ];

    for (const input of bodies) {
      const owned = await request('POST', `${t.api}/flows/${flowId}/chat`, { token: owner.accessToken, ...input });
      const stream = await request('POST', `${t.api}/flows/${flowId}/chat/stream`, { token: owner.accessToken, ...input });
      const open = await request('POST', `${t.api}/embed/public/${embedToken}/chat`, {
        headers: { origin: 'https://shop.example' },
        ...input,
      });
      for (const res of [owned, stream, open]) {
        expect({ input: JSON.stringify(input).slice(0, 60), status: res.status }).toEqual({
          input: JSON.stringify(input).slice(0, 60),
          status: 400,
        });
        expect(res.body.error).toEqual(
          expect.objectContaining({ code: expect.stringMatching(/^(validation_failed|invalid_json)$/), message: expect.any(String) }),
        );
      }
      // The widget can read the refusal: its origin is allowed.
      expect(open.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    }
    for (const allowedOrigins of [
      [],
      ['https://shop.example/path'],
      ['https://shop.example/'],
      ['ftp://shop.example'],
      ['not an origin'],
      ['https://a.example\u0000'],
      Array(21).fill('https://a.example'),
    ]) {
      const res = await request('POST', `${t.api}/flows/${flowId}/embeds`, { token: owner.accessToken, body: { allowedOrigins } });
      expect({ allowedOrigins: allowedOrigins.slice(0, 1), status: res.status }).toEqual({
        allowedOrigins: allowedOrigins.slice(0, 1),
        status: 400,
      });
    }
    const bigBody = await request('POST', `${t.api}/embed/public/${embedToken}/chat`, {
      rawBody: JSON.stringify({ message: 'x'.repeat(2_000_000) }),
    });
    expect(bigBody.status).toBe(413);
    expect((await request('GET', `${t.api}/chat/sessions?limit=200`, { token: owner.accessToken })).body.sessions.length).toBe(
      sessionsBefore,
    );
  });

  test('embeds: 201 {embedId, embedToken} shown once, only its hash stored; listed without it; the public chat answers, billed to the owner', async () => {
    const created = await createEmbed(flowId, ['https://shop.example', 'http://localhost:8080']);
    const listed = await request('GET', `${t.api}/flows/${flowId}/embeds`, { token: owner.accessToken });
    const [row] = await t.app.repos.db.select().from(flowEmbeds).where(eq(flowEmbeds.id, created.embedId));
    const usageBefore = (await chatflowUsageRows(owner.id)).length;

    const answer = await publicChat(created.embedToken, { message: 'Public hello' }, { origin: 'https://shop.example' });
    const streamed = await readSse(`${t.api}/embed/public/${created.embedToken}/chat/stream`, {
      method: 'POST',
      body: { message: 'Streamed hello', sessionId: answer.body.sessionId },
      headers: { origin: 'http://localhost:8080' },
    });

    expect(created.embedToken).toMatch(/^sbe_[A-Za-z0-9_-]{43}$/);
    expect(listed.body.embeds).toEqual(
      expect.arrayContaining([
        {
          id: created.embedId,
          embedId: created.embedId,
          flowId,
          allowedOrigins: ['https://shop.example', 'http://localhost:8080'],
          version: 1,
          createdAt: expect.any(String),
        },
      ]),
    );
    expect(JSON.stringify(listed.body)).not.toContain(created.embedToken);
    expect(row.tokenHash).toBe(createHash('sha256').update(created.embedToken).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(created.embedToken.slice(4));
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ sessionId: expect.any(String), response: 'Echo one. Echo two: Public hello' });
    expect(answer.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(answer.headers.get('vary')).toMatch(/Origin/);
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get('access-control-allow-origin')).toBe('http://localhost:8080');
    expect(streamed.messages.at(-1)).toMatchObject({
      event: 'final',
      data: { sessionId: answer.body.sessionId, response: 'Echo one. Echo two: Streamed hello' },
    });
    // The owner pays and can read what visitors said; the session is marked as the embed's.
    expect((await chatflowUsageRows(owner.id)).length).toBe(usageBefore + 2);
    const session = await request('GET', `${t.api}/chat/sessions/${answer.body.sessionId}/history`, { token: owner.accessToken });
    expect(session.body.session).toMatchObject({ mode: 'flow', flowId, embedId: created.embedId });
    expect(session.body.messages).toHaveLength(4);
  });

  test('CORS: an allowed origin gets its headers and preflight; another origin is 403 origin_not_allowed with no CORS headers; no Origin is allowed', async () => {
    const { embedToken } = await createEmbed(flowId, ['https://shop.example']);
    const url = `${t.api}/embed/public/${embedToken}/chat`;

    const preflight = await fetch(url, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://shop.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    const refusedPreflight = await fetch(url, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    const refused = await publicChat(embedToken, { message: 'From evil' }, { origin: 'https://evil.example' });
    const refusedStream = await readSse(`${url}/stream`, {
      method: 'POST',
      body: { message: 'From evil' },
      headers: { origin: 'https://evil.example' },
    });
    const lookalike = await publicChat(embedToken, { message: 'From a lookalike' }, { origin: 'https://shop.example.evil.example' });
    const noOrigin = await publicChat(embedToken, { message: 'From a server' });

    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/content-type/i);
    expect(refusedPreflight.status).toBe(403);
    expect(refusedPreflight.headers.get('access-control-allow-origin')).toBeNull();
    for (const res of [refused, lookalike]) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('origin_not_allowed');
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-methods')).toBeNull();
    }
    expect(refusedStream.status).toBe(403);
    expect(refusedStream.headers.get('access-control-allow-origin')).toBeNull();
    expect(noOrigin.status).toBe(200);
    expect(noOrigin.headers.get('access-control-allow-origin')).toBeNull();
  });

  test("sessions belong to their embed: not the owner's other sessions, not another embed's; the owner cannot continue an embed's", async () => {
    const first = await createEmbed(flowId, ['https://shop.example']);
    const second = await createEmbed(flowId, ['https://shop.example']);
    const ownerSession = (await chat(owner, flowId, { message: 'Owner only' })).body.sessionId;
    const firstSession = (await publicChat(first.embedToken, { message: 'Visitor one' })).body.sessionId;

    const intoOwners = await publicChat(first.embedToken, { message: 'Peek', sessionId: ownerSession });
    const intoOther = await publicChat(second.embedToken, { message: 'Peek', sessionId: firstSession });
    const ownerInto = await chat(owner, flowId, { message: 'Peek', sessionId: firstSession });
    const own = await publicChat(first.embedToken, { message: 'Visitor two', sessionId: firstSession });

    for (const res of [intoOwners, intoOther, ownerInto]) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    expect(own.status).toBe(200);
    expect(own.body.sessionId).toBe(firstSession);
    const history = await request('GET', `${t.api}/chat/sessions/${ownerSession}/history`, { token: owner.accessToken });
    expect(history.body.messages.map((m: { content: string }) => m.content)).not.toContain('Peek');
  });

  test('revocation is immediate: the next request with the token is 404, the list drops it, a second delete is 404', async () => {
    const { embedId, embedToken } = await createEmbed(flowId, ['https://shop.example']);
    expect((await publicChat(embedToken, { message: 'Before' })).status).toBe(200);

    const deleted = await request('DELETE', `${t.api}/flows/${flowId}/embeds/${embedId}`, { token: owner.accessToken });
    const after = await publicChat(embedToken, { message: 'After' }, { origin: 'https://shop.example' });
    const afterStream = await readSse(`${t.api}/embed/public/${embedToken}/chat/stream`, { method: 'POST', body: { message: 'After' } });
    const preflight = await fetch(`${t.api}/embed/public/${embedToken}/chat`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' },
    });

    expect(deleted.status).toBe(204);
    expect(after.status).toBe(404);
    expect(after.body.error.code).toBe('not_found');
    expect(afterStream.status).toBe(404);
    expect(preflight.status).toBe(404);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(
      (await request('GET', `${t.api}/flows/${flowId}/embeds`, { token: owner.accessToken })).body.embeds.map((e: { id: string }) => e.id),
    ).not.toContain(embedId);
    expect((await request('DELETE', `${t.api}/flows/${flowId}/embeds/${embedId}`, { token: owner.accessToken })).status).toBe(404);
    expect((await publicChat('sbe_' + 'A'.repeat(43), { message: 'Guess' })).status).toBe(404);
    expect((await publicChat('short', { message: 'Guess' })).status).toBe(404);
  });
});

describe('chatflows: embed rate limits and cancel', () => {
  let t: TestApp;
  let owner: TestUser;
  let flowId: string;

  beforeAll(async () => {
    // Client IPs from X-Forwarded-For (TRUST_PROXY), so one test machine can be several visitors.
    t = await startTestApp({
      responder: () => ({ text: 'Short answer from the model, streamed slowly in several pieces.' }),
      llmDelayMs: 15,
      env: { EMBED_RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: 'loopback' },
    });
    owner = await registerUser(t.api, 'Owner');
    flowId = await createFlow(t.api, owner, chatflow());
  });

  afterAll(() => t.stop());

  const embed = async () =>
    (
      await request('POST', `${t.api}/flows/${flowId}/embeds`, {
        token: owner.accessToken,
        body: { allowedOrigins: ['https://shop.example'] },
      })
    ).body as { embedId: string; embedToken: string };
  const visit = (token: string, ip: string) =>
    request('POST', `${t.api}/embed/public/${token}/chat`, {
      body: { message: 'Hi' },
      headers: { 'x-forwarded-for': ip, origin: 'https://shop.example' },
    });

  test('per token: the fourth request in a minute is 429 with Retry-After, whatever the visitor', async () => {
    const { embedToken } = await embed();

    const answers = [];
    for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4']) answers.push(await visit(embedToken, ip));

    expect(answers.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(answers[3].status).toBe(429);
    expect(answers[3].body.error.code).toBe('rate_limited');
    expect(Number(answers[3].headers.get('retry-after'))).toBeGreaterThan(0);
    // The widget can read the refusal and its Retry-After.
    expect(answers[3].headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(answers[3].headers.get('access-control-expose-headers')).toMatch(/Retry-After/);
  });

  test('per client IP: one visitor over the limit is 429 on another token too, while another visitor goes on', async () => {
    const first = await embed();
    const second = await embed();

    const flood = [];
    for (let i = 0; i < 3; i += 1) flood.push(await visit(first.embedToken, '203.0.113.7'));
    const sameIpOtherToken = await visit(second.embedToken, '203.0.113.7');
    const otherIp = await visit(second.embedToken, '203.0.113.8');

    expect(flood.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(sameIpOtherToken.status).toBe(429);
    expect(Number(sameIpOtherToken.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(otherIp.status).toBe(200);
  });

  test('POST /chat/sessions/:id/cancel stops a streaming chatflow turn: cancelled event, partial answer kept, counted cancelled', async () => {
    let cancelled: Promise<unknown> | undefined;
    const sse = await readSse(`${t.api}/flows/${flowId}/chat/stream`, {
      method: 'POST',
      token: owner.accessToken,
      body: { message: 'Talk slowly' },
      onMessage: (message) => {
        if (message.event === 'text_chunk' && !cancelled)
          cancelled = request('POST', `${t.api}/chat/sessions/${message.data.sessionId}/cancel`, { token: owner.accessToken });
      },
    });

    expect(((await cancelled) as { status: number }).status).toBe(202);
    const last = sse.messages.at(-1)!;
    expect(last.event).toBe('cancelled');
    const history = await request('GET', `${t.api}/chat/sessions/${last.data.sessionId}/history`, { token: owner.accessToken });
    expect(history.body.messages.at(-1)).toMatchObject({ role: 'assistant', status: 'cancelled' });
    const metrics = (await request('GET', `${t.url}/metrics`)).body as string;
    expect(metrics).toMatch(/switchboard_flow_executions_total\{type="chatflow",status="cancelled"\} 1/);
  });
});

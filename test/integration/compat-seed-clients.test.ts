import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { runSeedClient, startSeedClient } from '../support/seed-clients/run';
import { connectCanvas, join, record } from '../support/sockets';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

/**
 * Clients written for other APIs (a canvas app, FlowPilot, the agent-builder, CodeLab) against a
 * real server: their paths and snake_case shapes answer through the compatibility edge, served by
 * the native routes. FlowPilot's ticket-notes reader runs as copied from its client, and a standard
 * EventSource reads the same stream.
 */
/** Where the FlowPilot console is served from: a browser calls the API from that origin. */
const CONSOLE_ORIGIN = 'http://console.flowpilot.test';

/** The notes job's model request (the chat turns' requests have another system prompt). */
const isNotesRequest = (req: ChatRequest) =>
  req.messages.some((m) => m.role === 'system' && String(m.content).includes('internal ticket notes'));

describe('compatibility edge: the seed clients', () => {
  let t: TestApp;
  let user: TestUser;
  /** While set, the notes model waits for it (to read the notes while they are written). */
  let notesHeld: Promise<void> | undefined;

  beforeAll(async () => {
    t = await startTestApp({
      env: { CORS_ORIGINS: CONSOLE_ORIGIN },
      responder: async (req) => {
        if (notesHeld && isNotesRequest(req)) await notesHeld;
        return demoResponder(req);
      },
    });
    user = await registerUser(t.api, 'Compat');
  });

  afterAll(() => t.stop());

  const call = (method: string, path: string, body?: unknown, who: TestUser = user) =>
    request(method, `${t.url}${path}`, { token: who.accessToken, body });

  /** A plain assistant conversation of one turn (the native route), its session id. */
  async function conversation(who: TestUser = user): Promise<string> {
    const turn = await request('POST', `${t.api}/chat`, {
      token: who.accessToken,
      body: { message: 'My VPN disconnects every ten minutes.', tools: 'none' },
    });
    expect(turn.status).toBe(200);
    return turn.body.sessionId as string;
  }

  describe('canvas app: POST /api/v1/canvas/{id}/ai/generate-stream', () => {
    test('given a prompt, the stream ends with complete {data: blocks}, each block and the event carrying generation_session_id', async () => {
      const canvasId = await createCanvas(t.api, user, `Compat ${randomUUID().slice(0, 6)}`);
      const room = await connectCanvas(t.url, user.accessToken);
      expect((await join(room, canvasId)).ok).toBe(true);
      const chunks = record(room, 'blocks_bulk_added_chunk');

      // The seed's call: POST the prompt, read the SSE until `complete`, keep `data` (the new blocks).
      const sse = await readSse(`${t.url}/api/v1/canvas/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'A heading and two todos for the launch' },
        until: (message) => message.event === 'complete' || message.event === 'error',
      });

      expect(sse.status).toBe(200);
      const generationId = sse.headers.get('x-generation-id');
      expect(generationId).toEqual(expect.any(String));
      expect(sse.messages[0].event).toBe('status');
      const complete = sse.messages.at(-1)!;
      expect(complete.event).toBe('complete');
      expect(complete.data.generation_session_id).toBe(generationId);
      expect(complete.data.data.length).toBeGreaterThan(0);
      expect(complete.data.data.map((block: { id: string }) => block.id)).toEqual(
        complete.data.blocks.map((block: { id: string }) => block.id),
      );
      for (const block of complete.data.data) expect(block).toMatchObject({ canvasId, generation_session_id: generationId });
      // The blocks are the canvas's own, as the native list shows them.
      const listed = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken });
      expect(listed.body.blocks.map((block: { id: string }) => block.id)).toEqual(
        complete.data.data.map((block: { id: string }) => block.id),
      );
      // The room's broadcast names the generation under the canvas app's name too.
      await eventually(
        async () => chunks.flatMap((chunk) => chunk.blocks).length,
        (count) => count === complete.data.data.length,
      );
      for (const chunk of chunks) expect(chunk).toMatchObject({ generationId, generation_session_id: generationId });
      room.disconnect();
    });

    test('the native stream is unchanged: its complete event has no data or generation_session_id', async () => {
      const canvasId = await createCanvas(t.api, user, `Native ${randomUUID().slice(0, 6)}`);
      const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'A heading' },
        until: (message) => message.event === 'complete' || message.event === 'error',
      });
      const complete = sse.messages.at(-1)!;
      expect(complete.event).toBe('complete');
      expect(complete.data).not.toHaveProperty('data');
      expect(complete.data).not.toHaveProperty('generation_session_id');
    });
  });

  describe('FlowPilot: /api/ai-sessions/{id}/…', () => {
    test('given a conversation, resolve {resolution_summary} answers in snake_case at once and documentation reads in snake_case', async () => {
      const sessionId = await conversation();

      const resolved = await call('POST', `/api/ai-sessions/${sessionId}/resolve`, { resolution_summary: 'Replaced the VPN profile.' });

      expect(resolved.status).toBe(200);
      expect(resolved.body).toEqual({
        session_id: sessionId,
        status: 'resolved',
        documentation: null,
        psa_push_status: 'no_psa',
        psa_push_error: null,
        member_mapping_warning: null,
      });
      const doc = await eventually(
        () => call('GET', `/api/ai-sessions/${sessionId}/documentation`),
        (read) => read.body.documentation_status === 'ready',
      );
      expect(doc.status).toBe(200);
      expect(doc.body).toMatchObject({ session_id: sessionId, status: 'resolved', resolution_summary: 'Replaced the VPN profile.' });
      expect(doc.body.problem_summary).toEqual(expect.any(String));
      expect(doc.body.diagnostic_steps).toEqual(expect.arrayContaining([{ description: expect.any(String) }]));
      expect(Object.keys(doc.body).every((key) => !/[A-Z]/.test(key))).toBe(true);
    });

    test('escalate {escalation_reason} answers SessionCloseResponse and keeps the reason; pause sets the status', async () => {
      const sessionId = await conversation();

      const escalated = await call('POST', `/api/ai-sessions/${sessionId}/escalate`, { escalation_reason: 'Needs the network team' });
      expect(escalated.status).toBe(200);
      expect(escalated.body).toEqual({
        session_id: sessionId,
        status: 'escalated',
        documentation: null,
        psa_push_status: 'no_psa',
        psa_push_error: null,
        member_mapping_warning: null,
      });
      const native = await request('GET', `${t.api}/chat/sessions/${sessionId}`, { token: user.accessToken });
      expect(native.body.session).toMatchObject({ status: 'escalated', escalationReason: 'Needs the network team' });

      const paused = await call('POST', `/api/ai-sessions/${sessionId}/pause`);
      expect(paused.status).toBe(200);
      expect(paused.body).toEqual({ session_id: sessionId, status: 'paused' });
    });

    test("given resolved notes, the console's own reader and a standard EventSource both show them with their line breaks", async () => {
      const sessionId = await conversation();
      expect((await call('POST', `/api/ai-sessions/${sessionId}/resolve`, {})).status).toBe(200);

      // Read while the notes are written (live), then again once stored.
      const live = await runSeedClient<{ chunks: string[]; done: boolean; error: string | null }>('flowpilot-notes-reader.mjs', {
        VITE_API_URL: t.url,
        ACCESS_TOKEN: user.accessToken,
        SESSION_ID: sessionId,
      });
      const stored = await call('GET', `/api/ai-sessions/${sessionId}/documentation`);
      const notes = stored.body.documentation as string;
      expect(notes).toContain('## Problem Summary');
      expect(live).toMatchObject({ done: true, error: null });
      const summary = live.chunks.join('');
      expect(summary).not.toContain('{"type"');
      // `\r` is a CommonMark line ending: the markdown the console renders has the notes' lines.
      expect(summary.split(/\r\n|\r|\n/)).toEqual(notes.split('\n'));

      const again = await runSeedClient<{ chunks: string[]; done: boolean }>('flowpilot-notes-reader.mjs', {
        VITE_API_URL: t.url,
        ACCESS_TOKEN: user.accessToken,
        SESSION_ID: sessionId,
      });
      expect(again.chunks.join('').split(/\r\n|\r|\n/)).toEqual(notes.split('\n'));

      const eventSource = await runSeedClient<{ text: string; end: string }>(
        'eventsource-notes-reader.mjs',
        { URL: `${t.url}/api/ai-sessions/${sessionId}/documentation/stream`, ACCESS_TOKEN: user.accessToken },
        ['--experimental-eventsource'],
      );
      expect(eventSource).toMatchObject({ end: '[DONE]', text: notes });
    });

    test("while the notes are being written, the console's reader gets each chunk live, with its line breaks", async () => {
      const sessionId = await conversation();
      let release!: () => void;
      notesHeld = new Promise<void>((resolve) => (release = resolve));
      try {
        expect((await call('POST', `/api/ai-sessions/${sessionId}/resolve`, {})).status).toBe(200);
        const reader = startSeedClient<{ chunks: string[]; done: boolean; error: string | null }>(
          'flowpilot-notes-reader.mjs',
          { VITE_API_URL: t.url, ACCESS_TOKEN: user.accessToken, SESSION_ID: sessionId },
          'response started',
        );
        await reader.reached;
        release();
        const live = await reader.result;

        expect(live).toMatchObject({ done: true, error: null });
        const stored = await call('GET', `/api/ai-sessions/${sessionId}/documentation`);
        expect(live.chunks.join('').split(/\r\n|\r|\n/)).toEqual((stored.body.documentation as string).split('\n'));
      } finally {
        notesHeld = undefined;
        release();
      }
    });

    test("a browser on the console's origin may call these paths: the preflight is 204, the answer carries CORS headers", async () => {
      const sessionId = await conversation();
      const preflight = await fetch(`${t.url}/api/ai-sessions/${sessionId}/resolve`, {
        method: 'OPTIONS',
        headers: {
          origin: CONSOLE_ORIGIN,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(CONSOLE_ORIGIN);
      expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization/);

      const answer = await request('POST', `${t.url}/api/ai-sessions/${sessionId}/pause`, {
        token: user.accessToken,
        headers: { origin: CONSOLE_ORIGIN },
      });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('access-control-allow-origin')).toBe(CONSOLE_ORIGIN);
      const elsewhere = await request('POST', `${t.url}/api/ai-sessions/${sessionId}/pause`, {
        token: user.accessToken,
        headers: { origin: 'http://evil.test' },
      });
      expect(elsewhere.headers.get('access-control-allow-origin')).toBeNull();
    });

    test("another user's session is 404 on every FlowPilot path, and the reader reports it", async () => {
      const sessionId = await conversation();
      const stranger = await registerUser(t.api, 'Stranger');
      for (const [method, path] of [
        ['POST', 'resolve'],
        ['POST', 'escalate'],
        ['POST', 'pause'],
        ['GET', 'documentation'],
        ['GET', 'documentation/stream'],
      ]) {
        const res = await call(method, `/api/ai-sessions/${sessionId}/${path}`, method === 'POST' ? {} : undefined, stranger);
        expect({ path, status: res.status, code: res.body.error?.code }).toEqual({ path, status: 404, code: 'not_found' });
      }
      const read = await runSeedClient<{ error: string }>('flowpilot-notes-reader.mjs', {
        VITE_API_URL: t.url,
        ACCESS_TOKEN: stranger.accessToken,
        SESSION_ID: sessionId,
      });
      expect(read.error).toBe('HTTP 404');
    });
  });

  describe('agent-builder: /api/agent-builder/…', () => {
    test('chatflow chat (the documented curl body) answers {session_id, response, usage}; history and delete follow the session', async () => {
      const chat = await call('POST', '/api/agent-builder/chatflow/chat', {
        message: 'Hello!',
        config: { provider: 'scripted', model: 'scripted-model' },
      });
      expect(chat.status).toBe(200);
      expect(chat.body).toEqual({ session_id: expect.any(String), response: expect.any(String), usage: expect.any(Object) });

      const next = await call('POST', '/api/agent-builder/chatflow/chat', { message: 'And again', session_id: chat.body.session_id });
      expect(next.body.session_id).toBe(chat.body.session_id);

      const history = await call('GET', `/api/agent-builder/chatflow/sessions/${chat.body.session_id}/history`);
      expect(history.status).toBe(200);
      expect(history.body.session.id).toBe(chat.body.session_id);
      expect(history.body.messages.filter((m: { role: string }) => m.role === 'user').map((m: { content: string }) => m.content)).toEqual([
        'Hello!',
        'And again',
      ]);
      expect(history.body).toHaveProperty('next_cursor');

      expect((await call('DELETE', `/api/agent-builder/chatflow/sessions/${chat.body.session_id}`)).status).toBe(204);
      expect((await call('GET', `/api/agent-builder/chatflow/sessions/${chat.body.session_id}/history`)).status).toBe(404);
    });

    test('chatflow chat/stream sends text chunks and a final event with snake_case keys', async () => {
      const sse = await readSse(`${t.url}/api/agent-builder/chatflow/chat/stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { message: 'Stream it' },
        until: (message) => message.event === 'final' || message.event === 'error',
      });
      expect(sse.status).toBe(200);
      const final = sse.messages.at(-1)!;
      expect(final.event).toBe('final');
      expect(final.data).toMatchObject({ session_id: sse.headers.get('x-chat-session-id'), response: expect.any(String) });
      expect(sse.messages.filter((m) => m.event === 'text_chunk').every((m) => typeof m.data.session_id === 'string')).toBe(true);
    });

    test('workflows: list, execute and the agentflow executions; a chatflow chats by workflow id', async () => {
      const agentflow = await request('POST', `${t.api}/flows`, {
        token: user.accessToken,
        body: {
          type: 'agentflow',
          name: `Summarise ${randomUUID().slice(0, 6)}`,
          definition: { nodes: [{ id: 'a', prompt: 'Summarise {{input.text}}' }], output: 'a' },
        },
      });
      expect(agentflow.status).toBe(201);
      const flowId = agentflow.body.flow.id as string;

      const list = await call('GET', '/api/agent-builder/workflows');
      expect(list.status).toBe(200);
      expect(list.body.flows.map((flow: { id: string }) => flow.id)).toContain(flowId);
      expect(list.body).toHaveProperty('next_cursor');

      const started = await call('POST', `/api/agent-builder/workflows/${flowId}/execute`, { input: { text: 'the report' } });
      expect(started.status).toBe(202);
      expect(started.body.execution_id).toEqual(expect.any(String));

      const again = await call('POST', `/api/agent-builder/agentflows/${flowId}/execute`, { input: { text: 'again' } });
      expect(again.status).toBe(202);
      const done = await eventually(
        () => call('GET', `/api/agent-builder/agentflows/${flowId}/executions/${again.body.execution_id}`),
        (read) => read.body.execution.status === 'completed',
      );
      expect(done.body.execution).toMatchObject({ id: again.body.execution_id, flow_id: flowId });
      // The execution's input is the user's data: its keys are kept as sent.
      expect(done.body.execution.input).toEqual({ text: 'again' });
      const executions = await call('GET', `/api/agent-builder/agentflows/${flowId}/executions`);
      expect(executions.body.executions.map((e: { id: string }) => e.id)).toEqual(
        expect.arrayContaining([started.body.execution_id, again.body.execution_id]),
      );

      const streamed = await readSse(`${t.url}/api/agent-builder/agentflows/${flowId}/execute/stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { input: { text: 'streamed' } },
        until: (message) => message.event === 'execution_completed' || message.event === 'execution_failed',
      });
      expect(streamed.messages.at(-1)!.event).toBe('execution_completed');
      expect(streamed.messages.some((m) => m.event === 'node_completed' && m.data.node_id === 'a')).toBe(true);

      const chatflow = await request('POST', `${t.api}/flows`, {
        token: user.accessToken,
        body: { type: 'chatflow', name: 'Helper', definition: { systemPrompt: 'You help.' } },
      });
      const chatId = chatflow.body.flow.id as string;
      const chat = await call('POST', `/api/agent-builder/chatflow/workflows/${chatId}/chat`, { message: 'Hi flow' });
      expect(chat.status).toBe(200);
      expect(chat.body).toMatchObject({ session_id: expect.any(String), response: expect.any(String) });
      // The older flow paths reach the same routes.
      const older = await call('POST', `/api/agent-builder/flows/chatflows/${chatId}/chat`, {
        message: 'Older path',
        session_id: chat.body.session_id,
      });
      expect(older.body.session_id).toBe(chat.body.session_id);
      const olderHistory = await call('GET', `/api/agent-builder/ai-agent-chat/sessions/${chat.body.session_id}/history`);
      expect(olderHistory.body.messages.filter((m: { role: string }) => m.role === 'user')).toHaveLength(2);
      const olderExecute = await call('POST', `/api/agent-builder/flows/agentflows/${flowId}/execute`, { input: { text: 'older' } });
      expect(olderExecute.status).toBe(202);
      const chatStream = await readSse(`${t.url}/api/agent-builder/chatflow/workflows/${chatId}/chat/stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { message: 'Hi again', session_id: chat.body.session_id },
        until: (message) => message.event === 'final' || message.event === 'error',
      });
      expect(chatStream.messages.at(-1)!.data).toMatchObject({ session_id: chat.body.session_id });
    });

    test('metrics: no prometheus text on this public path without METRICS_TOKEN, a summary of your own usage, json for admins only', async () => {
      // This app sets no METRICS_TOKEN: the bare /metrics stays behind the edge proxy, this path does not.
      const prometheus = await fetch(`${t.url}/api/agent-builder/metrics/prometheus`);
      expect(prometheus.status).toBe(404);
      expect(await prometheus.text()).not.toContain('switchboard_');

      const summary = await call('GET', '/api/agent-builder/metrics/summary');
      expect(summary.status).toBe(200);
      expect(summary.body).toMatchObject({ scope: 'user', usage: { by_model: expect.any(Array), last24h: expect.anything() } });

      const json = await call('GET', '/api/agent-builder/metrics/json');
      expect(json.status).toBe(403);
    });
  });

  describe('CodeLab: /api/v1/sessions and /api/v1/agent/chat', () => {
    test('create a session, chat in it with {session_id, message, context}, read it and its history, delete it', async () => {
      const created = await call('POST', '/api/v1/sessions');
      expect(created.status).toBe(201);
      const sessionId = created.body.session.id as string;
      expect(created.body.session).toMatchObject({ status: 'active', device_id: null });

      const chat = await call('POST', '/api/v1/agent/chat', {
        session_id: sessionId,
        message: 'Explain this function',
        context: { open_file: 'src/app.ts', cursorLine: 12 },
      });
      expect(chat.status).toBe(200);
      expect(chat.body).toMatchObject({ session_id: sessionId, response: expect.any(String) });

      const session = await call('GET', `/api/v1/sessions/${sessionId}`);
      expect(session.status).toBe(200);
      // The app's context is its own data: kept with the keys it was sent with.
      expect(session.body.session).toMatchObject({ id: sessionId, context: { open_file: 'src/app.ts', cursorLine: 12 } });

      const history = await call('GET', `/api/v1/sessions/${sessionId}/history`);
      expect(history.status).toBe(200);
      expect(history.body.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);
      expect(history.body.messages[1]).toHaveProperty('created_at');

      expect((await call('DELETE', `/api/v1/sessions/${sessionId}`)).status).toBe(204);
      expect((await call('GET', `/api/v1/sessions/${sessionId}`)).status).toBe(404);
    });

    test('the native API beside it is unchanged: /api/v1/chat/sessions still answers camelCase', async () => {
      const sessionId = await conversation();
      const native = await request('GET', `${t.api}/chat/sessions/${sessionId}`, { token: user.accessToken });
      expect(native.body.session).toHaveProperty('createdAt');
      expect(native.body.session).not.toHaveProperty('created_at');
    });
  });
});

import { Client } from 'pg';
import type { ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { useCluster } from '../support/cluster';
import { createCanvas, registerUser, request } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { connectCanvas, join, record } from '../support/sockets';
import { readSse, type SseMessage } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';

const longTurn: ChatTurn = { toolCalls: Array.from({ length: 40 }, (_, i) => ({ name: 'create_text', args: { text: `paragraph ${i}` } })) };
const ended = (m: SseMessage) => ['complete', 'error', 'cancelled'].includes(m.event ?? '');

/**
 * Cancellation across processes: two API nodes and a worker process, as `npm start` runs them. The
 * generation is requested on node A, its model is streamed by the worker process, and the cancel
 * arrives on node B; the signal goes through Redis.
 */
describe('cancel across API nodes and a worker process', () => {
  let llm: ScriptedLLM;
  const cluster = useCluster('cancel');

  beforeAll(async () => {
    llm = await startScriptedLLM(() => longTurn, { delayMs: 40 });
  }, 120_000);

  afterAll(async () => {
    await llm.close();
  });

  const modelEnv = () => ({ OPENAI_BASE_URL: llm.baseURL, OPENAI_API_KEY: 'test', LLM_MODEL: 'scripted-model' });
  /** Node A, node B and a worker process, started once for the tests that share them. */
  let started: Promise<{ apiA: string; apiB: string; urlB: string }> | undefined;
  const nodes = () =>
    (started ??= (async () => {
      const [nodeA, nodeB] = await Promise.all([
        cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
        cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      ]);
      await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv() });
      return { apiA: `${nodeA.url}/api/v1`, apiB: `${nodeB.url}/api/v1`, urlB: nodeB.url! };
    })());

  test('cancelled on node B while the worker streams for node A: the model request closes, both nodes’ clients see `cancelled`, nothing is stored', async () => {
    const { apiA, apiB, urlB } = await nodes();
    const user = await registerUser(apiA, 'Canceller');
    const canvasId = await createCanvas(apiA, user);
    const socketB = await connectCanvas(urlB, user.accessToken);
    try {
      expect((await join(socketB, canvasId)).ok).toBe(true);
      const statuses = record(socketB, 'generation_status');
      let cancelled: Promise<{ status: number; body: unknown }> | undefined;
      const sse = await readSse(`${apiA}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'Forty paragraphs about the launch' },
        onMessage: (m) => {
          if (m.event === 'tool_output' && !cancelled)
            cancelled = request('POST', `${apiB}/canvases/${canvasId}/ai/generations/${m.data.generationId}/cancel`, {
              token: user.accessToken,
            });
        },
        until: ended,
        timeoutMs: 30_000,
      });
      const generationId = sse.headers.get('x-generation-id')!;
      expect(await cancelled).toEqual(expect.objectContaining({ status: 202, body: { generationId, status: 'cancelling' } }));
      expect(sse.messages.at(-1)).toEqual(expect.objectContaining({ event: 'cancelled', data: { type: 'cancelled', generationId } }));
      // Fewer blocks streamed than the model had to give: it was stopped, not finished.
      expect(sse.messages.filter((m) => m.event === 'tool_output').length).toBeLessThan(40);
      await waitUntil(() => llm.requests.some((r) => r.kind === 'chat' && r.closedEarlyAt !== undefined), 10_000);
      await waitUntil(() => statuses.some((s) => s.generationId === generationId && s.stage === 'cancelled'));

      // Node B replays the stop to a stream resumed there.
      const resumed = await readSse(`${apiB}/canvases/${canvasId}/ai/generations/${generationId}/events`, {
        token: user.accessToken,
        headers: { 'Last-Event-ID': '1' },
      });
      expect(resumed.messages.at(-1)!.event).toBe('cancelled');
      const view = await request('GET', `${apiB}/canvases/${canvasId}/ai/generations/${generationId}`, { token: user.accessToken });
      expect(view.body.generation.status).toBe('cancelled');
      expect((await request('GET', `${apiB}/canvases/${canvasId}/blocks`, { token: user.accessToken })).body.blocks).toEqual([]);
      expect(
        (await request('POST', `${apiA}/canvases/${canvasId}/ai/generations/${generationId}/cancel`, { token: user.accessToken })).status,
      ).toBe(409);
    } finally {
      socketB.close();
    }
  }, 90_000);

  test('a chat turn streamed by the worker for node A, cancelled on node B: the stream ends `cancelled` with the partial answer', async () => {
    const { apiA, apiB } = await nodes();
    const user = await registerUser(apiA, 'ChatCanceller');
    llm.push({ text: Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ') });
    const closedBefore = llm.requests.filter((r) => r.kind === 'chat' && r.closedEarlyAt !== undefined).length;
    let cancelled: Promise<{ status: number; body: unknown }> | undefined;
    let chunks = 0;
    const sse = await readSse(`${apiA}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Tell me a long story', tools: 'none' },
      onMessage: (m) => {
        if (m.event === 'text_chunk' && ++chunks === 2)
          cancelled = request('POST', `${apiB}/chat/sessions/${m.data.sessionId}/cancel`, { token: user.accessToken });
      },
      until: (m) => ['final', 'error', 'cancelled'].includes(m.event ?? ''),
      timeoutMs: 30_000,
    });
    const sessionId = sse.headers.get('x-chat-session-id')!;
    expect(await cancelled).toEqual(expect.objectContaining({ status: 202, body: { sessionId, status: 'cancelling' } }));
    const streamed = sse.messages
      .filter((m) => m.event === 'text_chunk')
      .map((m) => m.data.text)
      .join('');
    expect(sse.messages.at(-1)).toEqual(
      expect.objectContaining({ event: 'cancelled', data: expect.objectContaining({ sessionId, response: streamed }) }),
    );
    await waitUntil(() => llm.requests.filter((r) => r.kind === 'chat' && r.closedEarlyAt !== undefined).length > closedBefore, 10_000);
    const history = await request('GET', `${apiB}/chat/sessions/${sessionId}/history`, { token: user.accessToken });
    expect(history.body.messages.at(-1)).toEqual(expect.objectContaining({ role: 'assistant', status: 'cancelled', content: streamed }));
  }, 90_000);

  test('a generation still queued never starts: with no worker the API ends it; a worker that picks up a cancelled job ends it without calling the model', async () => {
    // This cluster's own prefix: only the api node runs at first, so jobs wait in the queue.
    const api = await cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', REDIS_KEY_PREFIX: `${cluster.keyPrefix}-queued` });
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Queued');
    const canvasId = await createCanvas(base, user);

    // 1. Waiting in the queue: the API takes the job off it and ends the generation itself.
    let generationId = '';
    const sse = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'Never runs' },
      onMessage: (m) => {
        if (m.event === 'status' && m.data.stage === 'queued') {
          generationId = m.data.generationId;
          void request('POST', `${base}/canvases/${canvasId}/ai/generations/${generationId}/cancel`, { token: user.accessToken });
        }
      },
      until: ended,
    });
    expect(sse.messages.map((m) => m.event)).toEqual(['status', 'cancelled']);
    expect(
      (await request('GET', `${base}/canvases/${canvasId}/ai/generations/${generationId}`, { token: user.accessToken })).body.generation
        .status,
    ).toBe('cancelled');

    // 2. A chat turn still queued: the API takes it off the queue; its stream ends `cancelled`.
    const chat = readSse(`${base}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Never answered', tools: 'none' },
      until: (m) => m.event === 'cancelled',
    });
    const sessions = await eventually(
      () => request('GET', `${base}/chat/sessions`, { token: user.accessToken }),
      (r) => r.body.sessions.length === 1,
    );
    const chatCancel = await request('POST', `${base}/chat/sessions/${sessions.body.sessions[0].id}/cancel`, { token: user.accessToken });
    expect(chatCancel.status).toBe(202);
    expect((await chat).messages.map((m) => m.event)).toEqual(['cancelled']);

    // 3. The cancel reached the row but the job stayed queued (as when a worker grabbed it in the
    // same instant): the worker reads the row before starting and ends the job cleanly.
    const second = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'Also never runs' },
      until: (m) => m.event === 'status',
    });
    const secondId = second.headers.get('x-generation-id')!;
    const db = new Client({ connectionString: cluster.databaseUrl() });
    await db.connect();
    try {
      await db.query("update runs set cancel_requested_at = now() where kind = 'generation' and id = $1", [secondId]);
    } finally {
      await db.end();
    }
    const requestsBefore = llm.chatRequests().length;
    await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', REDIS_KEY_PREFIX: `${cluster.keyPrefix}-queued`, ...modelEnv() });
    const view = await eventually(
      () => request('GET', `${base}/canvases/${canvasId}/ai/generations/${secondId}`, { token: user.accessToken }),
      (r) => r.body.generation.status !== 'queued',
      20_000,
    );
    expect(view.body.generation.status).toBe('cancelled');
    const replay = await readSse(`${base}/canvases/${canvasId}/ai/generations/${secondId}/events`, { token: user.accessToken });
    expect(replay.messages.map((m) => m.event)).toEqual(['status', 'cancelled']);
    expect(llm.chatRequests().length).toBe(requestsBefore);
  }, 90_000);
});

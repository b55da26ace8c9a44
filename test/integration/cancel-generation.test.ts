import { sql } from 'drizzle-orm';
import type { ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { rowsOf } from '../../src/models/migrate';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, record } from '../support/sockets';
import { readSse, type SseMessage } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';

/** A long turn: 40 text blocks, each a streamed tool call paced by the scripted model's delay. */
const longTurn: ChatTurn = { toolCalls: Array.from({ length: 40 }, (_, i) => ({ name: 'create_text', args: { text: `paragraph ${i}` } })) };
const ended = (m: SseMessage) => ['complete', 'error', 'cancelled'].includes(m.event ?? '');

/**
 * Cancelling generations, in one process (every role): who may cancel, what a cancel leaves behind
 * (nothing stored, usage recorded, slot freed), and that the stop survives a resumed stream. The
 * cross-process case is in cancel-cluster.test.ts.
 */
describe('cancelling a generation', () => {
  let t: TestApp;
  let owner: TestUser;
  let editor: TestUser;
  let viewer: TestUser;
  let stranger: TestUser;
  let canvasId: string;

  beforeAll(async () => {
    t = await startTestApp({ llmDelayMs: 40, responder: () => longTurn });
    [owner, editor, viewer, stranger] = await Promise.all(
      ['Owner', 'Editor', 'Viewer', 'Stranger'].map((name) => registerUser(t.api, name)),
    );
    canvasId = await createCanvas(t.api, owner);
    await addMember(t.api, owner, canvasId, editor, 'editor');
    await addMember(t.api, owner, canvasId, viewer, 'viewer');
  }, 120_000);

  afterAll(async () => {
    await t.stop();
  });

  const cancel = (user: TestUser, generationId: string) =>
    request('POST', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}/cancel`, { token: user.accessToken });

  /** Starts a generation as `user` and cancels it as `canceller` once its first block streamed. */
  async function generateAndCancel(user: TestUser, canceller: TestUser = user) {
    let answer: Promise<Awaited<ReturnType<typeof cancel>>> | undefined;
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'Write forty paragraphs about the launch' },
      onMessage: (m) => {
        if (m.event === 'tool_output' && !answer) answer = cancel(canceller, m.data.generationId);
      },
      until: ended,
    });
    return { sse, cancelAnswer: await answer!, generationId: sse.headers.get('x-generation-id')! };
  }

  test('the requester stops it mid-stream: the model request closes, the stream ends `cancelled`, nothing is stored, usage is recorded and the slot is free', async () => {
    const socket = await connectCanvas(t.url, owner.accessToken);
    try {
      expect((await join(socket, canvasId)).ok).toBe(true);
      const statuses = record(socket, 'generation_status');
      const requestsBefore = t.llm.chatRequests().length;

      const { sse, cancelAnswer, generationId } = await generateAndCancel(owner);

      expect(cancelAnswer.status).toBe(202);
      expect(cancelAnswer.body).toEqual({ generationId, status: 'cancelling' });
      const last = sse.messages.at(-1)!;
      expect(last.event).toBe('cancelled');
      expect(last.data).toEqual({ type: 'cancelled', generationId });
      expect(sse.messages.some((m) => m.event === 'complete')).toBe(false);
      // The model server saw its client go away before the answer ended.
      await waitUntil(() => t.llm.requests.slice(requestsBefore).some((r) => r.kind === 'chat' && r.closedEarlyAt !== undefined));
      await waitUntil(() => statuses.some((s) => s.generationId === generationId && s.stage === 'cancelled'));

      const view = await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: owner.accessToken });
      expect(view.body.generation).toEqual(expect.objectContaining({ status: 'cancelled', blockCount: 0 }));
      expect(view.body.generation.usage.inputTokens).toBeGreaterThan(0);
      expect(view.body.generation.usage.outputTokens).toBeGreaterThan(0);
      const blocks = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: owner.accessToken });
      expect(blocks.body.blocks.filter((b: { generationSessionId: string }) => b.generationSessionId === generationId)).toEqual([]);
      // The scripted model reports usage only at the end of a stream, so what was recorded is an estimate.
      const usage = rowsOf(
        await t.app.repos.db.execute(
          sql`select input_tokens, output_tokens, estimated from llm_usage where generation_id = ${generationId}`,
        ),
      );
      expect(usage).toEqual([expect.objectContaining({ estimated: true })]);

      // A free user has one concurrent generation: the slot is free again, so a new one starts.
      const next = await generateAndCancel(owner);
      expect(next.sse.status).toBe(200);
      expect(next.cancelAnswer.status).toBe(202);
    } finally {
      socket.close();
    }
  }, 60_000);

  test('an editor may stop anyone’s generation; a viewer who did not start it gets 403, a stranger and an unknown id 404; once ended it is 409 not_running', async () => {
    const { sse, cancelAnswer, generationId } = await generateAndCancel(owner, editor);
    expect(cancelAnswer.status).toBe(202);
    expect(sse.messages.at(-1)!.event).toBe('cancelled');

    // The owner's audit shows who stopped it.
    const audit = await request('GET', `${t.api}/canvases/${canvasId}/audit`, { token: owner.accessToken });
    const rows = audit.body.audit.filter((row: { targetId: string }) => row.targetId === generationId);
    expect(rows.map((row: { action: string }) => row.action).sort()).toEqual(['ai.generation.cancel_requested', 'ai.generation.cancelled']);
    expect(rows.find((row: { action: string }) => row.action === 'ai.generation.cancel_requested').actorId).toBe(editor.id);
    expect((await cancel(viewer, generationId)).status).toBe(403);
    expect((await cancel(stranger, generationId)).body.error.code).toBe('not_found');
    expect((await cancel(owner, '00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await cancel(owner, 'not-a-uuid')).status).toBe(404);
    const again = await cancel(owner, generationId);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('not_running');
  }, 60_000);

  test('a completed generation cannot be cancelled (409), and stays completed', async () => {
    t.llm.push({ toolCalls: [{ name: 'create_heading', args: { text: 'Done', level: 1 } }] }, { text: 'ok' });
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: editor.accessToken,
      body: { prompt: 'One heading' },
      until: ended,
    });
    const generationId = sse.headers.get('x-generation-id')!;
    expect(sse.messages.at(-1)!.event).toBe('complete');
    const answer = await cancel(editor, generationId);
    expect(answer.status).toBe(409);
    expect(answer.body.error.code).toBe('not_running');
    const view = await eventually(
      () => request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: editor.accessToken }),
      (r) => r.status === 200,
    );
    expect(view.body.generation.status).toBe('completed');
  }, 30_000);

  test('a stream resumed after the stop (Last-Event-ID) replays `cancelled` and closes', async () => {
    const { sse, generationId } = await generateAndCancel(editor);
    const firstBlock = sse.messages.find((m) => m.event === 'tool_output')!;
    const resumed = await readSse(`${t.api}/canvases/${canvasId}/ai/generations/${generationId}/events`, {
      token: viewer.accessToken,
      headers: { 'Last-Event-ID': firstBlock.id! },
      timeoutMs: 10_000,
    });
    expect(resumed.messages.at(-1)!.event).toBe('cancelled');
    expect(resumed.messages.map((m) => m.id)).toEqual(sse.messages.filter((m) => Number(m.id) > Number(firstBlock.id)).map((m) => m.id));
  }, 60_000);
});

import { Queue } from 'bullmq';
import { AI_AGENT_USER_ID } from '../../config';
import { createRedis } from '../../src/lib/redis';
import { broadcastJobId } from '../../src/producers/broadcast';
import { bullPrefix } from '../../src/producers/registry';
import { testRedisTarget } from '../support/database';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, record, waitFor, type CanvasClient } from '../support/sockets';
import { readSse } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';

const PROMPT = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';
const launchTurn = {
  toolCalls: [
    { name: 'create_heading', args: { text: 'Launch plan', level: 1 } },
    { name: 'create_todo', args: { text: 'book venue', checked: false } },
    { name: 'create_heading', args: { text: 'Bad level', level: 7 } },
    { name: 'create_todo', args: { text: 'invite press', checked: false } },
    { name: 'create_todo', args: { text: 'ship beta', checked: false } },
    { name: 'create_text', args: { text: 'We launch in May.' } },
  ],
};

describe('canvas AI generation, end to end', () => {
  let t: TestApp;
  let owner: TestUser;
  let editor: TestUser;
  let outsider: TestUser;
  let canvasId: string;
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { TIER_LIMITS: JSON.stringify({ free: { generationsPerMinute: 100, concurrentGenerations: 5 } }) } });
    [owner, editor, outsider] = await Promise.all([
      registerUser(t.api, 'Owner'),
      registerUser(t.api, 'Editor'),
      registerUser(t.api, 'Outsider'),
    ]);
    canvasId = await createCanvas(t.api, owner);
    await addMember(t.api, owner, canvasId, editor, 'editor');
  });

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await t.stop();
  });

  const connect = async (user: TestUser) => {
    const socket = await connectCanvas(t.url, user.accessToken);
    sockets.push(socket);
    return socket;
  };

  const generate = (user: TestUser, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body,
      headers,
      until: (m) => m.event === 'complete' || m.event === 'error',
    });

  test('given two members in the room and an outsider, a generation streams, persists atomically and reaches only the members', async () => {
    const [ownerSocket, editorSocket, outsiderSocket] = await Promise.all([connect(owner), connect(editor), connect(outsider)]);
    expect((await join(ownerSocket, canvasId)).ok).toBe(true);
    expect((await join(editorSocket, canvasId)).ok).toBe(true);
    expect(await join(outsiderSocket, canvasId)).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
    const ownerChunks = record(ownerSocket, 'blocks_bulk_added_chunk');
    const editorChunks = record(editorSocket, 'blocks_bulk_added_chunk');
    const outsiderChunks = record(outsiderSocket, 'blocks_bulk_added_chunk');
    t.llm.push(launchTurn, { text: 'Created the plan.' });

    const sse = await generate(editor, { prompt: PROMPT });

    expect(sse.status).toBe(200);
    const events = sse.messages.map((m) => m.event);
    expect(events[0]).toBe('status');
    expect(events.at(-1)).toBe('complete');
    for (const message of sse.messages) expect(message.data.type).toBe(message.event);
    const ids = sse.messages.map((m) => Number(m.id));
    expect(ids).toEqual(ids.map((_, i) => i + 1));
    const stages = sse.messages.filter((m) => m.event === 'status').map((m) => m.data.stage);
    expect(stages).toEqual(['queued', 'thinking', 'tool', 'persisting', 'broadcasting']);
    const outputs = sse.messages.filter((m) => m.event === 'tool_output');
    expect(outputs.map((m) => m.data.index)).toEqual([0, 1, 2, 3, 4]);
    expect(outputs.map((m) => m.data.block.type)).toEqual(['heading', 'todo', 'todo', 'todo', 'text']);

    const complete = sse.messages.at(-1)!.data;
    const generationId = complete.generationId;
    expect(complete.truncated).toBe(false);
    expect(complete.blocks).toHaveLength(5);
    for (const block of complete.blocks) {
      expect(block).toMatchObject({ canvasId, generationSessionId: generationId, createdBy: AI_AGENT_USER_ID });
    }
    const ranks = complete.blocks.map((b: { rank: string }) => b.rank);
    expect([...ranks].sort()).toEqual(ranks);
    expect(new Set(ranks).size).toBe(5);

    // The invalid tool call went back to the model as a tool error instead of failing the job.
    const followUp = t.llm.chatRequests()[1];
    const toolReplies = followUp.messages.filter((m) => m.role === 'tool').map((m) => String(m.content));
    expect(toolReplies).toHaveLength(6);
    expect(toolReplies[2]).toMatch(/^Error: Invalid arguments for create_heading: level/);

    const expectedIds = complete.blocks.map((b: { id: string }) => b.id);
    for (const chunks of [ownerChunks, editorChunks]) {
      await waitUntil(() => chunks.flatMap((c) => c.blocks).length === 5);
      expect(chunks.map((c) => c.chunkIndex)).toEqual([0]);
      expect(chunks[0]).toMatchObject({ canvasId, generationId, chunkCount: 1 });
      expect(chunks.flatMap((c) => c.blocks.map((b) => b.id))).toEqual(expectedIds);
    }
    expect(outsiderChunks).toHaveLength(0);

    const stored = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: owner.accessToken });
    expect(stored.body.blocks.map((b: { id: string }) => b.id)).toEqual(expectedIds);

    const status = await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: owner.accessToken });
    expect(status.body.generation).toMatchObject({ status: 'completed', blockCount: 5, truncated: false });
    expect(status.body.generation.usage.inputTokens).toBeGreaterThan(0);
    expect(status.body.generation.usage.outputTokens).toBeGreaterThan(0);
    expect(status.body.generation.usage.model).toBe('scripted-model');

    const audit = await request('GET', `${t.api}/canvases/${canvasId}/audit`, { token: owner.accessToken });
    expect(audit.body.audit).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          action: 'ai.generation.persisted',
          actorId: AI_AGENT_USER_ID,
          onBehalfOf: editor.id,
          targetType: 'generation',
          targetId: generationId,
          details: { blockCount: 5, truncated: false, model: 'scripted-model', invalidToolCalls: 1 },
        }),
      ]),
    );
    // Its usage row: the generation's tokens, counted for the user who asked.
    const usage = await request('GET', `${t.api}/usage`, { token: editor.accessToken });
    expect(usage.status).toBe(200);
    const day = usage.body.days.find((d: { model: string }) => d.model === 'scripted-model');
    expect(day.inputTokens).toBeGreaterThanOrEqual(status.body.generation.usage.inputTokens);
    expect(day.costUsd).toBeGreaterThanOrEqual(0);
    expect((await request('GET', `${t.api}/canvases/${canvasId}/audit`, { token: editor.accessToken })).status).toBe(403);

    // Progress for the dashboard: the generation job's last stage, the broadcast's chunks.
    const redis = createRedis(testRedisTarget('queues'), 'command');
    const queues = ['generation', 'broadcast'].map((name) => new Queue(name, { connection: redis, prefix: bullPrefix(t.keyPrefix) }));
    try {
      const broadcast = await eventually(
        () => queues[1].getJob(broadcastJobId(generationId)),
        (job) => job?.finishedOn !== undefined,
      );
      const generation = await eventually(
        () => queues[0].getJob(generationId),
        (job) => job?.finishedOn !== undefined,
      );
      expect(generation?.progress).toEqual({ stage: 'persisting', blocks: 5 });
      expect(broadcast?.progress).toEqual({ chunksSent: expect.any(Number), chunkCount: expect.any(Number) });
    } finally {
      await Promise.all(queues.map((queue) => queue.close()));
      redis.disconnect();
    }
  });

  test('undo deletes exactly that generation, audits, broadcasts, and a second undo is 409', async () => {
    const manual = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'mine' } },
    });
    expect(manual.status).toBe(201);
    t.llm.push({
      toolCalls: [
        { name: 'create_quote', args: { text: 'To be undone' } },
        { name: 'create_divider', args: {} },
      ],
    });
    const sse = await generate(owner, { prompt: 'a quote and a divider' });
    const { generationId, blocks } = sse.messages.at(-1)!.data;
    expect(blocks).toHaveLength(2);
    const socket = await connect(editor);
    await join(socket, canvasId);
    const undone = waitFor(socket, 'generation_undone', (p) => p.generationId === generationId);

    const res = await request('POST', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}/undo`, { token: owner.accessToken });

    expect(res.status).toBe(200);
    expect(res.body.blockIds).toEqual(blocks.map((b: { id: string }) => b.id));
    expect((await undone).blockIds).toEqual(res.body.blockIds);
    const left = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: owner.accessToken });
    const leftIds = left.body.blocks.map((b: { id: string }) => b.id);
    expect(leftIds).toContain(manual.body.block.id);
    for (const id of res.body.blockIds) expect(leftIds).not.toContain(id);
    const again = await request('POST', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}/undo`, { token: owner.accessToken });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_undone');
    const audit = await request('GET', `${t.api}/canvases/${canvasId}/audit`, { token: owner.accessToken });
    expect(
      audit.body.audit.filter(
        (row: { action: string; targetId: string }) => row.action === 'ai.generation.undone' && row.targetId === generationId,
      ),
    ).toHaveLength(1);
  });

  test('the event stream replays after Last-Event-ID and from the start', async () => {
    t.llm.push({
      toolCalls: [
        { name: 'create_text', args: { text: 'one' } },
        { name: 'create_text', args: { text: 'two' } },
      ],
    });
    const first = await generate(owner, { prompt: 'two paragraphs' });
    const generationId = first.messages[0].data.generationId;
    const url = `${t.api}/canvases/${canvasId}/ai/generations/${generationId}/events`;

    const all = await readSse(url, { token: owner.accessToken });
    const resumed = await readSse(url, { token: owner.accessToken, headers: { 'Last-Event-ID': '4' } });

    expect(all.messages.map((m) => m.id)).toEqual(first.messages.map((m) => m.id));
    expect(all.messages.map((m) => m.data)).toEqual(first.messages.map((m) => m.data));
    expect(resumed.messages.map((m) => m.id)).toEqual(first.messages.slice(4).map((m) => m.id));
    expect(resumed.messages.at(-1)!.event).toBe('complete');
    expect((await readSse(url, { token: outsider.accessToken })).status).toBe(404);
  });

  test('a repeated Idempotency-Key returns the same generation and adds nothing', async () => {
    t.llm.push({ toolCalls: [{ name: 'create_text', args: { text: 'only once' } }] });
    const key = `key-${Date.now()}`;
    const first = await generate(owner, { prompt: 'once please' }, { 'Idempotency-Key': key });
    const second = await generate(owner, { prompt: 'once please' }, { 'Idempotency-Key': key });

    expect(second.headers.get('x-generation-id')).toBe(first.headers.get('x-generation-id'));
    expect(second.messages.map((m) => m.data)).toEqual(first.messages.map((m) => m.data));
    const blocks = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: owner.accessToken });
    expect(blocks.body.blocks.filter((b: { content: { text?: string } }) => b.content.text === 'only once')).toHaveLength(1);
    expect(t.llm.chatRequests().filter((r) => JSON.stringify(r.messages).includes('once please'))).toHaveLength(2);
  });

  test('past maxBlocksPerGeneration the agent stops and complete says truncated', async () => {
    const app = await startTestApp({ env: { TIER_LIMITS: JSON.stringify({ free: { maxBlocksPerGeneration: 3 } }) } });
    try {
      const user = await registerUser(app.api, 'Cap');
      const canvas = await createCanvas(app.api, user);
      app.llm.push({ toolCalls: Array.from({ length: 5 }, (_, i) => ({ name: 'create_text', args: { text: `block ${i}` } })) });
      const sse = await readSse(`${app.api}/canvases/${canvas}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'five blocks' },
      });
      const complete = sse.messages.at(-1)!;
      expect(complete.event).toBe('complete');
      expect(complete.data.truncated).toBe(true);
      expect(complete.data.blocks.map((b: { content: { text: string } }) => b.content.text)).toEqual(['block 0', 'block 1', 'block 2']);
      expect(app.llm.chatRequests()).toHaveLength(1);
    } finally {
      await app.stop();
    }
  });
});

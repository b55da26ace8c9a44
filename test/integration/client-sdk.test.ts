import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server } from 'socket.io';
import {
  connectCanvas,
  connectDevice,
  createSwitchboardClient,
  isApiError,
  SwitchboardApiError,
  type AgentRunOutcome,
  type DeviceConnection,
  type SequencedEvent,
  type SwitchboardClient,
  type ToolCall,
} from '@switchboard/client';
import { readFolderFiles } from '@switchboard/client/node';
import { MemoryStore } from '@switchboard/client/testing';
import { agentCompleteSchema, agentDataSchema, type AgentRunRequest } from '../../src/schemas/device-protocol';
import { startTestApp, type TestApp } from '../support/app';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { unframed } from '../support/scripted-llm';

/** A promise with its resolve, to hold the scripted model until the test lets it answer. */
function gate() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Rejects when `promise` takes longer than `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error) => (clearTimeout(timer), reject(error)),
    );
  });
}

const seqs = (events: SequencedEvent[]) => events.map((e) => e.seq);
const twoTexts = {
  toolCalls: [
    { name: 'create_text', args: { text: 'one' } },
    { name: 'create_text', args: { text: 'two' } },
  ],
};

describe('TypeScript client SDK against a live server', () => {
  let t: TestApp;
  let sb: SwitchboardClient;
  let canvasId: string;
  /** The model's follow-up turn waits on this (scripted turns first). */
  let held = gate();
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    held.open();
    t = await startTestApp({
      env: {
        TIER_LIMITS: JSON.stringify({ free: { generationsPerMinute: 100, concurrentGenerations: 5 } }),
        DEVICE_RPC_TIMEOUT_MS: '5000',
      },
      responder: async () => {
        await held.promise;
        return { text: 'Done.' };
      },
    });
    sb = createSwitchboardClient({ baseUrl: t.url });
    await sb.auth.register({ email: `sdk-${randomUUID().slice(0, 8)}@example.test`, password: 'correct horse battery', name: 'Sdk' });
    canvasId = (await sb.canvases.create({ title: 'SDK canvas' })).canvas.id;
  });

  afterAll(async () => {
    held.open();
    closers.forEach((close) => close());
    await t.stop();
  });

  describe('HTTP', () => {
    test('register keeps the tokens; login, me and canvases work through typed methods', async () => {
      const email = `ada-${randomUUID().slice(0, 8)}@example.test`;
      const client = createSwitchboardClient({ baseUrl: `${t.url}/` });

      const registered = await client.auth.register({ email, password: 'correct horse battery', name: 'Ada' });
      const loggedIn = await createSwitchboardClient({ baseUrl: t.api }).auth.login({ email, password: 'correct horse battery' });
      const me = await client.auth.me();

      expect(client.tokens()).toEqual({ accessToken: registered.accessToken, refreshToken: registered.refreshToken });
      expect(loggedIn.user).toEqual(registered.user);
      expect(me.user).toMatchObject({
        email,
        name: 'Ada',
        tier: 'free',
        limits: expect.objectContaining({ concurrentGenerations: 5, maxBlocksPerGeneration: 200 }),
      });
      const { canvas } = await client.canvases.create({ title: 'Mine' });
      expect(canvas).toMatchObject({ title: 'Mine', role: 'owner', ownerId: registered.user.id });
      expect((await client.canvases.list()).canvases.map((c) => c.id)).toEqual([canvas.id]);
      expect((await client.canvases.update(canvas.id, { title: 'Renamed' })).canvas.title).toBe('Renamed');
      const { block } = await client.blocks.create(canvas.id, { type: 'todo', content: { text: 'ship', checked: false } });
      expect((await client.blocks.update(canvas.id, block.id, { content: { text: 'ship it', checked: true } })).block.content).toEqual({
        text: 'ship it',
        checked: true,
      });
      await client.blocks.delete(canvas.id, block.id);
      expect((await client.blocks.list(canvas.id)).blocks).toEqual([]);
      await client.canvases.delete(canvas.id);
      expect((await client.canvases.list()).canvases).toEqual([]);
    });

    test('an expired access token is refreshed once on 401, the request retried, and the new pair reported', async () => {
      const seen: unknown[] = [];
      const first = createSwitchboardClient({ baseUrl: t.url });
      const auth = await first.auth.register({
        email: `bob-${randomUUID().slice(0, 8)}@example.test`,
        password: 'correct horse battery',
        name: 'Bob',
      });
      const client = createSwitchboardClient({
        baseUrl: t.url,
        accessToken: 'not-a-jwt',
        refreshToken: auth.refreshToken,
        onTokens: (tokens) => seen.push(tokens),
      });

      const [a, b] = await Promise.all([client.canvases.list(), client.auth.me()]);

      expect(a.canvases).toEqual([]);
      expect(b.user.id).toBe(auth.user.id);
      expect(seen).toHaveLength(1); // both 401s shared one refresh
      expect(client.tokens().refreshToken).not.toBe(auth.refreshToken);
      // The consumed refresh token cannot be used again: a client holding only it gets the 401.
      const stale = createSwitchboardClient({ baseUrl: t.url, accessToken: 'not-a-jwt', refreshToken: auth.refreshToken });
      await expect(stale.auth.me()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    });

    test('errors are SwitchboardApiError with the status, code, message and details of the error body', async () => {
      const missing = await sb.canvases.get(randomUUID()).catch((error: unknown) => error);
      const invalid = await sb.canvases.create({ title: '' }).catch((error: unknown) => error);
      const unknownUser = await sb.members.set(canvasId, { email: 'nobody@example.test', role: 'viewer' }).catch((error: unknown) => error);
      const approval = await sb.approvals.get(randomUUID()).catch((error: unknown) => error);

      expect(missing).toBeInstanceOf(SwitchboardApiError);
      expect(missing).toMatchObject({ status: 404, code: 'not_found', message: 'Canvas not found' });
      expect(isApiError(invalid, 'validation_failed')).toBe(true);
      expect(invalid).toMatchObject({ status: 400, details: [expect.objectContaining({ path: 'title' })] });
      expect(unknownUser).toMatchObject({ status: 404, code: 'user_not_found' });
      expect(approval).toMatchObject({ status: 404, code: 'not_found' });
    });

    test('embeddings and the metrics summary answer in their typed shapes', async () => {
      const embedding = await sb.embeddings.embed({ text: 'launch plan' });
      const summary = await sb.metrics.summary();

      expect(embedding.vector).toHaveLength(embedding.dimensions);
      expect(typeof embedding.model).toBe('string');
      expect(summary.scope).toBe('user');
      expect(summary.queues.generation).toEqual(expect.objectContaining({ waiting: expect.any(Number), completed: expect.any(Number) }));
      expect(summary.usage.last24h).toEqual({ costUsd: expect.any(Number), calls: expect.any(Number) });
    });
  });

  describe('agents', () => {
    test('a local agent is created, read, changed, listed and deleted through the typed methods; a bad cron is a typed 400', async () => {
      const created = await sb.agents.local.create({
        name: 'Notes folder',
        deviceId: 'laptop-1',
        directoryPaths: ['/home/sdk/notes'],
        dataTypes: ['tasks'],
        promptTemplate: 'Extract my tasks',
        enabled: false,
      });
      const badCron = await sb.agents.local
        .create({
          name: 'Bad',
          deviceId: 'laptop-1',
          directoryPaths: ['/home/sdk/notes'],
          dataTypes: ['tasks'],
          promptTemplate: 'x',
          scheduleCron: 'every day',
        })
        .catch((e: unknown) => e);

      expect(created).toMatchObject({ id: expect.any(String), name: 'Notes folder', enabled: false });
      // A bare read of an agent also carries each key's snake_case twin, for clients written for snake_case APIs.
      expect(await sb.agents.local.get(created.id)).toMatchObject(created);
      expect(await sb.agents.local.update(created.id, { name: 'Renamed' })).toMatchObject({ id: created.id, name: 'Renamed' });
      expect((await sb.agents.local.list()).agents.map((a) => a.id)).toContain(created.id);
      expect(await sb.agents.runs({ agentId: created.id, page: 1, limit: 5 })).toMatchObject({ runs: [], page: 1, limit: 5, total: 0 });
      expect(badCron).toMatchObject({ status: 400, code: 'validation_failed' });
      await sb.agents.local.delete(created.id);
      await expect(sb.agents.local.get(created.id)).rejects.toMatchObject({ status: 404, code: 'not_found' });
    });
  });

  describe('journey and OAuth', () => {
    test('a journey starts and is read back through the typed methods; OAuth without a configured client is a typed 503', async () => {
      const started = await sb.agents.journey.start({ agentType: 'local', dataTypes: ['tasks'] });
      expect(started).toMatchObject({ sessionId: expect.any(String), done: false, turn: 0, message: expect.stringMatching(/files/) });
      expect(await sb.agents.journey.get(started.sessionId)).toMatchObject({
        sessionId: started.sessionId,
        agentType: 'local',
        turn: 0,
        done: false,
      });
      await expect(sb.agents.journey.message({ sessionId: randomUUID(), message: 'hello' })).rejects.toMatchObject({
        status: 404,
        code: 'not_found',
      });

      await expect(sb.oauth.authorize('gmail')).rejects.toMatchObject({ status: 503, code: 'provider_not_configured' });
      await expect(sb.oauth.refresh('outlook')).rejects.toMatchObject({ status: 404 });
    });
  });

  describe('generation streams', () => {
    test('generate streams every event in order to complete, the canvas socket receives the blocks, and undo is typed', async () => {
      const room = await connectCanvas({ url: sb.serverUrl, token: () => sb.tokens().accessToken, reconnection: false });
      closers.push(() => room.close());
      expect(await room.join(canvasId)).toEqual({
        ok: true,
        presence: [expect.objectContaining({ name: 'Sdk' })],
        seq: expect.any(Number),
      });
      t.llm.push(twoTexts);
      const started: string[] = [];
      const chunk = room.waitFor('blocks_bulk_added_chunk', (c) => c.canvasId === canvasId);

      const stream = sb.generations.generate(
        canvasId,
        { prompt: 'two paragraphs' },
        { onStart: ({ generationId }) => started.push(generationId) },
      );
      const events: SequencedEvent[] = [];
      const last = await stream.finished((event) => void events.push(event));

      expect(started).toEqual([stream.generationId]);
      expect(seqs(events)).toEqual(events.map((_, i) => i + 1));
      expect(events.filter((e) => e.event.type === 'status').map((e) => (e.event.type === 'status' ? e.event.stage : ''))).toEqual([
        'queued',
        'thinking',
        'tool',
        'persisting',
        'broadcasting',
      ]);
      expect(last?.event.type).toBe('complete');
      if (last?.event.type !== 'complete') throw new Error('no complete');
      const blockIds = last.event.blocks.map((b) => b.id);
      expect(last.event.blocks.map((b) => b.content)).toEqual([{ text: 'one' }, { text: 'two' }]);
      expect(await chunk).toMatchObject({ generationId: stream.generationId, chunkIndex: 0, chunkCount: 1 });
      expect((await chunk).blocks.map((b) => b.id)).toEqual(blockIds);

      const added = room.waitFor('block_added', (p) => p.canvasId === canvasId);
      const { block } = await sb.blocks.create(canvasId, { type: 'quote', content: { text: 'Ship it.' } });
      expect((await added).block).toEqual(block);

      expect((await sb.generations.get(canvasId, stream.generationId!)).generation).toMatchObject({ status: 'completed', blockCount: 2 });
      const undone = room.waitFor('generation_undone', (p) => p.generationId === stream.generationId);
      expect(await sb.generations.undo(canvasId, stream.generationId!)).toEqual({
        generationId: stream.generationId,
        blockIds,
        keptBlockIds: [],
      });
      expect((await undone).blockIds).toEqual(blockIds);
      await expect(sb.generations.undo(canvasId, stream.generationId!, { force: true })).rejects.toMatchObject({
        status: 409,
        code: 'already_undone',
      });
      const redone = room.waitFor('generation_redone', (p) => p.generationId === stream.generationId);
      const redo = await sb.generations.redo(canvasId, stream.generationId!);
      expect(redo.blocks).toEqual(last.event.blocks);
      expect((await redone).blocks).toEqual(last.event.blocks);
      await expect(sb.generations.redo(canvasId, stream.generationId!)).rejects.toMatchObject({ status: 409, code: 'nothing_to_redo' });
      await sb.generations.undo(canvasId, stream.generationId!);
      const audit = await sb.generations.audit(canvasId);
      // Newest first: the second undo is the latest event.
      expect(audit.audit.filter((row) => row.targetId === stream.generationId).map((row) => row.action)).toEqual([
        'ai.generation.undone',
        'ai.generation.redone',
        'ai.generation.undone',
        'ai.generation.persisted',
      ]);
    });

    test('a consumer that stops mid-generation resumes with lastEventId and gets the rest with no duplicate and no gap', async () => {
      held = gate();
      t.llm.push(twoTexts);
      const stream = sb.generations.generate(canvasId, { prompt: 'two more paragraphs' });
      const before: SequencedEvent[] = [];
      for await (const event of stream) {
        before.push(event);
        if (before.length === 3) break; // the model's follow-up is still held: the generation is running
      }
      const generation = await sb.generations.get(canvasId, stream.generationId!);
      held.open();

      const resumed = sb.generations.events(canvasId, stream.generationId!, { lastEventId: stream.lastEventId });
      const after: SequencedEvent[] = [];
      await resumed.finished((event) => void after.push(event));

      expect(generation.generation.status).not.toBe('completed');
      expect(stream.lastEventId).toBe('3');
      expect(seqs(before)).toEqual([1, 2, 3]);
      expect(after[0].seq).toBe(4);
      const all = [...seqs(before), ...seqs(after)];
      expect(all).toEqual(all.map((_, i) => i + 1));
      expect(after.at(-1)?.event.type).toBe('complete');
    });

    test('aborting the signal ends the iteration with the abort reason and closes the connection', async () => {
      held = gate();
      t.llm.push(twoTexts);
      const controller = new AbortController();
      const stream = sb.generations.generate(canvasId, { prompt: 'paragraphs nobody waits for' }, { signal: controller.signal });
      const seen: SequencedEvent[] = [];

      const failure = await (async () => {
        for await (const event of stream) {
          seen.push(event);
          controller.abort();
        }
      })().catch((e: unknown) => e);

      expect(failure).toMatchObject({ name: 'AbortError' });
      expect(seqs(seen)).toEqual([1]);
      held.open();
      expect((await sb.generations.events(canvasId, stream.generationId!).finished())?.event.type).toBe('complete');
    });

    test('a connection dropped by the network mid-stream reconnects by itself with Last-Event-ID: no duplicate, no gap', async () => {
      const target = new URL(t.url);
      const proxy: TcpProxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
      closers.push(() => void proxy.close());
      const viaProxy = createSwitchboardClient({ baseUrl: `http://127.0.0.1:${proxy.port}`, ...sb.tokens() });
      held = gate();
      t.llm.push(twoTexts);
      const reconnects: Array<{ attempt: number; lastEventId?: string }> = [];

      const events: SequencedEvent[] = [];
      const stream = viaProxy.generations.generate(
        canvasId,
        { prompt: 'paragraphs through a flaky network' },
        { retryMs: 20, onReconnect: (r) => void reconnects.push(r) },
      );
      for await (const event of stream) {
        events.push(event);
        if (event.event.type === 'tool_output' && event.event.index === 1) {
          // Both blocks are out and the model is held: cut every connection, then let the generation finish while we are away.
          await proxy.cut();
          await proxy.restore();
          held.open();
        }
      }

      expect(reconnects.length).toBeGreaterThanOrEqual(1);
      expect(reconnects[0]).toMatchObject({
        attempt: 1,
        lastEventId: String(events.findIndex((e) => e.event.type === 'tool_output' && e.event.index === 1) + 1),
      });
      expect(seqs(events)).toEqual(events.map((_, i) => i + 1));
      expect(events.at(-1)?.event.type).toBe('complete');
      expect(events.filter((e) => e.event.type === 'status').length).toBe(5);
    });

    test('the server’s retry: sets the reconnection delay, and an unsequenced stream_interrupted error resumes instead of ending', async () => {
      const lastEventIds: Array<string | undefined> = [];
      const server = http.createServer((req, res) => {
        lastEventIds.push(req.headers['last-event-id'] as string | undefined);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        if (lastEventIds.length === 1) {
          // Split across writes, with CRLF line ends, as a proxy may deliver it.
          res.write('retry: 40\r\nid: 1\r\nevent: status\r\ndata: {"type":"status","generationId":"g","stage":"queued"}\r');
          res.write('\n\r\n: ping\n\n');
          res.write('event: error\ndata: {"type":"error","generationId":"g","code":"stream_interrupted","message":"reconnect"}\n\n');
          return; // left open: the client must leave by itself
        }
        res.end('id: 2\nevent: complete\ndata: {"type":"complete","generationId":"g","blocks":[],"truncated":false}\n\n');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      closers.push(() => server.closeAllConnections());
      closers.push(() => server.close());
      const client = createSwitchboardClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, accessToken: 'x' });
      const reconnects: Array<{ delayMs: number; lastEventId?: string }> = [];

      const events = await collect(client.generations.events('c', 'g', { onReconnect: (r) => void reconnects.push(r) }));

      expect(events.map((e) => [e.seq, e.event.type])).toEqual([
        [1, 'status'],
        [2, 'complete'],
      ]);
      expect(reconnects).toEqual([expect.objectContaining({ attempt: 1, delayMs: 40, lastEventId: '1' })]);
      expect(lastEventIds).toEqual([undefined, '1']);
    });

    test('a stream that cannot reconnect gives up after maxReconnects with the last error', async () => {
      const client = createSwitchboardClient({ baseUrl: 'http://127.0.0.1:9', accessToken: 'x' });
      const reconnects: number[] = [];
      const failure = await collect(
        client.generations.events('c', 'g', { maxReconnects: 2, retryMs: 5, onReconnect: (r) => void reconnects.push(r.delayMs) }),
      ).catch((e: unknown) => e);

      expect(failure).toMatchObject({ status: 0, code: 'network_error' });
      expect(reconnects).toEqual([5, 10]);
    });
  });

  describe('devices', () => {
    test('the device helper answers a real assistant tool call from its store, and the chat stream ends with final', async () => {
      const store = new MemoryStore({
        tasks: [
          { title: 'Write launch brief', status: 'todo' },
          { title: 'Book venue', status: 'done' },
        ],
      });
      const calls: ToolCall[] = [];
      const device: DeviceConnection = await connectDevice({
        url: sb.serverUrl,
        token: () => sb.tokens().accessToken,
        deviceId: `sdk-${randomUUID().slice(0, 6)}`,
        store,
        reconnection: false,
        onCall: (call) => void calls.push(call),
      });
      closers.push(() => device.close());
      t.llm.push({ toolCalls: [{ name: 'list_tasks', args: { status: 'todo' } }] }, { text: 'You have 1 todo task: Write launch brief.' });

      const answer = await sb.chat.send({ message: 'How many todo tasks do I have?', deviceId: device.deviceId });

      expect(calls).toEqual([expect.objectContaining({ action: 'select', table: 'tasks', filters: { status: 'todo' } })]);
      expect(answer).toMatchObject({ sessionId: expect.any(String), response: 'You have 1 todo task: Write launch brief.' });
      const toolResult = t.llm
        .chatRequests()
        .at(-1)!
        .messages.find((m) => m.role === 'tool');
      expect(unframed(String(toolResult?.content))).toMatch(/^Found 1 task\(s\):\n- Write launch brief/);

      t.llm.push({ text: 'Still one.' });
      const sessions: string[] = [];
      const streamed = await collect(
        sb.chat.stream(
          { message: 'And now?', sessionId: answer.sessionId, deviceId: device.deviceId },
          { onStart: ({ sessionId }) => void sessions.push(sessionId) },
        ),
      );
      expect(sessions).toEqual([answer.sessionId]);
      expect(streamed.at(-1)).toMatchObject({ type: 'final', sessionId: answer.sessionId, response: 'Still one.' });
      expect(
        streamed
          .filter((e) => e.type === 'text_chunk')
          .map((e) => (e.type === 'text_chunk' ? e.text : ''))
          .join(''),
      ).toBe('Still one.');
      expect((await sb.chat.history(answer.sessionId)).messages.map((m) => m.role)).toEqual(expect.arrayContaining(['user', 'assistant']));
    });

    test('cancelGeneration / generations.cancel stop a running generation: typed 202, the stream ends with `cancelled`, a second cancel is a typed 409', async () => {
      held = gate();
      t.llm.push(twoTexts);
      const stream = sb.generations.generate(canvasId, { prompt: 'two paragraphs, then the model hangs' });
      const events: SequencedEvent[] = [];
      let cancelled: Promise<unknown> | undefined;
      const last = await stream.finished((event) => {
        events.push(event);
        // The model's follow-up turn is held: the generation is running when its first block arrives.
        if (event.event.type === 'tool_output' && !cancelled) cancelled = sb.cancelGeneration(canvasId, stream.generationId!);
      });
      expect(await cancelled).toEqual({ generationId: stream.generationId, status: 'cancelling' });
      expect(last?.event).toEqual({ type: 'cancelled', generationId: stream.generationId });
      expect((await sb.generations.get(canvasId, stream.generationId!)).generation.status).toBe('cancelled');
      await expect(sb.generations.cancel(canvasId, stream.generationId!)).rejects.toMatchObject({ status: 409, code: 'not_running' });
      held.open();
    });

    test('cancelChat / chat.cancel stop a running turn: the chat stream ends with `cancelled`; the device helper’s cancelChat is then not_running', async () => {
      held = gate();
      const device: DeviceConnection = await connectDevice({
        url: sb.serverUrl,
        token: () => sb.tokens().accessToken,
        deviceId: `sdk-${randomUUID().slice(0, 6)}`,
        store: new MemoryStore(),
        reconnection: false,
      });
      closers.push(() => device.close());
      let cancelled: Promise<unknown> | undefined;
      const streamed = await collect(
        sb.chat.stream(
          { message: 'Say something, slowly', tools: 'none' },
          { onStart: ({ sessionId }) => void (cancelled = sb.cancelChat(sessionId)) },
        ),
      );
      const sessionId = streamed.at(-1)!.sessionId;
      expect(await cancelled).toEqual({ sessionId, status: 'cancelling' });
      expect(streamed.at(-1)).toMatchObject({ type: 'cancelled', sessionId, response: '' });
      await expect(sb.chat.cancel(sessionId)).rejects.toMatchObject({ status: 409, code: 'not_running' });
      expect(await device.cancelChat(sessionId)).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_running' }) });
      held.open();
    });

    test('a bad token is refused with connect_error "unauthorized"', async () => {
      await expect(connectCanvas({ url: t.url, token: 'nope', reconnection: false })).rejects.toThrow('unauthorized');
      await expect(
        connectDevice({ url: t.url, token: 'nope', deviceId: 'd1', store: new MemoryStore(), reconnection: false }),
      ).rejects.toThrow('unauthorized');
    });
  });

  describe('agent runs (bare Socket.IO server standing in for the agent-runs side)', () => {
    let io: Server;
    let url: string;
    let folder: string;
    const hellos: Array<{ deviceId: string; agentIds: string[] }> = [];
    const frames: unknown[] = [];
    const completes: unknown[] = [];
    let lastSocket: import('socket.io').Socket | undefined;

    beforeAll(async () => {
      folder = await mkdtemp(join(tmpdir(), 'sdk-agent-'));
      await mkdir(join(folder, 'sub'));
      await mkdir(join(folder, '.hidden'));
      await writeFile(join(folder, 'a.md'), 'TODO write brief\n');
      await writeFile(join(folder, 'b.TXT'), 'Action: call venue\n');
      await writeFile(join(folder, 'sub', 'c.md'), '- [ ] invite press\n');
      await writeFile(join(folder, 'big.md'), 'x'.repeat(2_000));
      await writeFile(join(folder, 'binary.md'), Buffer.from([0x54, 0x00, 0x44]));
      await writeFile(join(folder, 'photo.png'), 'not read');
      await writeFile(join(folder, '.hidden', 'secret.md'), 'not read');
      const httpServer = http.createServer();
      io = new Server(httpServer);
      io.of('/device').on('connection', (socket) => {
        lastSocket = socket;
        socket.on('device_hello', (payload, ack) => (hellos.push(payload), ack({ ok: true })));
        socket.on('agent_data', (payload, ack) => (frames.push(agentDataSchema.parse(payload)), ack?.({ ok: true })));
        socket.on('agent_complete', (payload, ack) => (completes.push(agentCompleteSchema.parse(payload)), ack?.({ ok: true })));
      });
      await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      await new Promise<void>((resolve) => void io.close(() => resolve()));
      await rm(folder, { recursive: true, force: true });
    });

    const run = (runId: string, config: Partial<AgentRunRequest['config']> = {}): AgentRunRequest => ({
      runId,
      agentId: 'agent-1',
      config: {
        paths: [folder, join(folder, 'missing')],
        fileExtensions: ['md', '.txt'],
        promptTemplate: 'Extract tasks',
        dataTypes: ['tasks'],
        maxFiles: 100,
        maxBytes: 1_000_000,
        maxFileBytes: 1_000,
        ...config,
      },
    });

    /** Resolves with the outcome of the next agent run the device finishes. */
    const nextOutcome = () => {
      let resolve!: (outcome: AgentRunOutcome) => void;
      const promise = new Promise<AgentRunOutcome>((r) => (resolve = r));
      return { promise, onAgentRun: (outcome: AgentRunOutcome) => resolve(outcome) };
    };

    test('given readFolderFiles, an agent_run is answered with agent_data frames within the bounds, then agent_complete with the errors', async () => {
      const outcome = nextOutcome();
      const device = await connectDevice({
        url,
        token: 'any',
        deviceId: 'desk',
        agentIds: ['agent-1'],
        store: new MemoryStore(),
        readAgentFiles: readFolderFiles,
        frameFiles: 2,
        reconnection: false,
        onAgentRun: outcome.onAgentRun,
      });
      closers.push(() => device.close());
      expect(hellos).toEqual([{ deviceId: 'desk', agentIds: ['agent-1'] }]);

      lastSocket!.emit('agent_run', run('run-1'));
      const result = await within(outcome.promise, 10_000, 'agent run');

      const sent = (frames as Array<{ runId: string; files: Array<{ path: string; name: string; content: string }> }>).filter(
        (f) => f.runId === 'run-1',
      );
      expect(sent.map((f) => f.files.length)).toEqual([2, 1]);
      expect(sent.flatMap((f) => f.files.map((file) => file.name))).toEqual(['a.md', 'b.TXT', 'c.md']);
      expect(sent[0].files[0]).toMatchObject({ path: join(folder, 'a.md'), content: 'TODO write brief\n', metadata: { size: 17 } });
      expect(completes).toContainEqual({
        runId: 'run-1',
        filesRead: 3,
        errors: [
          expect.stringMatching(/big\.md: 2000 bytes is over the limit of 1000/),
          expect.stringMatching(/binary\.md: not a text file/),
          `${join(folder, 'missing')}: no such file or folder`,
        ],
      });
      expect(result).toMatchObject({ runId: 'run-1', agentId: 'agent-1', filesRead: 3, frames: 2, aborted: false });
    });

    test('maxFiles stops the run, and a device without readAgentFiles completes at once with an error', async () => {
      const outcome = nextOutcome();
      const reader = await connectDevice({
        url,
        token: 'any',
        deviceId: 'reader',
        store: new MemoryStore(),
        readAgentFiles: readFolderFiles,
        reconnection: false,
        onAgentRun: outcome.onAgentRun,
      });
      closers.push(() => reader.close());
      lastSocket!.emit('agent_run', run('run-2', { maxFiles: 1 }));
      expect(await within(outcome.promise, 10_000, 'run-2')).toMatchObject({ runId: 'run-2', filesRead: 1, frames: 1 });
      expect(completes).toContainEqual(expect.objectContaining({ runId: 'run-2', filesRead: 1 }));

      const plain = await connectDevice({ url, token: 'any', deviceId: 'plain', store: new MemoryStore(), reconnection: false });
      closers.push(() => plain.close());
      const completed = new Promise((resolve) => lastSocket!.once('agent_complete', resolve));
      lastSocket!.emit('agent_run', run('run-3'));
      expect(await within(completed, 10_000, 'run-3 agent_complete')).toEqual({
        runId: 'run-3',
        filesRead: 0,
        errors: ['this device cannot read files (no readAgentFiles)'],
      });
    });

    test('an agent_run that fails validation is still completed, with the problem as its error', async () => {
      const outcome = nextOutcome();
      const device = await connectDevice({
        url,
        token: 'any',
        deviceId: 'strict',
        store: new MemoryStore(),
        readAgentFiles: readFolderFiles,
        reconnection: false,
        onAgentRun: outcome.onAgentRun,
      });
      closers.push(() => device.close());
      lastSocket!.emit('agent_run', { ...run('run-4'), config: { ...run('run-4').config, paths: [] } });
      const result = await within(outcome.promise, 10_000, 'run-4');
      expect(result.errors).toEqual([expect.stringMatching(/^invalid agent_run: config\.paths/)]);
      expect(completes).toContainEqual(expect.objectContaining({ runId: 'run-4', filesRead: 0 }));
    });

    test('device_hello is said again after the connection drops and comes back', async () => {
      const device = await connectDevice({
        url,
        token: 'any',
        deviceId: 'roamer',
        store: new MemoryStore(),
        socketOptions: { reconnectionDelay: 10, reconnectionDelayMax: 20 },
      });
      closers.push(() => device.close());
      const helloAgain = new Promise((resolve) => io.of('/device').once('connection', (socket) => socket.once('device_hello', resolve)));

      lastSocket!.conn.close(); // the transport drops (a server-side disconnect would not reconnect)

      expect(await within(helloAgain, 10_000, 'second device_hello')).toEqual({ deviceId: 'roamer', agentIds: [] });
    });
  });
});

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

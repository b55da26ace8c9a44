import { randomUUID } from 'node:crypto';
import path from 'node:path';
import os from 'node:os';
import { Worker } from 'bullmq';
import { ApprovalService } from '../../src/turns/approvals';
import { ChatTurnLife } from '../../src/assistant/chat-turn-life';
import { ChatEventLog, isChatTerminal, type TurnUsage } from '../../src/turns/turn-events';
import { CHAT_INTERRUPTED, registerChatRuns, type TurnRef } from '../../src/assistant/chat-run';
import type { DevicePort } from '../../src/devices/device-channel';
import { AppError } from '../../src/lib/errors';
import { CancelSignals } from '../../src/lib/cancel-signals';
import { createLogger } from '../../src/lib/logger';
import type { RedisConnections } from '../../src/lib/redis';
import { createRepositories, type Repositories } from '../../src/models';
import { openDatabase, type Database } from '../../src/models/database';
import { bullPrefix, QueueRegistry } from '../../src/producers/registry';
import { RunKernel } from '../../src/runs/run-kernel';
import { llmUsage } from '../../src/models/schema';
import { eq } from 'drizzle-orm';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { testBullConnection, testRedisConnections } from '../support/redis';

const USAGE: TurnUsage = { provider: 'test', model: 'test-model', inputTokens: 3, outputTokens: 5, costUsd: 0 };
/** Far enough ahead that every run of the test counts as older than the reaper's grace. */
const later = () => new Date(Date.now() + 60_000);

/**
 * Chat turns on the run kernel, over real PostgreSQL, Redis and BullMQ: the chat kind as the app
 * registers it, with the real approval service and event log. Each test has its own key prefix
 * (queues, signals, event logs) and its own user, session and turn.
 */
describe('chat turns on the run kernel', () => {
  let testDb: TestDatabase;
  let database: Database;
  let repos: Repositories;
  let redis: RedisConnections;
  const opened: Array<{ queues: QueueRegistry; signals: CancelSignals }> = [];
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

  beforeAll(async () => {
    testDb = await createTestDatabase({ server: serverPostgresUrl() });
    database = await openDatabase({ url: testDb.url, dataDir: path.join(os.tmpdir(), 'switchboard-chat-run-kernel-test') });
    repos = createRepositories(database.db);
    // Queues, cancel signals and event logs each on its concern's Redis, as in the app.
    redis = testRedisConnections();
    await redis.ready();
  }, 60_000);

  afterAll(async () => {
    for (const { queues, signals } of opened) {
      await signals.close();
      await queues.close();
    }
    await redis?.quit();
    await database?.close();
    await testDb?.drop();
  });

  /** The app's chat kind on a kernel of its own; device messages are recorded. */
  function chatKernel() {
    const keyPrefix = `chat-run-${randomUUID().slice(0, 8)}`;
    const queues = new QueueRegistry(redis.queues.command, keyPrefix);
    const signals = new CancelSignals(redis.realtime.command, keyPrefix, logger);
    opened.push({ queues, signals });
    const kernel = new RunKernel({ runs: repos.runs, queues, signals, logger });
    const chatEvents = new ChatEventLog(redis.realtime.command, keyPrefix);
    const sent: Array<{ deviceId: string; event: string }> = [];
    const devices = {
      send: (_userId: string, deviceId: string, event: string) => void sent.push({ deviceId, event }),
      sendTurn: (_userId: string, deviceId: string, _turn: { id: string }, event: string) => void sent.push({ deviceId, event }),
      sendToUser: () => undefined,
    } as unknown as DevicePort;
    const approvals = new ApprovalService({
      config: { hitl: { timeoutMs: 60_000 } },
      repos,
      queues,
      logger,
      devices,
      chatEvents,
      browsers: { toUser: () => undefined },
    });
    const runs = registerChatRuns(kernel, { repos, queues, chatEvents, devices, approvals, logger });
    const turns = new ChatTurnLife({ repos, runs, chatEvents });
    return { kernel, queues, chatEvents, turns, runs, sent, keyPrefix };
  }

  /** A user's turn, stored and queued as the chat service does it (its run created). */
  async function newTurn(runs: ReturnType<typeof chatKernel>['runs']): Promise<TurnRef> {
    const user = await repos.users.create({ email: `${randomUUID()}@example.test`, name: 'Chat', passwordHash: 'x' });
    const session = await repos.chat.createSession({ userId: user!.id, deviceId: null, title: 'turn', mode: 'none' });
    const message = await repos.chat.addMessage({ sessionId: session.id, role: 'user', content: 'Hello' });
    await runs.create({ id: message.id, userId: user!.id });
    return { userId: user!.id, sessionId: session.id, messageId: message.id };
  }

  const terminals = async (chatEvents: ChatEventLog, messageId: string) => (await chatEvents.stored(messageId)).filter(isChatTerminal);

  test('a cancel racing the natural end has one winner: one stored answer, one terminal event, matching the run', async () => {
    const { chatEvents, turns, runs, queues, keyPrefix } = chatKernel();
    // The worker that holds each turn's job (active, locked): a cancel cannot take it off the queue.
    const connection = testBullConnection();
    const worker = new Worker('assistant', null, { connection, prefix: bullPrefix(keyPrefix), autorun: false });
    try {
      for (let round = 0; round < 6; round += 1) {
        const turn = await newTurn(runs);
        await queues.enqueue('assistant', 'chat-turn', {
          userId: turn.userId,
          sessionId: turn.sessionId,
          messageId: turn.messageId,
          tools: 'none',
        });
        expect((await worker.getNextJob(randomUUID()))?.id).toBe(turn.messageId);
        await expect(turns.begin(turn)).resolves.toBe('started');
        // The worker's natural end, as the runners do it: a cancel that came first turns it into a cancelled end.
        const finish = async () => {
          const stored = await turns.finish(turn, 'The whole answer', USAGE);
          if (stored === 'cancel_requested') await turns.end(turn, { response: 'The whole answer', usage: USAGE });
        };
        const cancel = async () => {
          try {
            await turns.cancel(turn.userId, turn.sessionId);
          } catch (error) {
            // Only a cancel that came after the end may be refused, and then as `not_running`.
            expect(error).toBeInstanceOf(AppError);
            expect((error as AppError).code).toBe('not_running');
          }
        };
        await Promise.all(round % 2 ? [finish(), cancel()] : [cancel(), finish()]);

        const run = await repos.runs.find('chat', turn.messageId);
        const events = await terminals(chatEvents, turn.messageId);
        expect(events).toHaveLength(1);
        const history = (await repos.chat.history(turn.sessionId)).filter((m) => m.role === 'assistant');
        expect(history).toHaveLength(1);
        if (run!.status === 'succeeded') {
          expect(events[0]).toMatchObject({ type: 'final', response: 'The whole answer' });
          expect(history[0]).toMatchObject({ status: 'completed', content: 'The whole answer' });
        } else {
          expect(run!.status).toBe('cancelled');
          expect(events[0]).toMatchObject({ type: 'cancelled', response: 'The whole answer' });
          expect(history[0]).toMatchObject({ status: 'cancelled', content: 'The whole answer' });
        }
        // A later cancel finds the turn ended.
        await expect(turns.cancel(turn.userId, turn.sessionId)).rejects.toMatchObject({ code: 'not_running' });
      }
    } finally {
      await worker.close();
      connection.disconnect();
    }
  }, 60_000);

  test('a turn whose worker died is recovered through the kernel as `interrupted`, once, and a cancel-requested one as `cancelled`', async () => {
    const { kernel, chatEvents, turns, runs } = chatKernel();
    const killed = await newTurn(runs);
    await turns.begin(killed);
    const asked = await newTurn(runs);
    await turns.begin(asked);
    // What the dead worker had streamed; then the cancel reached the run and the worker died.
    for (const text of ['Half ', 'an answer'])
      await chatEvents.append(asked.messageId, { type: 'text_chunk', sessionId: asked.sessionId, text });
    await repos.runs.requestCancel('chat', asked.messageId, asked.userId);

    await kernel.recover(later(), 100);
    await kernel.recover(later(), 100);

    expect(await repos.runs.find('chat', killed.messageId)).toMatchObject({ status: 'failed', errorCode: 'interrupted' });
    expect(await terminals(chatEvents, killed.messageId)).toEqual([
      { type: 'error', sessionId: killed.sessionId, code: 'interrupted', message: CHAT_INTERRUPTED },
    ]);
    expect((await repos.chat.history(killed.sessionId)).filter((m) => m.role === 'assistant')).toEqual([]);

    expect(await repos.runs.find('chat', asked.messageId)).toMatchObject({ status: 'cancelled' });
    expect(await terminals(chatEvents, asked.messageId)).toEqual([
      expect.objectContaining({ type: 'cancelled', sessionId: asked.sessionId, response: 'Half an answer' }),
    ]);
    expect((await repos.chat.history(asked.sessionId)).filter((m) => m.role === 'assistant')).toEqual([
      expect.objectContaining({ status: 'cancelled', content: 'Half an answer' }),
    ]);
  }, 60_000);

  test('a parked turn and one whose resume job is live are not recovered; a cancel of the parked one ends it from its continuation', async () => {
    const { kernel, queues, chatEvents, turns, runs, sent } = chatKernel();
    const park = async (turn: TurnRef) => {
      await turns.begin(turn);
      return repos.hitl.create({
        userId: turn.userId,
        sessionId: turn.sessionId,
        messageId: turn.messageId,
        deviceId: 'device-1',
        toolName: 'delete_task',
        parameters: { taskId: 't1' },
        reason: 'dangerous',
        continuation: { version: 1, messages: [], calls: [], iteration: 1, response: 'Deleting it now', toolCalls: 0, usage: USAGE },
        expiresAt: new Date(Date.now() + 60_000),
      });
    };
    const parked = await newTurn(runs);
    const approval = await park(parked);
    // Decided and resumed: its resume job waits on the queue.
    const resuming = await newTurn(runs);
    const decided = await park(resuming);
    await repos.hitl.decide(decided.id, 'approved', resuming.userId);
    expect(await repos.hitl.markResumed(decided.id)).toBe(true);
    await queues.enqueue('assistant', 'hitl-resume', { approvalId: decided.id });

    await kernel.recover(later(), 100);
    for (const turn of [parked, resuming]) {
      expect(await repos.runs.find('chat', turn.messageId)).toMatchObject({ status: 'running' });
      expect(await terminals(chatEvents, turn.messageId)).toEqual([]);
    }

    await expect(turns.cancel(parked.userId, parked.sessionId)).resolves.toEqual({ sessionId: parked.sessionId, status: 'cancelling' });
    expect(await repos.runs.find('chat', parked.messageId)).toMatchObject({ status: 'cancelled' });
    expect(await terminals(chatEvents, parked.messageId)).toEqual([
      { type: 'cancelled', sessionId: parked.sessionId, response: 'Deleting it now', usage: USAGE },
    ]);
    expect(await repos.hitl.find(approval.id)).toMatchObject({ status: 'rejected', decisionReason: 'cancelled' });
    expect(sent).toContainEqual({ deviceId: 'device-1', event: 'cancelled' });
    // The resuming turn is left to its resume job: a cancel is recorded, not ended here.
    await turns.cancel(resuming.userId, resuming.sessionId);
    expect(await repos.runs.find('chat', resuming.messageId)).toMatchObject({ status: 'running' });
    await expect(turns.begin(resuming)).resolves.toBe('cancel_requested');
  }, 60_000);

  test("a turn's start reads its rows only for its own user and session", async () => {
    const { turns, runs } = chatKernel();
    const turn = await newTurn(runs);
    const stranger = await newTurn(runs);

    // Another user's session, another session's message: the run starts, the rows read as missing.
    await expect(turns.open({ ...turn, userId: stranger.userId })).resolves.toEqual({ begun: 'started', rows: null });
    await expect(turns.open({ ...turn, sessionId: stranger.sessionId })).resolves.toMatchObject({ begun: 'started', rows: null });
    const own = await turns.open(turn);
    expect(own.begun).toBe('started');
    expect(own.rows).toMatchObject({ session: { id: turn.sessionId }, message: { id: turn.messageId, content: 'Hello' }, reply: null });
  }, 60_000);

  test('a turn stored without a run gets one when it starts; a turn whose message is gone, or is not its own, gets none', async () => {
    const { turns } = chatKernel();
    const user = await repos.users.create({ email: `${randomUUID()}@example.test`, name: 'Chat', passwordHash: 'x' });
    const session = await repos.chat.createSession({ userId: user!.id, deviceId: null, title: 'turn', mode: 'none' });
    const message = await repos.chat.addMessage({ sessionId: session.id, role: 'user', content: 'Before runs' });
    const legacy: TurnRef = { userId: user!.id, sessionId: session.id, messageId: message.id };

    const stranger = await repos.users.create({ email: `${randomUUID()}@example.test`, name: 'Other', passwordHash: 'x' });
    await expect(turns.open({ ...legacy, userId: stranger!.id })).resolves.toEqual({ begun: 'ended', rows: null });
    expect(await repos.runs.find('chat', message.id)).toBeNull();
    const gone = { ...legacy, messageId: randomUUID() };
    await expect(turns.open(gone)).resolves.toEqual({ begun: 'ended', rows: null });
    expect(await repos.runs.find('chat', gone.messageId)).toBeNull();

    const opened = await turns.open(legacy);
    expect(opened).toMatchObject({ begun: 'started', rows: { message: { id: message.id } } });
    expect(await repos.runs.find('chat', message.id)).toMatchObject({ status: 'running', userId: user!.id, jobId: message.id });
  }, 60_000);

  test("the answering call's usage line is written once, with whichever end the turn gets", async () => {
    const { kernel, turns, runs } = chatKernel();
    const lineOf = (turn: TurnRef) => ({
      userId: turn.userId,
      sessionId: turn.sessionId,
      purpose: 'chat' as const,
      provider: 'test',
      model: 'test-model',
      inputTokens: 3,
      outputTokens: 5,
      costUsd: 0,
    });
    const lines = async (turn: TurnRef) => (await database.db.select().from(llmUsage).where(eq(llmUsage.sessionId, turn.sessionId))).length;

    // Answered: with the answer.
    const answered = await newTurn(runs);
    await turns.begin(answered);
    await expect(turns.finish(answered, 'Done', USAGE, [lineOf(answered)])).resolves.toBe('stored');
    expect(await lines(answered)).toBe(1);

    // A cancel came first: nothing with the refused success; the cancelled end writes it.
    const cancelled = await newTurn(runs);
    await turns.begin(cancelled);
    await repos.runs.requestCancel('chat', cancelled.messageId, cancelled.userId);
    await expect(turns.finish(cancelled, 'Done', USAGE, [lineOf(cancelled)])).resolves.toBe('cancel_requested');
    expect(await lines(cancelled)).toBe(0);
    await expect(turns.end(cancelled, { response: 'Done', usage: USAGE }, [lineOf(cancelled)])).resolves.toBe(true);
    expect(await lines(cancelled)).toBe(1);

    // Ended by someone else first (recovery): the late answer is not stored, its line is.
    const recovered = await newTurn(runs);
    await turns.begin(recovered);
    await kernel.recover(later(), 100);
    expect(await repos.runs.find('chat', recovered.messageId)).toMatchObject({ status: 'failed' });
    await expect(turns.finish(recovered, 'Too late', USAGE, [lineOf(recovered)])).resolves.toBe('answered');
    expect(await lines(recovered)).toBe(1);
    expect((await repos.chat.history(recovered.sessionId)).filter((m) => m.role === 'assistant')).toEqual([]);

    // Failed: with the failure's end.
    const failed = await newTurn(runs);
    await turns.begin(failed);
    await expect(turns.fail(failed, 'assistant_failed', 'No', [lineOf(failed)])).resolves.toBe(true);
    expect(await lines(failed)).toBe(1);
  }, 60_000);
});

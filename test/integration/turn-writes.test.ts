import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { createRepositories, type Repositories } from '../../src/models';
import { openDatabase, type Database } from '../../src/models/database';
import type { NewRun } from '../../src/models/runs-repository';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { llmUsage, runs } from '../../src/models/schema';
import { eq } from 'drizzle-orm';

/**
 * The writes of a light run, each riding with another: a turn's user message and its queued run in
 * one statement (with the new session when there is none), the run's start and the turn's rows in
 * one, and the answer's usage line in the statement that stores the answer. On PGlite, or on the
 * server when DATABASE_URL is set.
 */
describe('a turn writes each thing once, beside another', () => {
  let testDb: TestDatabase;
  let database: Database;
  let repos: Repositories;
  const move = { from: ['queued', 'running'] as const, unlessCancelRequested: true };

  beforeAll(async () => {
    testDb = await createTestDatabase();
    database = await openDatabase({ url: testDb.url, dataDir: path.join(os.tmpdir(), 'switchboard-turn-writes') });
    repos = createRepositories(database.db);
  }, 60_000);

  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });

  const newUser = async () => {
    const user = await repos.users.create({ email: `turn-${randomUUID()}@example.com`, name: 'Turn', passwordHash: 'argon2-hash' });
    if (!user) throw new Error('user not created');
    return user;
  };
  const runOf = (userId: string, id = randomUUID()): NewRun => ({ kind: 'chat', id, userId, queue: 'assistant', jobId: id });

  test("a new session's first message takes its run's id, and the queued run is written by the same statement", async () => {
    const owner = await newUser();
    const run = runOf(owner.id);
    const opened = await repos.chat.openSession({ userId: owner.id, deviceId: null, title: 'First', mode: 'none' }, 'Hello?', run);

    expect(opened.messageId).toBe(run.id);
    expect((await repos.chat.history(opened.sessionId)).map((row) => [row.id, row.role, row.content])).toEqual([
      [run.id, 'user', 'Hello?'],
    ]);
    expect(await repos.runs.find('chat', run.id)).toMatchObject({
      userId: owner.id,
      status: 'queued',
      queue: 'assistant',
      jobId: run.id,
      startedAt: null,
    });
  });

  test('a later message of a session and its run go in together; a message refused (its session is gone) leaves no run behind', async () => {
    const owner = await newUser();
    const session = await repos.chat.createSession({ userId: owner.id, deviceId: null, title: 'T', mode: 'none' });
    const run = runOf(owner.id);

    await expect(repos.chat.addTurn(session.id, 'And then?', run)).resolves.toBe(run.id);
    expect((await repos.chat.history(session.id)).map((row) => [row.id, row.content])).toEqual([[run.id, 'And then?']]);
    expect(await repos.runs.find('chat', run.id)).toMatchObject({ status: 'queued', jobId: run.id });

    const orphan = runOf(owner.id);
    await expect(repos.chat.addTurn(randomUUID(), 'Anyone?', orphan)).rejects.toThrow();
    expect(await repos.runs.find('chat', orphan.id)).toBeNull();
  });

  test("a turn's start moves its run and reads its rows with the session's flow; a cancel-requested turn is read but not started", async () => {
    const owner = await newUser();
    const flow = await repos.flows.create({
      userId: owner.id,
      type: 'chatflow',
      name: 'Support',
      definition: { systemPrompt: 'Be brief.' },
    });
    const { sessionId, messageId } = await repos.chat.openSession(
      { userId: owner.id, deviceId: null, title: 'Flow', mode: 'flow', flowId: flow.id },
      'Hi flow',
      runOf(owner.id),
    );

    const started = await repos.chat.startTurn(messageId, move);
    expect(started).toMatchObject({ started: true, run: { status: 'running', id: messageId } });
    expect(started.row).toMatchObject({ session: { id: sessionId, flowId: flow.id }, message: { id: messageId }, reply: null });
    expect(started.row?.flow).toEqual(flow);

    const asked = await repos.chat.openSession(
      { userId: owner.id, deviceId: null, title: 'Stop', mode: 'none' },
      'Stop me',
      runOf(owner.id),
    );
    await repos.runs.requestCancel('chat', asked.messageId, owner.id);
    const refused = await repos.chat.startTurn(asked.messageId, move);
    expect(refused.started).toBe(false);
    expect(refused.run).toMatchObject({ status: 'queued', startedAt: null });
    expect(refused.run?.cancelRequestedAt).toBeInstanceOf(Date);
    expect(refused.row?.message.content).toBe('Stop me');
    expect(refused.row?.flow).toBeNull();
  });

  test("the answer's usage lines are written by the statement that stores it", async () => {
    const owner = await newUser();
    const { sessionId, messageId } = await repos.chat.openSession(
      { userId: owner.id, deviceId: null, title: 'Usage', mode: 'none' },
      'Cost?',
      runOf(owner.id),
    );
    const line = {
      userId: owner.id,
      sessionId,
      purpose: 'chat' as const,
      provider: 'p',
      model: 'm',
      inputTokens: 12,
      outputTokens: 7,
      costUsd: 0.25,
      estimated: true,
    };
    await database.db.transaction((tx) =>
      repos.chat.storeAnswer({ sessionId, role: 'assistant', content: 'Cheap.', replyTo: messageId }, tx, undefined, [
        line,
        { ...line, provider: 'q', estimated: false },
      ]),
    );

    const rows = await database.db.select().from(llmUsage).where(eq(llmUsage.sessionId, sessionId));
    expect(rows.map((row) => [row.provider, row.inputTokens, row.outputTokens, row.costUsd, row.estimated, row.purpose]).sort()).toEqual([
      ['p', 12, 7, 0.25, true, 'chat'],
      ['q', 12, 7, 0.25, false, 'chat'],
    ]);
    expect((await repos.chat.history(sessionId)).map((row) => row.content)).toEqual(['Cost?', 'Cheap.']);
  });

  test("a turn's end moves its run and keeps its answer and usage in one statement, only when the run moves; both or neither", async () => {
    const owner = await newUser();
    const { sessionId, messageId } = await repos.chat.openSession(
      { userId: owner.id, deviceId: null, title: 'End', mode: 'none' },
      'Finish?',
      runOf(owner.id),
    );
    const success = { to: 'succeeded' as const, from: ['queued', 'running'] as const, unlessCancelRequested: true };
    const line = {
      userId: owner.id,
      sessionId,
      purpose: 'chat' as const,
      provider: 'p',
      model: 'm',
      inputTokens: 2,
      outputTokens: 3,
      costUsd: 0,
    };
    const keep = {
      answer: {
        sessionId,
        role: 'assistant' as const,
        content: 'Finished.',
        replyTo: messageId,
        provider: 'p',
        model: 'm',
        inputTokens: 2,
      },
      answeredBy: { deviceId: 'laptop-9' },
      usage: [line],
    };
    const usageRows = async () => (await database.db.select().from(llmUsage).where(eq(llmUsage.sessionId, sessionId))).length;

    const ended = await repos.chat.endTurn(messageId, success, keep);
    expect(ended?.run).toMatchObject({ id: messageId, status: 'succeeded', errorCode: null });
    expect(ended?.run.endedAt).toBeInstanceOf(Date);
    // Nothing else of the session was open: its lane is empty.
    expect(ended?.nextTurn).toBeNull();
    expect((await repos.chat.history(sessionId)).map((row) => [row.role, row.content, row.inputTokens])).toEqual([
      ['user', 'Finish?', 0],
      ['assistant', 'Finished.', 2],
    ]);
    expect((await repos.chat.findOwned(owner.id, sessionId))?.deviceId).toBe('laptop-9');
    expect(await usageRows()).toBe(1);

    // Ended already: a second end moves nothing and keeps nothing.
    expect(await repos.chat.endTurn(messageId, success, keep)).toBeNull();
    expect(await usageRows()).toBe(1);

    // A failure's end keeps its usage lines and its error, no answer.
    const failing = await repos.chat.addTurn(sessionId, 'Again?', runOf(owner.id));
    const behind = await repos.chat.addTurn(sessionId, 'And then?', runOf(owner.id));
    const failure = {
      to: 'failed' as const,
      from: ['queued', 'running'] as const,
      unlessCancelRequested: false,
      errorCode: 'x',
      errorMessage: 'No.',
    };
    // The end's own statement names the next turn of the lane: the one queued behind it.
    expect(await repos.chat.endTurn(failing, failure, { usage: [line] })).toMatchObject({
      run: { status: 'failed', errorCode: 'x', errorMessage: 'No.' },
      nextTurn: behind,
    });
    expect(await repos.chat.laneHead(sessionId)).toBe(behind);
    expect(await usageRows()).toBe(2);
    expect((await repos.chat.history(sessionId)).filter((row) => row.replyTo === failing)).toEqual([]);

    // An answer that cannot be stored (its session is gone) leaves the run open and writes no usage.
    const orphan = await repos.chat.openSession({ userId: owner.id, deviceId: null, title: 'Gone', mode: 'none' }, 'Bye', runOf(owner.id));
    await repos.chat.deleteOwned(owner.id, orphan.sessionId);
    const lost = {
      ...keep,
      answer: { ...keep.answer, sessionId: orphan.sessionId, replyTo: orphan.messageId },
      usage: [{ ...line, sessionId: orphan.sessionId }],
    };
    await expect(repos.chat.endTurn(orphan.messageId, success, lost)).rejects.toThrow();
    expect(await repos.runs.find('chat', orphan.messageId)).toMatchObject({ status: 'queued', endedAt: null });
    expect((await database.db.select().from(llmUsage).where(eq(llmUsage.sessionId, orphan.sessionId))).length).toBe(0);
  });

  test("a lane's head read while the turn before it is being ended waits for that end, and names the turn behind it", async () => {
    // Two connections to one server: an end in flight on one, the lane read on the other.
    const serverDb = await createTestDatabase({ server: serverPostgresUrl(), migrated: true });
    const dataDir = path.join(os.tmpdir(), 'switchboard-turn-writes-lane');
    const ending = await openDatabase({ url: serverDb.url, dataDir });
    const reading = await openDatabase({ url: serverDb.url, dataDir });
    try {
      const endingRepos = createRepositories(ending.db);
      const user = await endingRepos.users.create({ email: `lane-${randomUUID()}@example.com`, name: 'Lane', passwordHash: 'h' });
      const first = await endingRepos.chat.openSession(
        { userId: user!.id, deviceId: null, title: 'Lane', mode: 'none' },
        'One',
        runOf(user!.id),
      );
      const second = await endingRepos.chat.addTurn(first.sessionId, 'Two', runOf(user!.id));
      expect(await createRepositories(reading.db).chat.laneHead(first.sessionId)).toBe(first.messageId);

      let read: Promise<string | undefined> | undefined;
      await ending.db.transaction(async (tx) => {
        await tx.update(runs).set({ status: 'succeeded', endedAt: new Date() }).where(eq(runs.id, first.messageId));
        read = createRepositories(reading.db).chat.laneHead(first.sessionId);
        // The read waits on the locked row: it has not answered while the end is uncommitted.
        const early = await Promise.race([read, new Promise((resolve) => setTimeout(() => resolve('waiting'), 300))]);
        expect(early).toBe('waiting');
      });
      // Once the end commits, the read sees it and names the turn behind it, not the ended one.
      await expect(read).resolves.toBe(second);
    } finally {
      await reading.close();
      await ending.close();
      await serverDb.drop();
    }
  });
});

import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { openDatabase, type Database } from '../../src/models/database';
import { createRepositories, type Repositories } from '../../src/models';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';

/**
 * A generation's persist lock (the generation's row, then its canvas, in one statement) against a
 * canvas deletion on another connection of a real PostgreSQL server: whoever locks first wins, the
 * other waits for its commit, and neither deadlocks.
 */
describe('generation persist lock on a PostgreSQL server', () => {
  let testDb: TestDatabase;
  let database: Database;
  let repos: Repositories;

  beforeAll(async () => {
    testDb = await createTestDatabase({ server: serverPostgresUrl() });
    database = await openDatabase({ url: testDb.url, dataDir: path.join(os.tmpdir(), 'switchboard-persist-lock-test') });
    repos = createRepositories(database.db);
  });

  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });

  const newGeneration = async () => {
    const owner = await repos.users.create({ email: `${randomUUID()}@lock.test`, name: 'Owner', passwordHash: 'x' });
    const canvas = await repos.canvases.create(owner!.id, 'Lock');
    const id = randomUUID();
    await repos.generations.create({ id, canvasId: canvas.id, userId: owner!.id, prompt: 'p', afterId: null });
    return { ownerId: owner!.id, canvasId: canvas.id, id };
  };

  /** Resolves once a session of this database waits on a lock; throws after 5 s. */
  const waitForLockWait = async () => {
    const client = new Client({ connectionString: testDb.url });
    await client.connect();
    try {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const { rows } = await client.query(
          "select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
        );
        if (rows[0].n > 0) return;
        if (Date.now() > deadline) throw new Error('no session waited on a lock within 5 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await client.end();
    }
  };

  /** Resolves when `promise` settles, or with 'pending' after `ms`. */
  const within = <T>(promise: Promise<T>, ms: number) =>
    Promise.race([promise, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);

  test('given the persist holds the lock, a canvas deletion waits for its commit and then removes the persisted blocks', async () => {
    const { ownerId, canvasId, id } = await newGeneration();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => (locked = resolve));

    const persist = repos.db.transaction(async (tx) => {
      const count = await repos.blocks.lockForGeneration(tx, canvasId, id);
      locked();
      await held;
      return repos.blocks.insertMany(tx, {
        locked: { count: count ?? 0 },
        canvasId,
        createdBy: ownerId,
        inputs: [{ type: 'text', content: { text: 'kept until the canvas goes' } }],
        placement: {},
        generationSessionId: id,
      });
    });
    await lockTaken;
    // Both rows are locked: another session cannot take either.
    const other = new Client({ connectionString: testDb.url });
    await other.connect();
    try {
      for (const [table, rowId] of [
        ['generations', id],
        ['canvases', canvasId],
      ])
        await expect(other.query(`select 1 from ${table} where id = $1 for update nowait`, [rowId])).rejects.toMatchObject({
          code: '55P03',
        });
    } finally {
      await other.end();
    }
    const deletion = repos.generations.deleteCanvas(canvasId, async () => undefined);

    // The deletion is seen waiting on a lock (not merely slow), and has not finished.
    await waitForLockWait();
    await expect(within(deletion, 0)).resolves.toBe('pending');
    release();
    await expect(persist).resolves.toHaveLength(1);
    await expect(deletion).resolves.toEqual([expect.objectContaining({ id })]);
    await expect(repos.blocks.listByGeneration(id)).resolves.toEqual([]);
  });

  test('given a canvas deletion committed first, the persist lock finds the generation gone', async () => {
    const { canvasId, id } = await newGeneration();
    await repos.generations.deleteCanvas(canvasId, async () => undefined);

    await expect(repos.db.transaction((tx) => repos.blocks.lockForGeneration(tx, canvasId, id))).resolves.toBeNull();
  });
});

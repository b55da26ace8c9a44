import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { sql, TransactionRollbackError } from 'drizzle-orm';
import { openDatabase, type Database } from '../../src/models/database';
import { rowsOf } from '../../src/models/migrate';
import { seedFromTemplate } from '../../src/models/pglite-template';
import { PgliteThread } from '../../src/models/pglite-thread';
import { UsersRepository } from '../../src/models/users-repository';

/**
 * The embedded database on its own thread, as a server opens it: drizzle and the repositories on
 * the main thread, PGlite's semantics kept across the thread (rows, errors with their fields, one
 * connection whose transactions commit, roll back and hold every other statement back), the files
 * kept across a close, and a lost thread failing every call.
 */
describe('embedded PGlite on its own thread', () => {
  const dirs: string[] = [];
  const freshDir = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-pglite-thread-'));
    dirs.push(dir);
    return dir;
  };
  let dataDir: string;
  let database: Database;
  const lost: Error[] = [];

  beforeAll(async () => {
    dataDir = freshDir();
    database = await openDatabase({ dataDir, thread: { onLost: (error) => lost.push(error) } });
    await database.db.execute(sql`create table thread_items (id int primary key, name text not null unique, doc jsonb, at timestamptz)`);
  });

  afterAll(async () => {
    await database?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const rows = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await database.db.execute(query));

  test('migrated, and the repositories read and write through it', async () => {
    const users = new UsersRepository(database.db);
    const created = await users.create({ email: 'thread@example.com', name: 'Thread', passwordHash: 'x' });
    expect(await users.findByEmail('thread@example.com')).toMatchObject({ id: created!.id, name: 'Thread' });
    expect(await rows<{ n: number }>(sql`select count(*)::int as n from schema_migrations`)).toEqual([{ n: expect.any(Number) }]);
  });

  test('rows cross the thread with their types: JSON, text timestamps, Unicode', async () => {
    await database.db.execute(
      sql`insert into thread_items values (1, ${'Zoë 😀'}, ${JSON.stringify({ a: [1, 2] })}::jsonb, '2026-11-24T01:00:00Z')`,
    );
    expect(await rows(sql`select id, name, doc, at from thread_items where id = 1`)).toEqual([
      { id: 1, name: 'Zoë 😀', doc: { a: [1, 2] }, at: '2026-11-24 01:00:00+00' },
    ]);
  });

  test('a database error keeps its code, constraint and detail', async () => {
    await database.db.execute(sql`insert into thread_items (id, name) values (2, 'two')`);
    const error = await database.db.execute(sql`insert into thread_items (id, name) values (3, 'two')`).catch((e: unknown) => e);
    const cause = (error as { cause?: Record<string, unknown> }).cause ?? (error as Record<string, unknown>);
    expect(cause).toMatchObject({ code: '23505', constraint: 'thread_items_name_key', detail: expect.stringContaining('two') });
    expect(await rows(sql`select id from thread_items where id = 3`)).toEqual([]);
  });

  test('a transaction commits when its callback resolves and rolls back when it throws, savepoints included', async () => {
    await database.db.transaction(async (tx) => {
      await tx.execute(sql`insert into thread_items (id, name) values (10, 'ten')`);
      // A nested transaction is a savepoint: its failure rolls back only its own writes.
      await expect(
        tx.transaction(async (inner) => {
          await inner.execute(sql`insert into thread_items (id, name) values (11, 'eleven')`);
          throw new Error('inner fails');
        }),
      ).rejects.toThrow('inner fails');
    });
    await expect(
      database.db.transaction(async (tx) => {
        await tx.execute(sql`insert into thread_items (id, name) values (12, 'twelve')`);
        throw new Error('outer fails');
      }),
    ).rejects.toThrow('outer fails');
    await expect(
      database.db.transaction(async (tx) => {
        await tx.execute(sql`insert into thread_items (id, name) values (13, 'thirteen')`);
        tx.rollback();
      }),
    ).rejects.toThrow(TransactionRollbackError);
    expect(await rows(sql`select id from thread_items where id between 10 and 13 order by id`)).toEqual([{ id: 10 }]);
  });

  test('an open transaction holds every other statement back until it ends', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const insertedOnce = new Promise<void>((resolve) => (inserted = resolve));
    const transaction = database.db.transaction(async (tx) => {
      await tx.execute(sql`insert into thread_items (id, name) values (20, 'twenty')`);
      inserted();
      await held;
    });
    await insertedOnce;
    const order: string[] = [];
    const outside = rows<{ n: number }>(sql`select count(*)::int as n from thread_items where id = 20`).then((result) => {
      order.push('outside');
      return result;
    });
    // The outside read is queued behind the transaction: it has not answered while the transaction
    // is open (a read that was not held back answers within a few milliseconds).
    await new Promise((resolve) => setTimeout(resolve, 300));
    order.push('commit');
    release();
    await transaction;
    expect(await outside).toEqual([{ n: 1 }]);
    expect(order).toEqual(['commit', 'outside']);
  });

  test('what was written is there after a close and a new open of the same files', async () => {
    const dir = freshDir();
    const first = await openDatabase({ dataDir: dir, thread: { onLost: () => undefined } });
    await first.db.execute(sql`create table kept (id int primary key)`);
    await first.db.execute(sql`insert into kept values (7)`);
    await first.close();
    const second = await openDatabase({ dataDir: dir, thread: { onLost: () => undefined } });
    try {
      expect(rowsOf(await second.db.execute(sql`select id from kept`))).toEqual([{ id: 7 }]);
    } finally {
      await second.close();
    }
  });

  test('a thread that ends fails the calls in flight and every later one, and says so once', async () => {
    const dir = path.join(freshDir(), 'pglite');
    await seedFromTemplate(dir);
    const told: Error[] = [];
    const thread = await PgliteThread.open(dir, (error) => told.push(error));
    expect((await thread.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
    const inFlight = thread.query('select pg_sleep(2)');
    await (thread as unknown as { worker: Worker }).worker.terminate();
    await expect(inFlight).rejects.toThrow(/embedded database thread exited/);
    await expect(thread.query('select 1')).rejects.toThrow(/embedded database thread exited/);
    expect(told).toHaveLength(1);
    expect(lost).toEqual([]);
  });

  test('a directory PGlite cannot open fails the open with its error', async () => {
    const notADirectory = path.join(freshDir(), 'file');
    writeFileSync(notADirectory, 'not a database');
    await expect(PgliteThread.open(notADirectory)).rejects.toThrow();
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite, type Transaction } from '@electric-sql/pglite';

/**
 * What `PgliteStatements` (src/models/pglite-statements.ts) takes from PGlite beyond its documented
 * API (decision 0216): the exact version, the two locks `_runExclusiveTransaction` and
 * `_runExclusiveQuery` and how they exclude `transaction()` and `query()`, `_checkReady`, and the
 * shape of `execProtocol`'s parsed messages with `throwOnError: false`. A PGlite release that
 * changes any of these fails here before it can change what the embedded database returns.
 */
describe('PGlite, as PgliteStatements relies on it', () => {
  let pg: PGlite;

  beforeAll(async () => {
    pg = new PGlite();
    await pg.waitReady;
    await pg.exec(`create table contract_items (id int primary key, name text not null)`);
  });

  afterAll(async () => {
    await pg.close();
  });

  test('the installed version is the one package.json pins, exactly', () => {
    const root = path.join(__dirname, '..', '..');
    const pinned = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> })
      .dependencies['@electric-sql/pglite'];
    const installed = (
      JSON.parse(readFileSync(path.join(root, 'node_modules', '@electric-sql', 'pglite', 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(installed).toBe(pinned);
  });

  test('_runExclusiveTransaction shares the lock of transaction(): it waits for an open one', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const order: string[] = [];
    const transaction = pg.transaction(async (tx: Transaction) => {
      await tx.query('select 1');
      opened();
      await gate;
      order.push('transaction');
    });
    await open;
    const exclusive = pg._runExclusiveTransaction(async () => void order.push('exclusive'));
    // A round through the query lock (free while the transaction waits): the exclusive function
    // had its turn to run, and has not, because the transaction holds the other lock.
    await pg.runExclusive(async () => undefined);
    expect(order).toEqual([]);
    release();
    await Promise.all([transaction, exclusive]);
    expect(order).toEqual(['transaction', 'exclusive']);
  });

  test('_runExclusiveQuery excludes query(); the public runExclusive takes only that lock, not the transaction one', async () => {
    const order: string[] = [];
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    let finish!: () => void;
    const held = pg._runExclusiveQuery(async () => {
      inside();
      await new Promise<void>((resolve) => (finish = resolve));
      order.push('held');
    });
    await entered;
    const query = pg.query('select 1').then(() => order.push('query'));
    finish();
    await Promise.all([held, query]);
    expect(order).toEqual(['held', 'query']);

    // If PGlite's public runExclusive ever waits for transactions too, PgliteStatements can use it
    // instead of the two private locks: this expectation then fails, as a reminder.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const transaction = pg.transaction(async (tx: Transaction) => {
      await tx.query('select 1');
      opened();
      await gate;
    });
    await open;
    const inTransaction = await pg.runExclusive(async () => pg.isInTransaction());
    release();
    await transaction;
    expect(inTransaction).toBe(true);
  });

  test('_checkReady resolves on an open instance and rejects on a closed one', async () => {
    await expect(pg._checkReady()).resolves.toBeUndefined();
    const other = new PGlite();
    await other.waitReady;
    await other.close();
    await expect(other._checkReady()).rejects.toThrow(/closed/);
  });

  test('execProtocol with throwOnError false hands back the parsed backend messages, an error among them', async () => {
    // Parse "s1", Bind, Describe portal, Execute, Sync, written by hand: the frames PgliteStatements sends.
    const frame = (type: string, body: Buffer) => {
      const head = Buffer.alloc(5);
      head[0] = type.charCodeAt(0);
      head.writeInt32BE(body.length + 4, 1);
      return Buffer.concat([head, body]);
    };
    const cstring = (text: string) => Buffer.concat([Buffer.from(text), Buffer.from([0])]);
    const int16 = (n: number) => {
      const b = Buffer.alloc(2);
      b.writeInt16BE(n);
      return b;
    };
    const int32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(n);
      return b;
    };
    const call = (sql: string, value: string) =>
      Buffer.concat([
        frame('P', Buffer.concat([cstring('contract_s1'), cstring(sql), int16(0)])),
        frame(
          'B',
          Buffer.concat([
            cstring(''),
            cstring('contract_s1'),
            int16(0),
            int16(1),
            int32(Buffer.byteLength(value)),
            Buffer.from(value),
            int16(0),
          ]),
        ),
        frame('D', Buffer.concat([Buffer.from('P'), cstring('')])),
        frame('E', Buffer.concat([cstring(''), int32(0)])),
        frame('S', Buffer.alloc(0)),
        frame('C', Buffer.concat([Buffer.from('S'), cstring('contract_s1')])),
        frame('S', Buffer.alloc(0)),
      ]);

    await pg.query(`insert into contract_items values (1, 'one')`);
    const { messages } = await pg.execProtocol(call('select id, name from contract_items where id = $1', '1'), {
      throwOnError: false,
      syncToFs: false,
    });
    const byName = (name: string) => messages.filter((message) => message.name === name) as unknown as Array<Record<string, unknown>>;
    expect(byName('parseComplete')).toHaveLength(1);
    expect(byName('rowDescription')[0].fields).toEqual([
      expect.objectContaining({ name: 'id', dataTypeID: 23 }),
      expect.objectContaining({ name: 'name', dataTypeID: 25 }),
    ]);
    expect(byName('dataRow').map((row) => row.fields)).toEqual([['1', 'one']]);
    expect(byName('commandComplete')[0].text).toBe('SELECT 1');
    expect(pg.parsers[23]?.('42', 23)).toBe(42);

    const failed = await pg.execProtocol(call('select id from contract_items where id = $1', 'not a number'), {
      throwOnError: false,
      syncToFs: false,
    });
    expect(failed.messages.find((message) => message.name === 'error')).toMatchObject({ code: '22P02' });
    // The backend is usable afterwards: the error ended at Sync.
    expect((await pg.query<{ n: number }>('select 1 as n')).rows).toEqual([{ n: 1 }]);
  });
});

import { Pool, type PoolClient } from 'pg';
import { serverClientClass, type QueryTiming } from '../../src/models/server-client';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';

/**
 * The PostgreSQL server's pool client names the texts it runs again, so the server parses and plans
 * them once per connection: against the server's own view of a connection's prepared statements
 * (`pg_prepared_statements`), with one connection per pool so every call shares it.
 */
describe('statements on a PostgreSQL server connection', () => {
  let database: TestDatabase;
  const pools: Pool[] = [];

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    const setup = new Pool({ connectionString: database.url, max: 1 });
    await setup.query(`create table items (id int primary key, name text not null unique);
      insert into items values (1, 'one'), (2, 'two');`);
    await setup.end();
  });

  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.end()));
    await database.drop();
  });

  const poolOf = (capacity?: number, timing: QueryTiming = {}) => {
    const pool = new Pool({ connectionString: database.url, max: 1, Client: serverClientClass(timing, capacity) });
    // As the app's pool does: a connection the server ends while idle (the database dropped at the
    // end) emits 'error' on its pool, which would otherwise be an unhandled error.
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  };
  const prepared = async (on: Pool | PoolClient) =>
    (await on.query<{ statement: string }>('select statement from pg_prepared_statements order by prepare_time')).rows.map(
      (row) => row.statement,
    );

  /**
   * A `select *` of a new table `table`, named on `pool`'s connection (run twice), after which a
   * migration adds a column: the server's named statement now returns another row type.
   */
  const staleStatement = async (pool: Pool, table: string): Promise<string> => {
    await pool.query(`create table ${table} (id int primary key)`);
    await pool.query(`insert into ${table} values (1)`);
    const text = `select * from ${table} where id = $1`;
    for (let run = 0; run < 2; run += 1) await pool.query(text, [1]);
    await pool.query(`alter table ${table} add column label text`);
    return text;
  };

  test('a text with parameters is named from its second run on; the rows are the same each time', async () => {
    const pool = poolOf();
    const text = 'select name from items where id = $1';
    expect((await pool.query(text, [1])).rows).toEqual([{ name: 'one' }]);
    expect(await prepared(pool)).toEqual([]);
    expect((await pool.query({ text, values: [2] })).rows).toEqual([{ name: 'two' }]);
    expect((await pool.query(text, [1])).rows).toEqual([{ name: 'one' }]);
    expect(await prepared(pool)).toEqual([text]);
  });

  test('a text without parameters keeps the simple protocol: several statements in one text still run', async () => {
    const pool = poolOf();
    for (let i = 0; i < 2; i += 1) {
      const results = (await pool.query('select 1 as a; select 2 as b')) as unknown as Array<{ rows: unknown[] }>;
      expect(results.map((result) => result.rows)).toEqual([[{ a: 1 }], [{ b: 2 }]]);
    }
    expect(await prepared(pool)).toEqual([]);
  });

  test('past its capacity a connection runs new texts unnamed, with the same results', async () => {
    const pool = poolOf(2);
    const texts = Array.from({ length: 4 }, (_, i) => `select ${i} as n, name from items where id = $1`);
    for (const text of texts) for (let run = 0; run < 2; run += 1) await pool.query(text, [1]);
    for (const [i, text] of texts.entries()) expect((await pool.query(text, [2])).rows).toEqual([{ n: i, name: 'two' }]);
    expect(await prepared(pool)).toEqual(texts.slice(0, 2));
  });

  test('a name stands for its text on every connection: two connections name one text alike', async () => {
    const [one, two] = [poolOf(), poolOf()];
    const text = 'select id from items where name = $1';
    for (const pool of [one, two]) for (let run = 0; run < 2; run += 1) await pool.query(text, ['one']);
    const names = async (pool: Pool) =>
      (await pool.query<{ name: string }>('select name from pg_prepared_statements where statement = $1', [text])).rows.map(
        (row) => row.name,
      );
    const [first, second] = [await names(one), await names(two)];
    expect(first).toHaveLength(1);
    expect(second).toEqual(first);
  });

  test('a connection whose server lost a statement it named stops naming; the call succeeds', async () => {
    const pool = poolOf();
    const text = "select name || '!' as loud from items where id = $1";
    await pool.query(text, [1]);
    await pool.query(text, [1]);
    expect(await prepared(pool)).toEqual([text]);
    // What a transaction-mode pooler that does not keep prepared statements looks like from here.
    await pool.query('deallocate all');
    expect((await pool.query(text, [2])).rows).toEqual([{ loud: 'two!' }]);
    for (const id of [1, 2]) await pool.query("select name || '?' as asked from items where id = $1", [id]);
    expect((await pool.query(text, [1])).rows).toEqual([{ loud: 'one!' }]);
    expect(await prepared(pool)).toEqual([]);
  });

  test('a statement its server session already holds under its name (parsed by another client) is run unnamed', async () => {
    const [other, pool] = [poolOf(), poolOf()];
    const text = 'select name from items where id = $1 and name <> $2';
    for (let run = 0; run < 2; run += 1) await other.query(text, [1, 'x']);
    const [{ name }] = (await other.query<{ name: string }>('select name from pg_prepared_statements where statement = $1', [text])).rows;
    // As if a pooler handed this connection a server session the other client had prepared it on.
    await pool.query(`prepare "${name}" as ${text}`);
    await pool.query(text, [1, 'x']);
    expect((await pool.query(text, [2, 'x'])).rows).toEqual([{ name: 'two' }]);
    expect((await pool.query(text, [1, 'x'])).rows).toEqual([{ name: 'one' }]);
  });

  test('after a migration changes what a * returns: outside a transaction the call succeeds, inside one it fails once', async () => {
    const pool = poolOf();
    const text = await staleStatement(pool, 'things');
    expect((await pool.query(text, [1])).rows).toEqual([{ id: 1, label: null }]);

    await pool.query('alter table things add column size int');
    const client = await pool.connect();
    try {
      await client.query('begin');
      await expect(client.query(text, [1])).rejects.toMatchObject({ code: '0A000' });
      await client.query('rollback');
      expect((await client.query(text, [1])).rows).toEqual([{ id: 1, label: null, size: null }]);
      await client.query('begin');
      expect((await client.query(text, [1])).rows).toEqual([{ id: 1, label: null, size: null }]);
      await client.query('commit');
    } finally {
      client.release();
    }
  });

  test('a transaction opened with options is one too: the stale statement fails with its own error, not as a retry in an aborted transaction', async () => {
    const pool = poolOf();
    const text = await staleStatement(pool, 'options_things');
    const client = await pool.connect();
    try {
      await client.query('begin isolation level repeatable read read only');
      await expect(client.query(text, [1])).rejects.toMatchObject({ code: '0A000' });
      await client.query('rollback');
    } finally {
      client.release();
    }
  });

  test('a failed statement is not sent again after a statement sent behind it: a commit queued after it stays the end', async () => {
    const pool = poolOf();
    await pool.query('create table queued_log (id int)');
    const text = await staleStatement(pool, 'queued_things');
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query('insert into queued_log values (1)');
      // Both sent before either answers: pg queues the commit behind the stale statement.
      const stale = client.query(text, [1]).then(
        () => 'ran',
        (error: { code?: string }) => error.code,
      );
      const commit = client.query('commit');
      expect(await stale).toBe('0A000');
      expect((await commit).command).toBe('ROLLBACK');
    } finally {
      client.release();
    }
    expect((await pool.query('select count(*)::int as n from queued_log')).rows).toEqual([{ n: 0 }]);
  });

  test("outside a transaction too, a failed statement with another sent behind it is not sent again: the order stays the caller's", async () => {
    const pool = poolOf();
    const text = await staleStatement(pool, 'ordered_things');
    const client = await pool.connect();
    try {
      const order: string[] = [];
      const stale = client.query(text, [1]).then(
        () => order.push('stale ran'),
        (error: { code?: string }) => order.push(`stale ${error.code}`),
      );
      const behind = client.query('select 1').then(() => order.push('behind ran'));
      await Promise.all([stale, behind]);
      expect(order).toEqual(['stale 0A000', 'behind ran']);
      // The next call alone is parsed again and succeeds.
      expect((await client.query(text, [1])).rows).toEqual([{ id: 1, label: null }]);
    } finally {
      client.release();
    }
  });

  test('a batch of more than a hundred parameters, whose text changes with its size, is never named', async () => {
    const pool = poolOf();
    const ids = Array.from({ length: 101 }, (_, i) => i + 1);
    const text = `select count(*)::int as n from items where id in (${ids.map((_, i) => `$${i + 1}`).join(', ')})`;
    for (let run = 0; run < 3; run += 1) expect((await pool.query(text, ids)).rows).toEqual([{ n: 2 }]);
    expect(await prepared(pool)).toEqual([]);
  });

  test('a query config with a callback of its own is answered through it, every time', async () => {
    const pool = poolOf();
    const client = await pool.connect();
    try {
      const text = 'select name from items where id = $1';
      for (const id of [1, 2, 1]) {
        const rows = await new Promise<unknown[]>((resolve, reject) => {
          const config = {
            text,
            values: [id],
            callback: (error: Error | null, result: { rows: unknown[] }) => (error ? reject(error) : resolve(result.rows)),
          };
          (client.query as unknown as (config: unknown) => void)(config);
        });
        expect(rows).toEqual([{ name: id === 1 ? 'one' : 'two' }]);
      }
    } finally {
      client.release();
    }
  });

  test('an error of a named statement reaches the caller with its code, and is timed as a failure', async () => {
    const observed: boolean[] = [];
    const pool = poolOf(undefined, { observe: (_seconds, failed) => observed.push(failed) });
    const text = 'insert into items (id, name) values ($1, $2)';
    const codes: unknown[] = [];
    for (let i = 0; i < 3; i += 1)
      codes.push(
        await pool.query(text, [1, 'dup']).then(
          () => 'inserted',
          (error: { code?: string }) => error.code,
        ),
      );
    expect(codes).toEqual(['23505', '23505', '23505']);
    expect(observed).toEqual([true, true, true]);
    // pg's pool replaces a connection whose query failed; the new one names the text afresh.
    await pool.query(text, [3, 'three']);
    await pool.query('delete from items where id = $1', [3]);
    expect((await pool.query('select count(*)::int as n from items')).rows).toEqual([{ n: 2 }]);
  });
});

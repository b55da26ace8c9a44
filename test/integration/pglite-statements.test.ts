import { PGlite, types, type Transaction } from '@electric-sql/pglite';
import { PgliteStatements } from '../../src/models/pglite-statements';

/**
 * Queries as one call to PGlite's backend with their statements kept parsed (decision
 * 0164), against PGlite's own `query` on the same instance: the same rows, fields, counts and
 * errors; statements cached, evicted and re-parsed when the backend lost them; the same locks.
 */
describe('PgliteStatements', () => {
  let pg: PGlite;
  let statements: PgliteStatements;

  beforeAll(async () => {
    pg = new PGlite();
    await pg.waitReady;
    statements = new PgliteStatements(pg, 4);
    await pg.exec(`
      create table items (id int primary key, name text not null unique, flag boolean, doc jsonb, at timestamptz, price numeric(10,2), tags text[], scores int[]);
      insert into items values
        (1, 'one', true, '{"a":[1,2]}', '2026-11-24T01:00:00Z', 12.50, '{x,"y z"}', '{1,2}'),
        (2, 'Zoë 😀', false, null, null, null, null, null);
    `);
  });

  afterAll(async () => {
    await pg.close();
  });

  const prepared = async () =>
    (await pg.query<{ name: string; statement: string }>('select name, statement from pg_prepared_statements order by name')).rows;

  test('rows, fields and counts are what PGlite query returns, in both row modes and with per-query parsers', async () => {
    const cases: Array<[string, unknown[], Parameters<PGlite['query']>[2]]> = [
      ['select * from items order by id', [], undefined],
      ['select * from items where id = $1', [1], { rowMode: 'array' }],
      ['select name, flag from items where name = $1 or flag = $2', ['Zoë 😀', true], undefined],
      ['select id from items where id > $1', [99], undefined],
      [
        'select $1::text as echoed, $2::int + 1 as next, $3::boolean as yes, $4::bigint as big',
        ['a\'b"c', 41, false, 9007199254740993n],
        undefined,
      ],
      ['select at, price from items where id = $1', [1], { parsers: { [types.TIMESTAMPTZ]: (value: string) => `parsed:${value}` } }],
      ['update items set flag = $1 where id = any($2::int[])', [true, '{1,2}'], undefined],
      ['update items set flag = flag where id = -1', [], undefined],
    ];
    for (const [text, params, options] of cases) {
      const ours = await statements.query(text, params, options);
      const theirs = await pg.query(text, params, options);
      expect({ text, ours }).toEqual({ text, ours: theirs });
    }
    const inserted = await statements.query('insert into items (id, name) values ($1, $2), ($3, $4) returning id', [
      10,
      'ten',
      11,
      'eleven',
    ]);
    expect(inserted).toMatchObject({ affectedRows: 2, rows: [{ id: 10 }, { id: 11 }] });
    const deleted = await statements.query('delete from items where id >= $1', [10]);
    expect(deleted.affectedRows).toBe(2);
    expect(deleted.rows).toEqual([]);
  });

  test('a lone surrogate or a null parameter is stored as PGlite query stores it', async () => {
    const lone = `x${'\uD800'}y`;
    await statements.query('insert into items (id, name, doc) values ($1, $2, $3)', [20, lone, null]);
    await pg.query('insert into items (id, name, doc) values ($1, $2, $3)', [21, `${lone}2`, null]);
    const rows = (await pg.query<{ name: string; doc: unknown }>('select name, doc from items where id in (20, 21) order by id')).rows;
    expect(rows).toEqual([
      { name: 'x\uFFFDy', doc: null },
      { name: 'x\uFFFDy2', doc: null },
    ]);
    await pg.query('delete from items where id >= 20');
  });

  test('errors carry the code, constraint and query as PGlite query errors do, and the next query runs', async () => {
    const error = (await statements.query('insert into items (id, name) values ($1, $2)', [1, 'dup']).catch((e: unknown) => e)) as Record<
      string,
      unknown
    >;
    const theirs = (await pg.query('insert into items (id, name) values ($1, $2)', [1, 'dup']).catch((e: unknown) => e)) as Record<
      string,
      unknown
    >;
    expect(error).toBeInstanceOf(Error);
    expect({ code: error.code, constraint: error.constraint, message: error.message, query: error.query, params: error.params }).toEqual({
      code: theirs.code,
      constraint: theirs.constraint,
      message: theirs.message,
      query: theirs.query,
      params: theirs.params,
    });
    expect(error.code).toBe('23505');
    expect((await statements.query('select count(*)::int as n from items', [])).rows).toEqual([{ n: 2 }]);
  });

  test('a text is parsed once and then run by name; a text that does not parse is not kept and fails the same way again', async () => {
    const text = 'select name from items where id = $1 /* cached */';
    await statements.query(text, [1]);
    await statements.query(text, [2]);
    expect((await prepared()).filter((row) => row.statement === text)).toHaveLength(1);

    const broken = 'selec name from items where id = $1';
    for (let i = 0; i < 2; i += 1) {
      await expect(statements.query(broken, [1])).rejects.toMatchObject({ code: '42601' });
    }
    expect((await prepared()).some((row) => row.statement === broken)).toBe(false);
  });

  test('past its capacity the least recently used statement is closed; one the backend lost is parsed again', async () => {
    const texts = Array.from({ length: 6 }, (_, i) => `select ${i} as n, name from items where id = $1`);
    for (const text of texts) await statements.query(text, [1]);
    await statements.query(texts[5], [1]); // the call that closes what the last eviction left
    const kept = (await prepared()).map((row) => row.statement);
    expect(kept.length).toBeLessThanOrEqual(4);
    expect(kept).toContain(texts[5]);
    expect(kept).not.toContain(texts[0]);

    await pg.exec('deallocate all');
    expect(await prepared()).toEqual([]);
    expect((await statements.query(texts[5], [2])).rows).toEqual([{ n: 5, name: 'Zoë 😀' }]);
    expect((await prepared()).map((row) => row.statement)).toEqual([texts[5]]);
  });

  test('inside a transaction queries are part of it; an instance query waits for the transaction instead of joining it', async () => {
    const order: string[] = [];
    let insertedInside!: () => void;
    const inside = new Promise<void>((resolve) => (insertedInside = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const transaction = pg
      .transaction(async (tx: Transaction) => {
        await statements.query('insert into items (id, name) values ($1, $2)', [30, 'thirty'], undefined, tx);
        expect(
          (await statements.query<{ n: number }>('select count(*)::int as n from items where id = $1', [30], undefined, tx)).rows[0].n,
        ).toBe(1);
        insertedInside();
        await gate;
        order.push('rollback');
        await tx.rollback();
      })
      .catch((e: unknown) => e);
    await inside;
    const outside = statements.query<{ n: number }>('select count(*)::int as n from items where id = $1', [30]).then((result) => {
      order.push('outside');
      return result.rows[0].n;
    });
    release();
    await transaction;
    expect(await outside).toBe(0);
    expect(order).toEqual(['rollback', 'outside']);
  });

  test('parameters it cannot write as text, a blob or parameter types are left to PGlite query', () => {
    expect(PgliteStatements.handles(['a', 1, true, null, undefined, 2n], undefined)).toBe(true);
    expect(PgliteStatements.handles([new Date()], undefined)).toBe(false);
    expect(PgliteStatements.handles([{ a: 1 }], undefined)).toBe(false);
    expect(PgliteStatements.handles([new Uint8Array(1)], undefined)).toBe(false);
    expect(PgliteStatements.handles([], { paramTypes: [types.INT4] })).toBe(false);
    expect(PgliteStatements.handles([], { blob: new Blob(['x']) })).toBe(false);
  });
});

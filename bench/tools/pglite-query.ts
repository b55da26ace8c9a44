/**
 * What one embedded query costs through PGlite's public `query` (parse, describe, bind, describe,
 * execute, sync: six calls to the backend, the text parsed and planned every time) and through
 * `PgliteStatements` (one `execProtocol` call, the statement kept parsed under a name), on the same
 * in-memory instance, in alternating rounds: CPU per query (user + system) for a primary-key
 * select, a select of a few rows by an indexed column, and an update by primary key.
 *
 *   node -r ./bench/register.cjs bench/tools/pglite-query.ts [queries=2000] [rounds=3]
 */
import { PGlite } from '@electric-sql/pglite';
import { PgliteStatements } from '../../src/models/pglite-statements';

const [count = 2_000, rounds = 3] = process.argv.slice(2).map(Number);

const workloads: Array<[string, string, (i: number) => unknown[]]> = [
  ['select by pk', 'select id, canvas_id, status, prompt, created_at from gens where id = $1', (i) => [`g${i % 500}`]],
  ['select 5 rows', 'select id, status from gens where canvas_id = $1 order by created_at desc limit 5', (i) => [`c${i % 50}`]],
  ['update by pk', 'update gens set status = $1, updated_at = now() where id = $2', (i) => [i % 2 ? 'running' : 'queued', `g${i % 500}`]],
];

async function main(): Promise<void> {
  const pg = new PGlite();
  await pg.waitReady;
  await pg.exec(`
    create table gens (id text primary key, canvas_id text not null, status text not null, prompt text not null,
                       created_at timestamptz not null default now(), updated_at timestamptz not null default now());
    create index on gens (canvas_id, created_at);
    insert into gens (id, canvas_id, status, prompt)
      select 'g' || n, 'c' || (n % 50), 'queued', repeat('a prompt ', 20) from generate_series(0, 499) as n;
  `);
  const statements = new PgliteStatements(pg);
  const ways: Array<[string, (text: string, params: unknown[]) => Promise<unknown>]> = [
    ['PGlite.query', (text, params) => pg.query(text, params)],
    ['PgliteStatements', (text, params) => statements.query(text, params)],
  ];
  console.log(
    `node ${process.version}, PGlite ${(await pg.query<{ v: string }>('select version() as v')).rows[0].v.split(' ')[1]}, ${count} queries a round`,
  );
  for (let round = -1; round < rounds; round += 1) {
    for (const [workload, text, params] of workloads) {
      for (const [way, run] of ways) {
        const n = round < 0 ? 200 : count;
        const cpu = process.cpuUsage();
        for (let i = 0; i < n; i += 1) await run(text, params(i));
        const used = process.cpuUsage(cpu);
        if (round >= 0)
          console.log(
            `${workload.padEnd(14)} ${way.padEnd(17)} ${((used.user + used.system) / n).toFixed(1).padStart(7)} µs CPU per query`,
          );
      }
    }
  }
  await pg.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

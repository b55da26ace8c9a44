/**
 * What one generation asks of Redis and the database, counted (the worker-CPU target): every role in
 * this process, a scripted model writing N blocks at once, and for one generation after warm-ups
 * every Redis command and PGlite statement from POST to `complete`, grouped by name and by the
 * first Switchboard frame that issued it. Counts do not depend on the machine's load, so two trees
 * can be compared on a busy machine.
 *
 *   node -r ./bench/register.cjs bench/tools/path-count.ts [--blocks=20] [--runs=3]
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import Redis from 'ioredis';
import { startEmbeddedRedis } from '../../src/app/embedded-redis';
import { createCanvas, registerUser } from '../../test/support/http';
import { startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { singleBenchRedis } from '../lib/bench-redis';
import { startBulkModel } from '../lib/models';
import { generateStream } from '../lib/sse-client';
import { settle } from '../lib/timing';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const BLOCKS = Number(arg('blocks') ?? 20);
const RUNS = Number(arg('runs') ?? 3);

let recording = false;
const seen = new Map<string, number>();

/** The first frame under src/ of the current stack (who issued the command). */
function origin(): string {
  const stack = new Error().stack?.split('\n') ?? [];
  const frame = stack.find((line) => line.includes('/src/') && !line.includes('/src/lib/redis.ts'));
  return (
    frame
      ?.replace(/.*\/src\//, '')
      .replace(/\)$/, '')
      .replace(/:\d+$/, '') ?? '(library)'
  );
}

function count(what: string) {
  if (!recording) return;
  const key = `${what}  ← ${origin()}`;
  seen.set(key, (seen.get(key) ?? 0) + 1);
}

function trace() {
  const redis = Redis.prototype as unknown as { sendCommand(command: { name: string }): unknown };
  const send = redis.sendCommand;
  redis.sendCommand = function (this: unknown, command) {
    count(`redis ${command.name}`);
    return send.call(this, command);
  };
  type Query = (...args: unknown[]) => Promise<unknown>;
  const counted = (method: string, original: Query): Query =>
    function (this: unknown, ...args: unknown[]) {
      const sql = typeof args[0] === 'string' ? args[0].replace(/\s+/g, ' ').slice(0, 60) : '';
      count(`pg ${method} ${sql}`);
      return original.apply(this, args);
    };
  const base = Object.getPrototypeOf(PGlite.prototype) as Record<string, Query>;
  for (const method of ['query', 'exec']) base[method] = counted(method, base[method]);
  // A transaction's statements go through its own handle: BEGIN and COMMIT count as statements too.
  const transaction = base.transaction;
  base.transaction = function (this: unknown, callback: unknown) {
    count('pg transaction BEGIN … COMMIT (2 statements)');
    count('pg transaction BEGIN … COMMIT (2 statements)');
    return transaction.call(this, (tx: Record<string, Query>) => {
      for (const method of ['query', 'exec']) tx[method] = counted(`${method} (in transaction)`, tx[method].bind(tx));
      return (callback as (tx: unknown) => unknown)(tx);
    });
  };
}

async function main() {
  trace();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-pc-'));
  const redis = await startEmbeddedRedis(dataDir);
  const model = await startBulkModel(BLOCKS);
  const app = await startInProcessSwitchboard({
    redis: singleBenchRedis(redis.url),
    keyPrefix: uniquePrefix('count'),
    dataDir,
    endpoint: { baseURL: model.baseURL, apiKey: 'bench', provider: 'scripted', models: ['scripted'] },
  });
  try {
    const owner = await registerUser(app.api, 'Count');
    const canvasId = await createCanvas(app.api, owner, 'Count canvas');
    for (let i = 0; i < RUNS; i += 1) {
      recording = i === RUNS - 1;
      await generateStream(app.api, owner.accessToken, canvasId, `Write ${BLOCKS} paragraphs [run:c${i}]`);
      // Work after `complete` (the broadcast's last chunk, usage, job completion) belongs to it too.
      await settle(500);
    }
    recording = false;
    const rows = [...seen].sort((a, b) => b[1] - a[1]);
    const total = (prefix: string) => rows.filter(([key]) => key.startsWith(prefix)).reduce((sum, [, n]) => sum + n, 0);
    for (const [key, n] of rows) console.log(String(n).padStart(4), key);
    console.log(JSON.stringify({ blocks: BLOCKS, redisCommands: total('redis'), pgStatements: total('pg') }));
  } finally {
    await app.stop();
    await model.close();
    await redis.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

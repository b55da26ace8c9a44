/**
 * What one run asks of Redis and the database, counted: every role in this process and, for one
 * run after warm-ups, every Redis command and PGlite statement from the POST to its end, grouped
 * by name and by the first Switchboard frame that issued it. A generation (the default: a scripted
 * model writing N blocks at once, to `complete`) or one of the lightest runs (`--run=chat`, a chat
 * turn without a device, or `--run=chatflow`, a chatflow turn: the stand-in model's short text,
 * to `final`). Counts do not depend on the machine's load, so two trees can be compared on a busy
 * machine.
 *
 * `--cluster`: on a local 3-master Redis Cluster instead of one embedded redis-server.
 *
 *   node -r ./bench/register.cjs bench/tools/path-count.ts [--run=generation|chat|chatflow] [--blocks=20] [--runs=3] [--cluster]
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import Redis from 'ioredis';
import { startEmbeddedRedis } from '../../src/app/embedded-redis';
import { startRedisCluster } from '../../test/support/redis-cluster';
import { PgliteStatements } from '../../src/models/pglite-statements';
import { createCanvas, registerUser, type TestUser } from '../../test/support/http';
import { startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { clusterBenchRedis, singleBenchRedis } from '../lib/bench-redis';
import { startBulkModel } from '../lib/models';
import { generateStream } from '../lib/sse-client';
import { settle } from '../lib/timing';
import { StreamModel } from '../scenarios/realistic-stream';
import { createChatflow } from '../scenarios/run-throughput';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const BLOCKS = Number(arg('blocks') ?? 20);
const RUNS = Number(arg('runs') ?? 3);
const RUN = arg('run') ?? 'generation';
const CLUSTER = process.argv.includes('--cluster');
if (!['generation', 'chat', 'chatflow'].includes(RUN)) throw new Error(`--run=${RUN}: expected generation, chat or chatflow`);

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
  // Most statements take the app's own one-call way to PGlite rather than its `query`.
  const statements = PgliteStatements.prototype as unknown as Record<string, Query>;
  statements.query = counted('statement', statements.query);
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
  const redis = CLUSTER ? await startRedisCluster(3) : await startEmbeddedRedis(dataDir);
  const bulk = RUN === 'generation' ? await startBulkModel(BLOCKS) : undefined;
  const stream = bulk ? undefined : await StreamModel.start();
  const app = await startInProcessSwitchboard({
    redis: 'nodes' in redis ? clusterBenchRedis(redis.ports) : singleBenchRedis(redis.url),
    keyPrefix: uniquePrefix('count'),
    dataDir,
    endpoint: bulk ? { baseURL: bulk.baseURL, apiKey: 'bench', provider: 'scripted', models: ['scripted'] } : stream!.endpoint,
  });
  try {
    const owner = await registerUser(app.api, 'Count');
    const once = await oneRun(app.api, owner);
    for (let i = 0; i < RUNS; i += 1) {
      recording = i === RUNS - 1;
      await once(i);
      // Work after the run's end (a broadcast's last chunk, usage, job completion) belongs to it too.
      await settle(500);
    }
    recording = false;
    const rows = [...seen].sort((a, b) => b[1] - a[1]);
    const total = (prefix: string) => rows.filter(([key]) => key.startsWith(prefix)).reduce((sum, [, n]) => sum + n, 0);
    for (const [key, n] of rows) console.log(String(n).padStart(4), key);
    console.log(
      JSON.stringify({ run: RUN, ...(bulk ? { blocks: BLOCKS } : {}), redisCommands: total('redis'), pgStatements: total('pg') }),
    );
  } finally {
    await app.stop();
    await bulk?.close();
    await stream?.stop();
    await redis.stop();
  }
}

/** One run of the chosen kind, numbered (its prompt differs, as a client's would). */
async function oneRun(api: string, owner: TestUser): Promise<(i: number) => Promise<void>> {
  if (RUN === 'generation') {
    const canvasId = await createCanvas(api, owner, 'Count canvas');
    return async (i) => {
      await generateStream(api, owner.accessToken, canvasId, `Write ${BLOCKS} paragraphs [run:c${i}]`);
    };
  }
  let url = `${api}/chat/stream`;
  let extra: Record<string, unknown> = { tools: 'none' };
  if (RUN === 'chatflow') {
    url = `${api}/flows/${await createChatflow(api, owner)}/chat/stream`;
    extra = {};
  }
  return async (i) => {
    // The `[text]` marker makes the stand-in model answer a short text.
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: `When does the plan ship (${i})? [text]`, ...extra }),
    });
    const text = await res.text();
    if (!text.includes('event: final')) throw new Error(`${RUN}: the stream ended without final (${res.status}): ${text.slice(0, 300)}`);
  };
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

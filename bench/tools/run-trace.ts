/**
 * What one light run sends to Redis and PostgreSQL, request by request: spawns an API and a worker
 * process (as `runThroughput` does) on a fresh PostgreSQL database and a redis-server of its own,
 * runs `--runs` runs of each kind one after another (a chatflow turn, a chat turn without a device),
 * and prints for one run of each kind every Redis request (MONITOR: a MULTI … EXEC block is one,
 * commands run by scripts are listed under their EVALSHA) and every SQL statement (the server's
 * statement log of that database, by backend), plus the counts per run over all of them and the
 * log lines at `LOG_LEVEL=info`. It counts, it does not time: the counts hold on a loaded machine.
 * `--kinds=generation` traces a canvas generation instead (the `generation` scenario's: 200
 * `create_text` calls, then a text), counted up to its fan-out's last chunk.
 *
 *   node -r ./bench/register.cjs bench/tools/run-trace.ts [--runs=20] [--show=1] [--kinds=chatflow,chat,generation] [--json=/tmp/trace.json]
 *
 * Needs root or the postgres user's rights to read the server's log (`/var/log/postgresql/*.log`,
 * or `PG_LOG=<file>`), and a PostgreSQL superuser at `DATABASE_URL` (default the local `test`
 * server) to switch statement logging on for the fresh database alone.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { startEmbeddedRedis } from '../../src/app/embedded-redis';
import { createTestDatabase, LOCAL_POSTGRES } from '../../test/support/database';
import { createCanvas, registerUser, request } from '../../test/support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../../test/support/processes';
import { BENCH_TIER_LIMITS, benchEnv, cpuMsOf, uniquePrefix } from '../lib/harness';
import { startBulkModel } from '../lib/models';
import { StreamModel } from '../scenarios/realistic-stream';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const RUNS = Number(arg('runs', '20'));
const SHOW = Number(arg('show', '1'));
const JSON_OUT = arg('json', '');
const KINDS = arg('kinds', 'chatflow,chat').split(',');
const GENERATION_BLOCKS = 200;
const MESSAGE = 'When does the plan ship? [text]';

/** The server's log file: `PG_LOG`, else the newest file under /var/log/postgresql. */
function pgLogFile(): string {
  if (process.env.PG_LOG) return process.env.PG_LOG;
  const dir = '/var/log/postgresql';
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.log')) : [];
  if (!files.length) throw new Error('no PostgreSQL log found: set PG_LOG');
  return files.map((f) => path.join(dir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

/** Redis requests seen by MONITOR, in order, with the commands scripts ran folded under them. */
class Monitor {
  readonly lines: Array<{ source: string; command: string; lua: boolean }> = [];
  private buffer = '';
  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffer += text;
      let end: number;
      while ((end = this.buffer.indexOf('\r\n')) >= 0) {
        const line = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const match = /^\+[\d.]+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
        if (match) this.lines.push({ source: match[1], command: match[2], lua: match[1] === 'lua' });
      }
    });
  }
  static async start(url: string): Promise<Monitor> {
    const u = new URL(url);
    const socket = createConnection({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('data', () => resolve());
      socket.write('MONITOR\r\n');
    });
    return new Monitor(socket);
  }
  take() {
    return this.lines.splice(0);
  }
  stop() {
    this.socket.destroy();
  }
}

/** Requests (round trips) and commands from MONITOR lines; a MULTI … EXEC block is one request. */
function redisCounts(lines: Monitor['lines']) {
  const requests: string[] = [];
  const commands: Record<string, number> = {};
  const inMulti = new Map<string, string[]>();
  let current: string | undefined;
  for (const { source, command, lua } of lines) {
    const name = (/^"([^"]+)"/.exec(command)?.[1] ?? '?').toLowerCase();
    if (name === 'info' || name === 'monitor') continue;
    commands[name] = (commands[name] ?? 0) + 1;
    if (lua) {
      if (current) requests[requests.length - 1] += `\n      · ${command.slice(0, 160)}`;
      continue;
    }
    const block = inMulti.get(source);
    if (name === 'multi') {
      inMulti.set(source, []);
      continue;
    }
    if (block) {
      if (name === 'exec' || name === 'discard') {
        inMulti.delete(source);
        requests.push(`[${source}] MULTI { ${block.join(' ; ')} }`);
        current = undefined;
      } else block.push(command.slice(0, 100));
      continue;
    }
    requests.push(`[${source}] ${command.slice(0, 200)}`);
    current = name === 'evalsha' || name === 'eval' || name === 'fcall' ? source : undefined;
  }
  return { requests, commands };
}

/** SQL statements of database `db` in the log text (`log_line_prefix` with `%u@%d`), in order, by backend. */
function statements(text: string, db: string): string[] {
  const out: string[] = [];
  let last = false;
  for (const line of text.split('\n')) {
    const match = /^\S+ \S+ \S+ \[(\d+)\] (?:\S*@(\S+) )?(\w+):\s+(.*)$/.exec(line);
    if (match) {
      last = false;
      if (match[2] !== db || match[3] !== 'LOG') continue;
      const statement = /^(?:statement|execute [^:]*): (.*)$/.exec(match[4]);
      if (statement) {
        out.push(`[${match[1]}] ${statement[1]}`);
        last = true;
      }
    } else if (last && line.startsWith('\t')) out[out.length - 1] += ` ${line.trim()}`;
  }
  return out;
}

async function main() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-trace-'));
  const redis = await startEmbeddedRedis(dataDir);
  const database = await createTestDatabase({
    server: process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : LOCAL_POSTGRES,
  });
  const dbName = new URL(database.url).pathname.slice(1);
  const admin = new Client({ connectionString: database.url });
  await admin.connect();
  const model = await StreamModel.start();
  const bulk = await startBulkModel(GENERATION_BLOCKS);
  const generating = KINDS.includes('generation');
  const processes: SwitchboardProcess[] = [];
  const logFile = pgLogFile();
  try {
    const limits = JSON.parse(BENCH_TIER_LIMITS) as { free: Record<string, number> };
    const env = {
      ...benchEnv({ redis: redis.url, keyPrefix: uniquePrefix('trace'), dataDir }),
      DATABASE_URL: database.url,
      OPENAI_BASE_URL: generating ? bulk.baseURL : model.baseURL,
      OPENAI_API_KEY: 'bench',
      LLM_MODEL: generating ? 'scripted' : 'realistic',
      LLM_PROVIDER: 'scripted',
      TIER_LIMITS: JSON.stringify({ free: { ...limits.free, chatPerMinute: 10_000_000, flowExecutionsPerMinute: 10_000_000 } }),
      MAX_STREAMS_PER_USER: '100000',
      LOG_LEVEL: 'info',
    };
    processes.push(await spawnSwitchboard({ ...env, SWITCHBOARD_ROLES: 'api' }, 60_000));
    processes.push(await spawnSwitchboard({ ...env, SWITCHBOARD_ROLES: 'worker' }, 60_000));
    const api = `${processes[0].url}/api/v1`;
    const user = await registerUser(api, 'Trace');
    const flow = await request('POST', `${api}/flows`, {
      token: user.accessToken,
      body: { type: 'chatflow', name: 'Trace', definition: { systemPrompt: 'You answer in one line.' } },
    });
    const canvasId = await createCanvas(api, user, 'Trace');
    const all = {
      chatflow: { url: `${api}/flows/${(flow.body as { flow: { id: string } }).flow.id}/chat/stream`, body: { message: MESSAGE } },
      chat: { url: `${api}/chat/stream`, body: { message: MESSAGE, tools: 'none' } },
      generation: {
        url: `${api}/canvases/${canvasId}/ai/generate-stream`,
        body: { prompt: `Write ${GENERATION_BLOCKS} paragraphs about the quarterly plan` },
      },
    };
    const kinds = Object.fromEntries(Object.entries(all).filter(([kind]) => KINDS.includes(kind)));
    // A generation's stream ends at `complete`; a light run's at `final`.
    const ends = (url: string) => (url.endsWith('/ai/generate-stream') ? 'event: complete' : 'event: final');
    // A generation's fan-out and the end's releases follow `complete`: a longer wait before counting.
    const settleMs = (url: string) => (url.endsWith('/ai/generate-stream') ? 400 : 60);
    const runOnce = async (url: string, body: object) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (!text.includes(ends(url))) throw new Error(`${url} answered ${res.status}: ${text.slice(0, 300)}`);
    };
    // Warm-up (JIT, pools, prepared statements), unlogged.
    for (let i = 0; i < 5; i += 1) for (const k of Object.values(kinds)) await runOnce(k.url, k.body);
    await admin.query(`alter database "${dbName}" set log_statement = 'all'`);
    // Settings apply to new sessions: end the pools' connections so they reconnect with logging on.
    await admin.query(
      'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    );
    // The first requests may meet a pool connection just terminated: say so, and go on (these are not counted).
    for (let i = 0; i < 3; i += 1)
      for (const k of Object.values(kinds))
        await runOnce(k.url, k.body).catch((error: Error) => console.warn(`warm-up request after the reconnect failed: ${error.message}`));
    const monitor = await Monitor.start(redis.url);
    const report: Record<string, unknown> = { loadAvg: os.loadavg().map((v) => Math.round(v * 100) / 100) };
    for (const [kind, k] of Object.entries(kinds)) {
      // Settle the background (BullMQ's markers, heartbeats) before counting.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const idle = monitor.take();
      const idleWindow = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const idleLines = monitor.take();
      const idleMs = Date.now() - idleWindow;
      void idle;
      const logStart = statSync(logFile).size;
      const out0 = processes.map((p) => p.output().split('\n').length);
      const cpu0 = processes.map((p) => cpuMsOf(p.child.pid!));
      const started = Date.now();
      const shown: Array<{ redis: string[]; sql: string[] }> = [];
      const all: Monitor['lines'] = [];
      let logAt = logStart;
      for (let i = 0; i < RUNS; i += 1) {
        await runOnce(k.url, k.body);
        // The worker's last writes land after `final`: wait for the run to go quiet.
        await new Promise((resolve) => setTimeout(resolve, settleMs(k.url)));
        const lines = monitor.take();
        all.push(...lines);
        if (i < SHOW) {
          const size = statSync(logFile).size;
          const text = readFileSync(logFile).subarray(logAt, size).toString('utf8');
          logAt = size;
          shown.push({ redis: redisCounts(lines).requests, sql: statements(text, dbName) });
        }
      }
      const elapsed = Date.now() - started;
      const cpu1 = processes.map((p) => cpuMsOf(p.child.pid!));
      const out1 = processes.map((p) => p.output().split('\n').length);
      const text = readFileSync(logFile).subarray(logStart).toString('utf8');
      const sql = statements(text, dbName);
      const counts = redisCounts(all);
      const idleCounts = redisCounts(idleLines);
      const scale = elapsed / idleMs;
      const perRun = (n: number, idleN = 0) => Math.round(((n - idleN * scale) / RUNS) * 100) / 100;
      const commands = Object.fromEntries(
        Object.entries(counts.commands)
          .map(([name, n]) => [name, perRun(n, idleCounts.commands[name] ?? 0)] as const)
          .filter(([, n]) => n >= 0.05)
          .sort((a, b) => b[1] - a[1]),
      );
      const byVerb: Record<string, number> = {};
      for (const s of sql) {
        const body = s.replace(/^\[\d+\] /, '');
        const verb = /^\s*(\w+)/.exec(body)?.[1]?.toLowerCase() ?? '?';
        byVerb[verb] = (byVerb[verb] ?? 0) + 1;
      }
      const result = {
        runs: RUNS,
        redisRequests: perRun(counts.requests.length, idleCounts.requests.length),
        redisRequestsByCommand: Object.fromEntries(
          Object.entries(
            counts.requests.reduce<Record<string, number>>((acc, r) => {
              const name = /\] (MULTI|"[^"]+")/.exec(r)?.[1].replaceAll('"', '').toLowerCase() ?? '?';
              acc[name] = (acc[name] ?? 0) + 1;
              return acc;
            }, {}),
          ).map(([name, n]) => [name, Math.round((n / RUNS) * 100) / 100]),
        ),
        redisCommands: perRun(
          Object.values(counts.commands).reduce((a, b) => a + b, 0),
          Object.values(idleCounts.commands).reduce((a, b) => a + b, 0),
        ),
        redisByCommand: commands,
        sqlStatements: perRun(sql.length),
        sqlByVerb: Object.fromEntries(Object.entries(byVerb).map(([verb, n]) => [verb, perRun(n)])),
        cpuMsPerRun: { api: perRun(cpu1[0] - cpu0[0]), worker: perRun(cpu1[1] - cpu0[1]), note: 'LOG_LEVEL=info, statement logging on' },
        logLinesPerRun: perRun(out1[0] - out0[0] + out1[1] - out0[1]),
        shown,
      };
      report[kind] = result;
      console.log(`\n=== ${kind}: ${RUNS} runs, one after another ===`);
      for (const [i, run] of shown.entries()) {
        console.log(`--- run ${i + 1}: ${run.redis.length} Redis requests`);
        for (const r of run.redis) console.log(`  ${r}`);
        console.log(`--- run ${i + 1}: ${run.sql.length} SQL statements`);
        for (const s of run.sql) console.log(`  ${s.slice(0, 400)}`);
      }
      const { shown: _shown, ...summary } = result;
      console.log(JSON.stringify(summary, null, 2));
    }
    monitor.stop();
    if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(report, null, 2));
  } finally {
    await admin
      .query(`alter database "${dbName}" reset log_statement`)
      .catch((error: Error) => console.warn(`log_statement not reset on the throwaway database ${dbName}: ${error.message}`));
    await admin.end();
    await Promise.all(processes.map((p) => p.stop('SIGTERM')));
    await model.stop();
    await bulk.close();
    await database.drop();
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

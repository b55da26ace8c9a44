import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Client } from 'pg';
import { createTestDatabase } from '../../test/support/database';
import { registerUser, request, type TestUser } from '../../test/support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../../test/support/processes';
import { freePort } from '../../src/app/embedded-redis';
import { isCluster, type RedisClient } from '../../src/lib/redis';
import { benchRedisClient, KEPT_FOR_WAITERS, redisServerCpuMs, type BenchRedis } from '../lib/bench-redis';
import type { BenchContext } from '../lib/context';
import { BENCH_TIER_LIMITS, benchEnv, cpuMsOf, cpuMsOfCommand, machineCpuMs, ownCpuMs, uniquePrefix } from '../lib/harness';
import { Inspector } from '../lib/inspector';
import type { LoadCommand, LoadResult, LoadTarget } from '../lib/load-process';
import { selfTimeByArea } from '../lib/profile-areas';
import { median, round, summarize } from '../lib/stats';
import { msBetween, now, settle, withTimeout } from '../lib/timing';
import { StreamModel } from './realistic-stream';

export interface RunThroughputOptions {
  workerCounts: number[];
  /** Closed-loop concurrency steps; the sweep stops once runs/s has not grown for two steps. */
  concurrencies: number[];
  /** Warm-up and measured window of each step, in milliseconds. */
  warmupMs: number;
  windowMs: number;
  /** Sweeps per worker count; the median saturation rate is reported. */
  repeats: number;
  /** Closed-loop clients of the bare BullMQ loop. */
  bullmqConcurrency: number;
}

/** Published figures the result is put beside. */
export const ANCHORS = {
  hatchetRunsPerVcpu: 250,
  hatchetNote: 'Hatchet: ~2,000 runs/s on 8 vCPU (250 per vCPU)',
  n8nRunsPerS: 220,
  n8nNote: 'n8n queue mode: ~220 executions/s',
  bullmqNote: 'BullMQ alone: tens of thousands of jobs/s (ours measured below on this machine)',
};

/**
 * What one light run may cost at most, by kind: statements (API + worker), PostgreSQL commits
 * (every transaction, reads included) and requests to Redis (round trips). The benchmark's targets
 * hold each run to them, so a feature that adds a statement or a Redis call to every turn is seen
 * as a MISS, not a round later.
 *
 * A chat turn: the sign-in session's check (API), the run with its session and message (API, one
 * statement), the turn's start and its end with the answer, the usage and the lane's next turn
 * (worker, one statement each). A chatflow turn adds the flow's read (API: owner, type, the
 * definition the turn's budget is reserved from). Commits: one per statement, and at most half a
 * commit per run for the background's own transactions (sweeps, leases) shared over the runs.
 * Round trips: fractional, since the blocking reads of the queue and the event log serve several
 * runs at once.
 */
export const FIXED_COST_LIMITS: Record<'chat' | 'chatflow', { statements: number; commits: number; redisRoundTrips: number }> = {
  chat: { statements: 4, commits: 4.5, redisRoundTrips: 16 },
  chatflow: { statements: 5, commits: 5.5, redisRoundTrips: 16 },
};

/** The `[text]` marker makes the stand-in model answer a short text (stream-model-process.ts). */
const MESSAGE = 'When does the plan ship? [text]';

/** `os.loadavg()` rounded, printed beside every figure. */
const load = () => os.loadavg().map((value) => round(value, 2));

/**
 * How many of the lightest real runs one core carries: a chatflow turn (`POST /flows/:id/chat/stream`)
 * and a chat turn without a device (`POST /chat/stream`, `tools: "none"`), alternating. Each run is
 * HTTP request → queue → worker → model → persisted → `final` on the request's SSE stream. One API
 * process and 1, then 2, worker processes on a fresh PostgreSQL database; the stand-in model
 * (a short text, no delay) and the load generator each run in a process of their own, so the CPU
 * of our processes is the pipeline's alone.
 */
export async function runThroughputScenario(ctx: BenchContext, options: RunThroughputOptions) {
  const database = await createTestDatabase({ server: ctx.postgresUrl });
  const model = await StreamModel.start();
  const loader = await LoadGenerator.start();
  const processes: SwitchboardProcess[] = [];
  const redis = benchRedisClient(ctx.redis);
  const limits = JSON.parse(BENCH_TIER_LIMITS) as { free: Record<string, number> };
  const unlimited = { chatPerMinute: 10_000_000, flowExecutionsPerMinute: 10_000_000 };
  try {
    const shared = {
      ...benchEnv({ redis: ctx.redis, keyPrefix: uniquePrefix('runs'), dataDir: ctx.dataDir }),
      DATABASE_URL: database.url,
      OPENAI_BASE_URL: model.baseURL,
      OPENAI_API_KEY: 'bench',
      LLM_MODEL: 'realistic',
      LLM_PROVIDER: 'scripted',
      TIER_LIMITS: JSON.stringify({ free: { ...limits.free, ...unlimited } }),
      // 128 clients over 4 users hold up to 32 streams each; the per-user cap is not under test.
      MAX_STREAMS_PER_USER: '100000',
      // The reaper's pass (about ten statements, at start and then every 30 s by default) costs the
      // same with no runs, but a 30 s period is longer than the idle window the fixed costs subtract:
      // when a pass fell inside a kind's window it added 0.03 – 0.05 statements to each of its runs.
      // The first worker process to start still sweeps once, before anything is measured.
      REAPER_INTERVAL_MS: String(60 * 60_000),
    };
    ctx.log('runThroughput: starting the API process');
    processes.push(await spawnSwitchboard({ ...shared, SWITCHBOARD_ROLES: 'api' }, 60_000));
    // Where each process reports its statements (`switchboard_db_query_seconds_count`): the API on its port, a worker on METRICS_PORT.
    const metricsUrls = [`${processes[0].url!}/metrics`];
    const targets = await loadTargets(processes[0].url!);

    /** One closed- or open-loop step: runs/s in the window and the CPU each process spent in it. */
    const step = async (command: Omit<LoadCommand, 'targets' | 'warmupMs' | 'windowMs'>) => {
      const pids = processes.map((p) => p.child.pid!);
      const harness = { model: model.pid, loader: loader.pid };
      let cpu0: ReturnType<typeof cpuSnapshot> | undefined;
      let cpu1: ReturnType<typeof cpuSnapshot> | undefined;
      const result = await loader.run({ ...command, targets, warmupMs: options.warmupMs, windowMs: options.windowMs } as LoadCommand, {
        onWindowStart: () => (cpu0 = cpuSnapshot(pids, ctx.redis, harness)),
        onWindowEnd: () => (cpu1 = cpuSnapshot(pids, ctx.redis, harness)),
      });
      if (result.failed) throw new Error(`${result.failed} run(s) failed, the first: ${result.firstError}`);
      const seconds = result.windowMs / 1000;
      const cores = (a: number, b: number) => round((b - a) / result.windowMs, 3);
      const ourCores = cores(sum(cpu0!.procs), sum(cpu1!.procs));
      const runsPerS = round(result.completed / seconds, 1);
      const redisCores = cores(cpu0!.redis, cpu1!.redis);
      const postgresCores = cores(cpu0!.postgres, cpu1!.postgres);
      // The whole pipeline a deployment runs (our processes, PostgreSQL, Redis), without the
      // benchmark's own processes (the model stand-in, the load generator) that share the machine.
      const pipelineCores = round(ourCores + redisCores + postgresCores, 3);
      return {
        runsPerS,
        // runs/s ÷ cores busy in the API and worker processes (their user+system CPU over the window).
        runsPerCore: round(runsPerS / ourCores, 1),
        ourCores,
        coresByProcess: cpu1!.procs.map((value, i) => cores(cpu0!.procs[i], value)),
        redisCores,
        postgresCores,
        pipelineCores,
        runsPerPipelineCore: round(runsPerS / pipelineCores, 1),
        modelCores: cores(cpu0!.model, cpu1!.model),
        loadGeneratorCores: cores(cpu0!.loader, cpu1!.loader),
        machineCores: cores(cpu0!.machine, cpu1!.machine),
        completedByKind: result.completedByKind,
        latencyMs: summarize(Object.values(result.latenciesMs).flat()),
        latencyMsByKind: Object.fromEntries(Object.entries(result.latenciesMs).map(([kind, values]) => [kind, summarize(values)])),
        loadAvg: load(),
      };
    };

    const byWorkers = [];
    let costs: Awaited<ReturnType<typeof fixedCosts>> | undefined;
    for (const workers of options.workerCounts) {
      while (processes.length - 1 < workers) {
        ctx.log(`runThroughput: starting worker process ${processes.length}`);
        const metricsPort = await freePort();
        processes.push(await spawnSwitchboard({ ...shared, SWITCHBOARD_ROLES: 'worker', METRICS_PORT: String(metricsPort) }, 60_000));
        metricsUrls.push(`http://127.0.0.1:${metricsPort}/metrics`);
      }
      // Warm the processes (JIT, connection pools) before anything is measured.
      await step({ cmd: 'closed', concurrency: 4 });
      if (!costs) {
        ctx.log('runThroughput: fixed costs per run (Redis commands, statements, CPU, log lines)');
        costs = await fixedCosts(ctx, { loader, targets, processes, metricsUrls, redis, databaseUrl: database.url, options, shared });
      }
      const sweeps = [];
      for (let repeat = 0; repeat < options.repeats; repeat += 1) {
        type Step = { concurrency: number } & Awaited<ReturnType<typeof step>>;
        const steps: Step[] = [];
        let best: Step | undefined;
        let flat = 0;
        for (const concurrency of options.concurrencies) {
          const measured = { concurrency, ...(await step({ cmd: 'closed', concurrency })) };
          steps.push(measured);
          ctx.log(
            `runThroughput: ${workers} worker(s), ${concurrency} clients: ${measured.runsPerS} runs/s, ${measured.ourCores} cores in our processes (${measured.runsPerCore} runs/s per core), load ${measured.loadAvg.join(' ')}`,
          );
          // Saturated once runs/s has not grown by 5 % over the best for two steps in a row; the
          // saturation rate is the best step's.
          const grew = !best || measured.runsPerS > best.runsPerS * 1.05;
          if (!best || measured.runsPerS > best.runsPerS) best = measured;
          if (grew) flat = 0;
          else if (++flat >= 2) break;
        }
        const rate = Math.max(1, round(best!.runsPerS / 2, 1));
        const half = await step({ cmd: 'open', rate });
        ctx.log(
          `runThroughput: ${workers} worker(s) at ${rate} runs/s (half the saturation rate): p50 ${half.latencyMs.p50} ms, p99 ${half.latencyMs.p99} ms, load ${half.loadAvg.join(' ')}`,
        );
        sweeps.push({ saturation: best!, halfRate: { rate, ...half }, steps });
      }
      const mid = sweeps.map((s) => s.saturation.runsPerS);
      const chosen = sweeps[mid.indexOf(median(mid))] ?? sweeps[0];
      byWorkers.push({
        workers,
        runsPerS: chosen.saturation.runsPerS,
        runsPerCore: chosen.saturation.runsPerCore,
        ourCores: chosen.saturation.ourCores,
        pipelineCores: chosen.saturation.pipelineCores,
        runsPerPipelineCore: chosen.saturation.runsPerPipelineCore,
        // The same, as the CPU one run costs the whole pipeline at saturation.
        allInCpuMsPerRun: round(1000 / chosen.saturation.runsPerPipelineCore, 2),
        harnessCores: round(chosen.saturation.modelCores + chosen.saturation.loadGeneratorCores, 3),
        saturationConcurrency: chosen.saturation.concurrency,
        runsPerSBySweep: mid,
        runsPerCoreBySweep: sweeps.map((s) => s.saturation.runsPerCore),
        halfRateLatencyMs: {
          rate: chosen.halfRate.rate,
          p50: round(median(sweeps.map((s) => s.halfRate.latencyMs.p50))),
          p99: round(median(sweeps.map((s) => s.halfRate.latencyMs.p99))),
          byKind: chosen.halfRate.latencyMsByKind,
          loadAvg: chosen.halfRate.loadAvg,
        },
        loadAvg: chosen.saturation.loadAvg,
        sweeps,
      });
    }
    ctx.log('runThroughput: bare BullMQ add → process → completed loop');
    const bullmq = await bareBullmq(ctx, options);
    const one = byWorkers.find((row) => row.workers === 1);
    const two = byWorkers.find((row) => row.workers === 2);
    const bestRate = Math.max(...byWorkers.map((row) => row.runsPerS));
    return {
      config: {
        ...options,
        runs: 'a chatflow turn (POST /flows/:id/chat/stream) and a chat turn without a device (POST /chat/stream, tools "none"), alternating; done when `final` arrives on the SSE stream',
        model: 'stand-in OpenAI-compatible model in its own process (stream-model-process.ts): 8 text deltas written at once, no delay',
        loadGenerator:
          'a process of its own (load-process.ts); closed loop for the sweep, a fixed schedule (open loop) at half the saturation rate for latency',
        processes: 'one API process (SWITCHBOARD_ROLES=api) + N worker processes (SWITCHBOARD_ROLES=worker) on a fresh PostgreSQL database',
        perCore:
          'runs/s ÷ cores busy in the API and worker processes: their user+system CPU time (/proc/<pid>/stat) over the measured window ÷ the window. Redis, PostgreSQL, the model and the load generator are reported apart and not counted',
        perPipelineCore:
          'runs/s ÷ cores busy in the whole pipeline a deployment runs: the API and worker processes, PostgreSQL and Redis (the model stand-in and the load generator, which share the machine, left out)',
        database: `PostgreSQL ${await serverVersion(database.url)}`,
      },
      anchors: ANCHORS,
      byWorkers,
      runsPerS: bestRate,
      runsPerCore: one?.runsPerCore,
      scaling2vs1: one && two ? round(two.runsPerS / one.runsPerS) : undefined,
      bullmq,
      costsPerRun: costs?.perRun,
      fixedCostLimits: FIXED_COST_LIMITS,
      loadAvgAtEnd: load(),
    };
  } finally {
    await stopProcesses(processes);
    await loader.stop();
    await model.stop();
    await redis.quit();
    await database.drop();
  }
}

/** Stops each process: SIGTERM, then SIGKILL for any still running after 8 s. */
async function stopProcesses(processes: SwitchboardProcess[]): Promise<void> {
  await Promise.all(processes.map((p) => Promise.race([p.stop('SIGTERM'), new Promise((resolve) => setTimeout(resolve, 8_000).unref())])));
  await Promise.all(processes.map((p) => p.stop('SIGKILL')));
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

function cpuSnapshot(pids: number[], redis: BenchRedis, harness: { model: number; loader: number }) {
  return {
    procs: pids.map((pid) => cpuMsOf(pid)),
    model: cpuMsOf(harness.model),
    loader: cpuMsOf(harness.loader),
    redis: redisServerCpuMs(redis),
    // Every postgres process on the machine (other databases' backends included).
    postgres: cpuMsOfCommand('postgres'),
    machine: machineCpuMs().busy,
  };
}

/** Four users, each with a chatflow: one chatflow turn and one chat turn target per user. */
export async function loadTargets(baseUrl: string): Promise<LoadTarget[]> {
  const api = `${baseUrl}/api/v1`;
  const targets: LoadTarget[] = [];
  for (let i = 0; i < 4; i += 1) {
    const user = await registerUser(api, `Runs${i}`);
    const flowId = await createChatflow(api, user);
    targets.push(
      { kind: 'chatflow', url: `${api}/flows/${flowId}/chat/stream`, token: user.accessToken, body: { message: MESSAGE } },
      { kind: 'chat', url: `${api}/chat/stream`, token: user.accessToken, body: { message: MESSAGE, tools: 'none' } },
    );
  }
  return targets;
}

/** A chatflow of `user`'s that answers in one line; its id. */
export async function createChatflow(api: string, user: TestUser): Promise<string> {
  const res = await request('POST', `${api}/flows`, {
    token: user.accessToken,
    body: { type: 'chatflow', name: 'Bench helper', definition: { systemPrompt: 'You answer in one line.' } },
  });
  if (res.status !== 201) throw new Error(`create chatflow answered ${res.status}: ${JSON.stringify(res.body)}`);
  return (res.body as { flow: { id: string } }).flow.id;
}

/** Redis commands by name: calls and server-side microseconds, from INFO commandstats (summed over a cluster's masters). */
export async function commandStats(redis: RedisClient): Promise<Record<string, { calls: number; usec: number }>> {
  const servers = isCluster(redis) ? redis.nodes('master') : [redis];
  const stats: Record<string, { calls: number; usec: number }> = {};
  for (const text of await Promise.all(servers.map((server) => server.info('commandstats')))) {
    for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      const entry = (stats[match[1]] ??= { calls: 0, usec: 0 });
      entry.calls += Number(match[2]);
      entry.usec += Number(match[3]);
    }
  }
  return stats;
}

/** Per-table access counts and the database's commits, from PostgreSQL's cumulative statistics. */
async function tableStats(databaseUrl: string) {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const tables = await client.query<{ relname: string; scans: string; ins: string; upd: string; del: string }>(
      `select relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) as scans, n_tup_ins as ins, n_tup_upd as upd, n_tup_del as del
         from pg_stat_user_tables`,
    );
    const db = await client.query<{ commits: string; rollbacks: string }>(
      'select xact_commit as commits, xact_rollback as rollbacks from pg_stat_database where datname = current_database()',
    );
    return {
      tables: Object.fromEntries(
        tables.rows.map((row) => [
          row.relname,
          { scans: Number(row.scans), ins: Number(row.ins), upd: Number(row.upd), del: Number(row.del) },
        ]),
      ),
      commits: Number(db.rows[0].commits),
      rollbacks: Number(db.rows[0].rollbacks),
    };
  } finally {
    await client.end();
  }
}

/**
 * PostgreSQL backends publish their statistics when idle at most every 10 s (pgstat's idle interval).
 * A smoke run (which checks that the scenario runs, its figures not comparable) reads them at once.
 */
const pgStatsFlushMs = (ctx: BenchContext) => (ctx.smoke ? 0 : 11_000);

/**
 * The fixed costs of one run of each kind, counted over a closed-loop window of that kind alone at
 * modest concurrency: Redis commands by name (with Redis's own µs), table accesses and commits, CPU
 * µs of the API and the workers, and (on a second pair of processes at LOG_LEVEL=info) log lines.
 * Background work (BullMQ's polling, heartbeats), measured over an idle interval, is subtracted
 * from the Redis and CPU counts; table statistics are read once PostgreSQL has published them.
 */
async function fixedCosts(
  ctx: BenchContext,
  input: {
    loader: LoadGenerator;
    targets: LoadTarget[];
    processes: SwitchboardProcess[];
    /** Each process's /metrics, in the order of `processes`. */
    metricsUrls: string[];
    redis: RedisClient;
    databaseUrl: string;
    options: RunThroughputOptions;
    shared: Record<string, string>;
  },
) {
  const { loader, targets, processes, redis, options } = input;
  const pids = processes.map((p) => p.child.pid!);
  const counters = async (): Promise<Counters> => ({
    redis: await commandStats(redis),
    cpu: pids.map(cpuMsOf),
    statements: await Promise.all(input.metricsUrls.slice(0, pids.length).map(statementsOf)),
    at: now(),
  });
  // Idle: what the processes do with no runs, per millisecond.
  const idle0 = await counters();
  await settle(options.windowMs);
  const idle1 = await counters();
  const idleMs = msBetween(idle0.at, idle1.at);
  await settle(pgStatsFlushMs(ctx));
  let pg0 = await tableStats(input.databaseUrl);
  const byKind: Record<string, ReturnType<typeof costsOf>> = {};
  for (const kind of [...new Set(targets.map((target) => target.kind))]) {
    const before = await counters();
    const result = await loader.run({
      cmd: 'closed',
      concurrency: 4,
      targets: targets.filter((target) => target.kind === kind),
      warmupMs: 0,
      windowMs: options.windowMs,
    });
    const after = await counters();
    if (result.failed) throw new Error(`${result.failed} ${kind} run(s) failed while counting costs: ${result.firstError}`);
    await settle(pgStatsFlushMs(ctx));
    const pg1 = await tableStats(input.databaseUrl);
    byKind[kind] = costsOf(result.total, { before, after, idle0, idle1, idleMs, pg0, pg1 });
    pg0 = pg1;
  }

  // Where the CPU goes, by package or folder (JSON's builtins and GC by name): a CPU profile of an
  // API and a worker process of their own, started with the inspector on loopback; then the log
  // lines at LOG_LEVEL=info, on a second pair (the measured processes are silent). Each pair has a
  // database and a Redis key prefix of its own, so the measured worker takes none of its runs (nor
  // it any of theirs), and each is stopped before the next starts.
  const isolated = await createTestDatabase({ server: ctx.postgresUrl });
  // The warm-up before each profile and the log-line count need a second at most (less in a smoke run).
  const shortWindowMs = Math.min(1_000, options.windowMs);
  const env = { ...input.shared, DATABASE_URL: isolated.url, REDIS_KEY_PREFIX: uniquePrefix('runs-costs') };
  const pair = async (extra: Record<string, string>) => [
    await spawnSwitchboard({ ...env, ...extra, SWITCHBOARD_ROLES: 'api' }, 60_000),
    await spawnSwitchboard({ ...env, ...extra, SWITCHBOARD_ROLES: 'worker' }, 60_000),
  ];
  const spawned: SwitchboardProcess[] = [];
  try {
    const profiled = await pair({ NODE_OPTIONS: '--inspect=127.0.0.1:0' });
    spawned.push(...profiled);
    const pairTargets = await loadTargets(profiled[0].url!);
    // The same users and flows (in the pair's database) on whichever API of the pair runs.
    let pairUrl = profiled[0].url!;
    const ofKind = (kind: string) =>
      pairTargets
        .filter((target) => target.kind === kind)
        .map((target) => ({ ...target, url: target.url.replace(profiled[0].url!, pairUrl) }));
    const inspectors = await Promise.all(
      profiled.map((p) => {
        const url = Inspector.urlIn(p.output());
        if (!url) throw new Error('a profiled process printed no inspector URL');
        return Inspector.connect(url);
      }),
    );
    try {
      for (const kind of Object.keys(byKind)) {
        await loader.run({
          cmd: 'closed',
          concurrency: 4,
          targets: ofKind(kind),
          warmupMs: 0,
          windowMs: shortWindowMs,
        });
        const stops = await Promise.all(inspectors.map((inspector) => inspector.startProfile()));
        const trips = await RoundTrips.start(ctx.redis.ports);
        const result = await loader.run({ cmd: 'closed', concurrency: 4, targets: ofKind(kind), warmupMs: 0, windowMs: options.windowMs });
        const roundTrips = trips.stop();
        const profiles = await Promise.all(stops.map((stop) => stop()));
        if (result.failed) throw new Error(`${result.failed} run(s) failed while profiling: ${result.firstError}`);
        // With --profile: the two profiles as files, for bench/tools/profile-summary.ts.
        if (ctx.profileDir) {
          for (const [role, profile] of [
            ['api', profiles[0]],
            ['worker', profiles[1]],
          ] as const) {
            writeFileSync(path.join(ctx.profileDir, `run-throughput-${kind}-${role}.cpuprofile`), JSON.stringify(profile));
          }
        }
        // The 16 largest areas, and JSON's builtins wherever they rank.
        const perRun = (areas: Array<[string, number]>) =>
          Object.fromEntries(
            areas
              .filter(([name], rank) => rank < 16 || name === '(stringify)' || name === '(parse)')
              .map(([name, us]) => [name, round(us / result.total, 0)]),
          );
        byKind[kind].cpuUsByArea = { api: perRun(selfTimeByArea(profiles[0])), worker: perRun(selfTimeByArea(profiles[1])) };
        byKind[kind].redisRoundTrips = {
          total: round(roundTrips.total / result.total, 1),
          byCommand: Object.fromEntries(
            Object.entries(roundTrips.byCommand)
              .sort(([, a], [, b]) => b - a)
              .map(([name, count]) => [name, round(count / result.total, 2)]),
          ),
        };
      }
    } finally {
      inspectors.forEach((inspector) => inspector.close());
    }
    await stopProcesses(spawned.splice(0));

    const logged = await pair({ LOG_LEVEL: 'info' });
    spawned.push(...logged);
    pairUrl = logged[0].url!;
    const lines = () => logged.reduce((sum, p) => sum + p.output().split('\n').length, 0);
    for (const kind of Object.keys(byKind)) {
      const lines0 = lines();
      const result = await loader.run({
        cmd: 'closed',
        concurrency: 2,
        targets: ofKind(kind),
        warmupMs: 0,
        windowMs: shortWindowMs,
      });
      if (result.failed) throw new Error(`${result.failed} run(s) failed while counting log lines: ${result.firstError}`);
      byKind[kind].logLinesAtInfo = round((lines() - lines0) / result.total, 2);
    }
    ctx.log(`runThroughput: costs counted (load ${load().join(' ')})`);
    return { perRun: { loadAvg: load(), byKind } };
  } finally {
    await stopProcesses(spawned);
    await isolated.drop();
  }
}

/** Commits of the benchmark's own statistics reads that fall inside one counted window (see `tableStats`). */
const STATS_READ_COMMITS = 2;

type Counters = { redis: Record<string, { calls: number; usec: number }>; cpu: number[]; statements: number[]; at: bigint };

/** The statements a process ran so far: the count of its `switchboard_db_query_seconds` histogram (every outcome). */
async function statementsOf(metricsUrl: string): Promise<number> {
  const res = await fetch(metricsUrl);
  if (!res.ok) throw new Error(`${metricsUrl} answered ${res.status}`);
  let total = 0;
  for (const match of (await res.text()).matchAll(/^switchboard_db_query_seconds_count(?:\{[^}]*\})? (\d+)/gm)) total += Number(match[1]);
  return total;
}

/** Counts per run from counters read around `runs` runs, less the idle rate over the same time. */
function costsOf(
  runs: number,
  c: {
    before: Counters;
    after: Counters;
    idle0: Counters;
    idle1: Counters;
    idleMs: number;
    pg0: Awaited<ReturnType<typeof tableStats>>;
    pg1: Awaited<ReturnType<typeof tableStats>>;
  },
) {
  const idleScale = msBetween(c.before.at, c.after.at) / c.idleMs;
  const perRun = (busy: number, idle: number) => round((busy - idle * idleScale) / runs, 2);
  const zero = { calls: 0, usec: 0 };
  const redisByCommand: Record<string, { calls: number; usec: number }> = {};
  for (const [name, after] of Object.entries(c.after.redis)) {
    const before = c.before.redis[name] ?? zero;
    const idle = { calls: (c.idle1.redis[name] ?? zero).calls - (c.idle0.redis[name] ?? zero).calls, usec: 0 };
    idle.usec = (c.idle1.redis[name] ?? zero).usec - (c.idle0.redis[name] ?? zero).usec;
    const calls = perRun(after.calls - before.calls, idle.calls);
    if (calls >= 0.05) redisByCommand[name] = { calls, usec: perRun(after.usec - before.usec, idle.usec) };
  }
  const tables: Record<string, { scans: number; ins: number; upd: number; del: number }> = {};
  for (const [name, after] of Object.entries(c.pg1.tables)) {
    const before = c.pg0.tables[name] ?? { scans: 0, ins: 0, upd: 0, del: 0 };
    const row = {
      scans: round((after.scans - before.scans) / runs, 2),
      ins: round((after.ins - before.ins) / runs, 2),
      upd: round((after.upd - before.upd) / runs, 2),
      del: round((after.del - before.del) / runs, 2),
    };
    if (row.scans || row.ins || row.upd || row.del) tables[name] = row;
  }
  const rows = Object.values(redisByCommand);
  return {
    runs,
    redisCommands: round(
      rows.reduce((total, row) => total + row.calls, 0),
      1,
    ),
    redisServerUsec: round(
      rows.reduce((total, row) => total + row.usec, 0),
      1,
    ),
    redisByCommand: Object.fromEntries(Object.entries(redisByCommand).sort(([, a], [, b]) => b.calls - a.calls)),
    // Event hops: each XADD or PUBLISH is one event written for another process to read.
    eventWrites: round((redisByCommand.xadd?.calls ?? 0) + (redisByCommand.publish?.calls ?? 0) + (redisByCommand.spublish?.calls ?? 0), 2),
    // Less the benchmark's own: each reading of the statistics is two transactions, one on either side of the window.
    postgresCommits: round((c.pg1.commits - c.pg0.commits - STATS_READ_COMMITS) / runs, 2),
    postgresRollbacks: round((c.pg1.rollbacks - c.pg0.rollbacks) / runs, 2),
    postgresTables: tables,
    // Statements the API and the worker ran per run (less the idle rate: the reaper, presence beats).
    postgresStatements: {
      api: perRun(c.after.statements[0] - c.before.statements[0], c.idle1.statements[0] - c.idle0.statements[0]),
      worker: perRun(c.after.statements[1] - c.before.statements[1], c.idle1.statements[1] - c.idle0.statements[1]),
      total: perRun(
        c.after.statements[0] + c.after.statements[1] - c.before.statements[0] - c.before.statements[1],
        c.idle1.statements[0] + c.idle1.statements[1] - c.idle0.statements[0] - c.idle0.statements[1],
      ),
    },
    apiCpuUs: perRun((c.after.cpu[0] - c.before.cpu[0]) * 1000, (c.idle1.cpu[0] - c.idle0.cpu[0]) * 1000),
    workerCpuUs: perRun((c.after.cpu[1] - c.before.cpu[1]) * 1000, (c.idle1.cpu[1] - c.idle0.cpu[1]) * 1000),
    logLinesAtInfo: Number.NaN,
    /** Requests our processes sent to Redis per run (MONITOR: commands from clients, not from scripts; a MULTI … EXEC block is one). */
    redisRoundTrips: { total: Number.NaN, byCommand: {} as Record<string, number> },
    /** CPU µs per run by package or folder, from a CPU profile of each process (the 16 largest, and JSON's builtins). */
    cpuUsByArea: {} as Record<string, Record<string, number>>,
  };
}

/**
 * Counts the requests clients send to Redis, through MONITOR on a plain socket of its own: a
 * command that a Lua script runs is not one (the script's EVALSHA is), and a MULTI … EXEC block is
 * one, counted as `multi`. The benchmark's own commands (MONITOR, INFO) are left out.
 */
class RoundTrips {
  private total = 0;
  private readonly byCommand: Record<string, number> = {};
  private readonly inMulti = new Set<string>();
  private failure: Error | undefined;

  private constructor(private readonly sockets: Socket[]) {
    for (const socket of sockets) {
      let buffer = '';
      socket.on('error', (error: Error) => (this.failure ??= error));
      socket.setEncoding('utf8');
      socket.on('data', (text: string) => {
        buffer += text;
        let end: number;
        while ((end = buffer.indexOf('\r\n')) >= 0) {
          this.line(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      });
    }
  }

  /** One MONITOR line: `+<time> [<db> <source>] "<command>" …`. */
  private line(line: string) {
    const match = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
    if (!match) return;
    const [, source, command] = match;
    const name = command.toLowerCase();
    if (source === 'lua' || name === 'info' || name === 'monitor') return;
    if (name === 'multi') this.inMulti.add(source);
    if (name === 'exec' || name === 'discard') return void this.inMulti.delete(source);
    if (this.inMulti.has(source) && name !== 'multi') return;
    this.total += 1;
    this.byCommand[name] = (this.byCommand[name] ?? 0) + 1;
  }

  /** MONITOR on every redis-server at `ports` of 127.0.0.1 (one, or each master of a cluster). */
  static async start(ports: number[]): Promise<RoundTrips> {
    const sockets: Socket[] = [];
    try {
      for (const port of ports) {
        const socket = createConnection({ host: '127.0.0.1', port });
        sockets.push(socket);
        await withTimeout(
          new Promise<void>((resolve, reject) => {
            socket.once('error', reject);
            socket.once('data', (reply: Buffer | string) => {
              if (String(reply).startsWith('+OK')) resolve();
              else reject(new Error(`MONITOR answered ${String(reply).slice(0, 200)}`));
            });
            socket.write('MONITOR\r\n');
          }),
          10_000,
          'MONITOR',
        );
      }
    } catch (error) {
      sockets.forEach((socket) => socket.destroy());
      throw error;
    }
    return new RoundTrips(sockets);
  }

  stop(): { total: number; byCommand: Record<string, number> } {
    this.sockets.forEach((socket) => socket.destroy());
    if (this.failure) throw new Error(`the MONITOR connection failed: ${this.failure.message}`);
    return { total: this.total, byCommand: this.byCommand };
  }
}

/**
 * A bare BullMQ loop on the benchmark's single redis-server (on either topology: the anchor is what
 * BullMQ does on one Redis): `concurrency` clients each `add` a job and wait for `completed`.
 */
async function bareBullmq(ctx: BenchContext, options: RunThroughputOptions) {
  const url = new URL(ctx.floorRedisUrl);
  const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
  const prefix = `${uniquePrefix('bullmq')}:bull`;
  const queue = new Queue('bare', { connection, prefix });
  const worker = new Worker('bare', async () => ({ ok: true }), { connection, prefix, concurrency: options.bullmqConcurrency });
  const events = new QueueEvents('bare', { connection, prefix });
  // Each waiting `waitUntilFinished` listens for the queue's closing: one per client, not a leak.
  queue.setMaxListeners(options.bullmqConcurrency + 10);
  try {
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady(), events.waitUntilReady()]);
    let stop = false;
    let counting = false;
    let done = 0;
    let failure: unknown = undefined;
    const loop = async () => {
      while (!stop) {
        const job = await queue.add('noop', { n: 1 }, KEPT_FOR_WAITERS);
        await job.waitUntilFinished(events, 30_000);
        if (counting) done += 1;
      }
    };
    const loops = Array.from({ length: options.bullmqConcurrency }, () =>
      loop().catch((error: unknown) => {
        // The first failure stops every loop and is thrown below.
        failure ??= error;
        stop = true;
      }),
    );
    await settle(options.warmupMs);
    const redisPort = url.port;
    const cpu0 = { own: ownCpuMs(), redis: cpuMsOfCommand('redis-server', redisPort) };
    const started = now();
    counting = true;
    await settle(options.windowMs);
    counting = false;
    const windowMs = msBetween(started);
    const cpu1 = { own: ownCpuMs(), redis: cpuMsOfCommand('redis-server', redisPort) };
    stop = true;
    await Promise.all(loops);
    if (failure) throw failure instanceof Error ? failure : new Error(String(failure));
    const jobsPerS = round(done / (windowMs / 1000), 1);
    const benchCores = round((cpu1.own - cpu0.own) / windowMs, 3);
    return {
      concurrency: options.bullmqConcurrency,
      jobsPerS,
      // One Node process (producer, worker and QueueEvents together) + Redis.
      nodeCores: benchCores,
      redisCores: round((cpu1.redis - cpu0.redis) / windowMs, 3),
      jobsPerNodeCore: round(jobsPerS / benchCores, 1),
      loadAvg: load(),
    };
  } finally {
    await worker.close();
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

async function serverVersion(url: string): Promise<string> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return ((await client.query('show server_version')).rows[0] as { server_version: string }).server_version;
  } finally {
    await client.end();
  }
}

/** The load generator process (load-process.ts) and its IPC. */
export class LoadGenerator {
  private constructor(private readonly child: ChildProcess) {}

  /** Its process id, for its CPU time. */
  get pid(): number {
    return this.child.pid!;
  }

  static async start(): Promise<LoadGenerator> {
    const child = fork(path.join(__dirname, '../lib/load-process.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`load process exited with ${code}`)));
      }),
      30_000,
      'load process start',
    );
    return new LoadGenerator(child);
  }

  /** Runs one command; the hooks fire when the measured window starts and ends. */
  run(command: LoadCommand, hooks: { onWindowStart?: () => void; onWindowEnd?: () => void } = {}): Promise<LoadResult> {
    const result = new Promise<LoadResult>((resolve, reject) => {
      const onMessage = (message: { event?: string; error?: string }) => {
        if (message.event === 'window-start') hooks.onWindowStart?.();
        else if (message.event === 'window-end') hooks.onWindowEnd?.();
        else if (message.event === 'result' || message.event === 'failed') {
          this.child.off('message', onMessage);
          this.child.off('exit', onExit);
          if (message.event === 'failed') reject(new Error(`load process: ${message.error}`));
          else resolve(message as unknown as LoadResult);
        }
      };
      const onExit = (code: number | null) => reject(new Error(`load process exited with ${code}`));
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send(command);
    });
    return withTimeout(result, command.warmupMs + command.windowMs + 120_000, 'load step');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ cmd: 'stop' });
    await withTimeout(exited, 10_000, 'load process exit').catch((error: unknown) => {
      process.stderr.write(`runThroughput: ${error instanceof Error ? error.message : String(error)}; killing it\n`);
      this.child.kill('SIGKILL');
    });
  }
}

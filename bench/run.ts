/**
 * `npm run bench`: Switchboard's benchmark. Runs every scenario on embedded
 * defaults (its own redis-server, PGlite in memory; a PostgreSQL server for the multi-process
 * scenario), prints a table with PASS/MISS per target, and writes bench/results/latest.json plus a
 * dated copy. A benchmark, not a test: it never fails on a missed target, only on a broken run.
 *
 * Flags: --only=generation,realisticStream,fanout,sseOverhead,throughput,runThroughput,memory,churn,cancel,recovery,manyStreams,budget,roomThreads,turnWaits,knowledge   --quick (fewer runs, for trying)
 *        --smoke (every scenario at its smallest, about two minutes: CI runs it so a broken scenario is
 *        noticed; it fails on a broken scenario, never on a missed target)
 *        --profile=<dir> (CPU profiles of the in-process scenarios' measured runs)
 *        --redis-cluster (every Switchboard on a local 3-master Redis Cluster, REDIS_CLUSTER_NODES,
 *        instead of one redis-server; the raw floors keep their single redis-server)
 *        --paired (each scenario on one redis-server and on the cluster in turn, --rounds=N times,
 *        3 in a full run; the order alternates from round to round, and the report sets each target
 *        on the cluster against one Redis in the same round, so a host whose speed drifts cannot
 *        pass for a cost of the cluster)
 * Only a full run writes bench/results/latest.json; --quick and --smoke write quick.json / smoke.json.
 * With --redis-cluster the files are cluster-latest.json, cluster-quick.json, cluster-smoke.json and
 * cluster-<date>.json, and the report and JSON say `topology: cluster`, so the figures are never
 * taken for the single-Redis ones. A paired run writes paired-latest.json (a full run) or
 * paired-quick.json / paired-smoke.json, with every run's results and the comparison.
 * A full run of some scenarios (--only) replaces just those in latest.json and keeps the others.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedRedis } from '../src/app/embedded-redis';
import { LOCAL_POSTGRES } from '../test/support/database';
import { startRedisCluster, type LocalRedisCluster } from '../test/support/redis-cluster';
import { clusterBenchRedis, singleBenchRedis, type RedisTopology } from './lib/bench-redis';
import { ClientFleet } from './lib/client-fleet';
import type { BenchContext, BenchMode } from './lib/context';
import { hostProbe, machineCpuMs, ownCpuMs, settleMachine } from './lib/harness';
import { comparePaired, roundOrder, type PairedTarget } from './lib/paired';
import { knowledgeRows, knowledgeTargets } from './lib/knowledge-report';
import { judge, REGRESSION_THRESHOLD, regressions, table, type Target } from './lib/report';
import { budgetScenario } from './scenarios/budget';
import { cancelScenario } from './scenarios/cancel';
import { recoveryScenario } from './scenarios/recovery';
import { churnScenario } from './scenarios/churn';
import { fanoutScenario } from './scenarios/fanout';
import { generationScenario } from './scenarios/generation';
import { knowledgeScenario } from './scenarios/knowledge';
import { manyStreamsScenario } from './scenarios/many-streams';
import { memoryScenario } from './scenarios/memory';
import { realisticStreamScenario } from './scenarios/realistic-stream';
import { roomThreadsScenario } from './scenarios/room-threads';
import { turnWaitsScenario } from './scenarios/turn-waits';
import { ANCHORS, FIXED_COST_LIMITS, runThroughputScenario } from './scenarios/run-throughput';
import { sseOverheadScenario } from './scenarios/sse-overhead';
import { throughputScenario } from './scenarios/throughput';

const SCENARIOS = [
  'generation',
  'realisticStream',
  'fanout',
  'sseOverhead',
  'throughput',
  'runThroughput',
  'memory',
  'churn',
  'cancel',
  'recovery',
  'manyStreams',
  'budget',
  'roomThreads',
  'turnWaits',
  'knowledge',
] as const;
type ScenarioName = (typeof SCENARIOS)[number];

const RESULTS_DIR = path.resolve(__dirname, 'results');

function parseArgs(argv: string[]) {
  const only = argv
    .find((arg) => arg.startsWith('--only='))
    ?.slice('--only='.length)
    .split(',')
    .filter(Boolean);
  const unknown = only?.filter((name) => !(SCENARIOS as readonly string[]).includes(name)) ?? [];
  if (unknown.length) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}`);
  const profile = argv.find((arg) => arg.startsWith('--profile='))?.slice('--profile='.length);
  const known = /^--(only=|profile=|rounds=\d+$|quick$|smoke$|redis-cluster$|paired$)/;
  const stray = argv.filter((arg) => !known.test(arg));
  if (stray.length) throw new Error(`unknown flag(s) ${stray.join(' ')}; see the header of bench/run.ts`);
  const paired = argv.includes('--paired');
  if (paired && argv.includes('--redis-cluster')) throw new Error('--paired runs on both topologies; leave out --redis-cluster');
  const rounds = argv.find((arg) => arg.startsWith('--rounds='));
  if (rounds && !paired) throw new Error('--rounds= is for --paired');
  const smoke = argv.includes('--smoke');
  const mode: BenchMode = smoke ? 'smoke' : argv.includes('--quick') ? 'quick' : 'full';
  const topology: RunTopology = paired ? 'paired' : argv.includes('--redis-cluster') ? 'cluster' : 'single';
  return {
    only: (only ?? [...SCENARIOS]) as ScenarioName[],
    mode,
    topology,
    rounds: rounds ? Math.max(1, Number(rounds.slice('--rounds='.length))) : mode === 'full' ? 3 : 1,
    profileDir: profile ? path.resolve(profile) : undefined,
  };
}

/** One topology, or `paired`: every scenario on one Redis and on the cluster, in alternating rounds. */
type RunTopology = RedisTopology | 'paired';

function machine() {
  const cpus = os.cpus();
  const redis = spawnSync(process.env.REDIS_SERVER_BIN ?? 'redis-server', ['--version'], { encoding: 'utf8' }).stdout?.trim();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    totalMemBytes: os.totalmem(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    redis: /v=(\S+)/.exec(redis ?? '')?.[1],
    loadAvgAtStart: os.loadavg().map((value) => Math.round(value * 100) / 100),
    source: source(),
  };
}

/** The commit measured, and whether src/ or config/ differ from it (BENCH_SOURCE_COMMIT names a snapshot without .git). */
function source() {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  if (head.status !== 0) return { commit: process.env.BENCH_SOURCE_COMMIT, modifiedSourceFiles: undefined };
  const dirty = git('status', '--porcelain', '--', 'src', 'config').stdout.split('\n').filter(Boolean).length;
  return { commit: head.stdout.trim(), modifiedSourceFiles: dirty };
}

/** What each scenario runs in `mode`, on `ctx`'s Redis. */
function plansFor(ctx: BenchContext, mode: BenchMode): Record<ScenarioName, () => Promise<unknown>> {
  const q = mode !== 'full';
  return mode === 'smoke'
    ? {
        generation: () => generationScenario(ctx, { runs: 2, warmups: 1, clients: 20, blocks: 50 }),
        realisticStream: () => realisticStreamScenario(ctx, { callCounts: [18, 91], reps: 1, warmups: 1 }),
        fanout: () =>
          fanoutScenario(ctx, {
            clientCounts: [50],
            clientKinds: ['lean', 'socket.io-client'],
            reps: 1,
            clientLibraryReps: 1,
            warmups: 1,
          }),
        sseOverhead: () => sseOverheadScenario(ctx, { generations: 1, warmups: 1, calls: 20, gapMs: 10 }),
        throughput: () => throughputScenario(ctx, { workerCounts: [1], generations: 10, bursts: 1, users: 5, blocks: 20 }),
        runThroughput: () =>
          runThroughputScenario(ctx, {
            workerCounts: [1],
            concurrencies: [1, 4],
            warmupMs: 200,
            windowMs: 500,
            repeats: 1,
            bullmqConcurrency: 8,
          }),
        memory: () => memoryScenario(ctx, { steps: [100, 200] }),
        churn: () =>
          churnScenario(ctx, {
            clients: 20,
            seconds: 5,
            cutsPerClientPerSecond: 1 / 15,
            offlineMs: 500,
            blocksPerGeneration: 14,
            apiNodes: 2,
          }),
        cancel: () => cancelScenario(ctx, { runs: 2, warmups: 1, calls: 40, delayMs: 20, cancelAfterBlocks: 2 }),
        recovery: () => recoveryScenario(ctx, { runs: 1, calls: 20, delayMs: 30 }),
        manyStreams: () => manyStreamsScenario(ctx, { steps: [100, 200], hot: 50, calls: 10, gapMs: 10 }),
        budget: () => budgetScenario(ctx, { admissions: 50, warmups: 10 }),
        roomThreads: () => roomThreadsScenario(ctx, { members: 10, posters: 2, turnsPerPoster: 2, reconnects: 3, apiNodes: 2 }),
        turnWaits: () => turnWaitsScenario(ctx, { turns: 3, warmups: 1 }),
        // The index path too: its threshold lowered below the reader's 300 chunks.
        knowledge: () =>
          knowledgeScenario(ctx, {
            documents: 1,
            pages: 2,
            chunks: 300,
            otherChunks: 100,
            queries: 5,
            exactScanQueries: 5,
            warmups: 1,
            exactScopeChunks: 250,
          }),
      }
    : {
        generation: () => generationScenario(ctx, { runs: q ? 5 : 30, warmups: q ? 1 : 3, clients: 100, blocks: 200 }),
        // ~1k, 5k, 11k and 20k chunks: CPU against chunks should be a straight line.
        realisticStream: () => realisticStreamScenario(ctx, { callCounts: [18, 91, 200, 364], reps: q ? 1 : 5, warmups: 1 }),
        fanout: () =>
          fanoutScenario(ctx, {
            clientCounts: [100, 500],
            clientKinds: ['lean', 'socket.io-client'],
            // A 100-client broadcast takes 10 – 25 ms and single reps spread over that whole range
            // on a 2-core VM: 31 reps give a median that moves less between runs than 11 did.
            reps: q ? 2 : 31,
            clientLibraryReps: q ? 1 : 5,
            warmups: q ? 1 : 3,
          }),
        sseOverhead: () => sseOverheadScenario(ctx, { generations: q ? 2 : 8, warmups: 1, calls: 60, gapMs: 10 }),
        throughput: () =>
          throughputScenario(ctx, { workerCounts: [1, 2], generations: q ? 20 : 50, bursts: q ? 1 : 3, users: 10, blocks: 20 }),
        // Runs/s per core of the lightest runs: closed-loop sweeps until runs/s stops growing, three in a full run.
        runThroughput: () =>
          runThroughputScenario(ctx, {
            workerCounts: [1, 2],
            concurrencies: [1, 2, 4, 8, 16, 32, 64, 128],
            warmupMs: q ? 500 : 1_000,
            windowMs: q ? 2_000 : 5_000,
            repeats: q ? 1 : 3,
            bullmqConcurrency: 64,
          }),
        memory: () => memoryScenario(ctx, { steps: [250, 500, 750, 1000] }),
        // Delivery under connection churn: 1,000 clients over two API nodes, 1/15 of them cut each
        // second, ~2 s away, 60 s.
        churn: () =>
          churnScenario(ctx, {
            clients: q ? 100 : 1_000,
            apiNodes: 2,
            seconds: q ? 15 : 60,
            cutsPerClientPerSecond: 1 / 15,
            offlineMs: 2_000,
            blocksPerGeneration: 14,
          }),
        // Cancel latency: a model streaming a block every 20 ms, stopped after the third block reached the client.
        cancel: () => cancelScenario(ctx, { runs: q ? 5 : 40, warmups: q ? 1 : 3, calls: 200, delayMs: 20, cancelAfterBlocks: 3 }),
        // Crash recovery: kill -9 of the worker running a generation → a surviving worker starts it again.
        recovery: () => recoveryScenario(ctx, { runs: q ? 2 : 5, calls: 20, delayMs: 30 }),
        // 10,000 open SSE streams on one API node, 1,000 of them following a generation that streams.
        manyStreams: () =>
          manyStreamsScenario(ctx, { steps: q ? [2_500, 10_000] : [2_500, 5_000, 9_000, 10_000], hot: 1_000, calls: 60, gapMs: 10 }),
        // What the budget door adds before a generation is queued.
        budget: () => budgetScenario(ctx, { admissions: q ? 500 : 2_000, warmups: 100 }),
        // A team in one room thread: 50 members on two API nodes, 5 posting at once, turns with tools and approvals.
        roomThreads: () =>
          roomThreadsScenario(ctx, { members: 50, posters: 5, turnsPerPoster: q ? 2 : 4, reconnects: q ? 10 : 50, apiNodes: 2 }),
        // A chat turn parked on an approval, then decided: what the wait holds and how soon the turn goes on.
        turnWaits: () => turnWaitsScenario(ctx, { turns: q ? 20 : 100, warmups: 3 }),
        // Knowledge: 50-page PDFs ingested through the queues; retrieval and recall@10 at 100,000 chunks
        // of the reader's (10,000 of another user's beside them), on PGlite and on the PostgreSQL server.
        knowledge: () =>
          knowledgeScenario(ctx, {
            documents: q ? 4 : 12,
            pages: 50,
            chunks: q ? 20_000 : 100_000,
            otherChunks: q ? 2_000 : 10_000,
            queries: q ? 50 : 200,
            exactScanQueries: q ? 5 : 12,
            warmups: 2,
          }),
      };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const started = new Date();
  const log = (line: string) =>
    process.stderr.write(`[bench ${((Date.now() - started.getTime()) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-bench-'));
  const results: Record<string, unknown> = {
    startedAt: started.toISOString(),
    machine: machine(),
    quick: args.mode !== 'full',
    mode: args.mode,
    topology: args.topology,
  };
  const redis = await startEmbeddedRedis(dataDir);
  let cluster: LocalRedisCluster | undefined;
  let fleet: ClientFleet | undefined;
  try {
    if (args.topology !== 'single') {
      cluster = await startRedisCluster(3);
      log(`Redis Cluster of 3 masters on ${cluster.nodes}; the raw floors keep the single redis-server`);
      results.redisCluster = { masters: cluster.ports.length, nodes: cluster.nodes };
    }
    const running = await ClientFleet.start();
    fleet = running;
    const contextOn = (topology: RedisTopology): BenchContext => ({
      redis: topology === 'cluster' ? clusterBenchRedis(cluster!.ports) : singleBenchRedis(redis.url),
      floorRedisUrl: redis.url,
      dataDir,
      fleet: running,
      postgresUrl: process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : LOCAL_POSTGRES,
      log,
      quick: args.mode !== 'full',
      smoke: args.mode === 'smoke',
      profileDir: args.profileDir,
    });
    if (args.profileDir) mkdirSync(args.profileDir, { recursive: true });
    const quiet = await settleMachine();
    const probe = await hostProbe(redis.url);
    results.machine = { ...(results.machine as object), otherCoresBusyAtStart: quiet, probe };
    log(`host: a PING to redis-server ${probe.redisPingUs} µs, the fixed JS loop ${probe.jsLoopMs} ms (medians)`);
    if (quiet > 0.25)
      log(`warning: other processes keep ${quiet.toFixed(2)} cores busy; results will be noisy (see machine.otherCoresBusyAtStart)`);
    if (args.topology === 'paired') {
      const plans = { single: plansFor(contextOn('single'), args.mode), cluster: plansFor(contextOn('cluster'), args.mode) };
      const runs: Record<RedisTopology, Array<Record<string, unknown>>> = { single: [], cluster: [] };
      results.runs = runs;
      results.rounds = args.rounds;
      // Each scenario's runs on the two topologies follow each other, so a pair is taken minutes apart at most.
      for (const name of args.only)
        for (let round = 0; round < args.rounds; round += 1)
          for (const topology of roundOrder(round))
            (runs[topology][round] ??= {})[name] = await measure(
              `${name} on ${topology === 'single' ? 'one Redis' : 'the cluster'}, round ${round + 1} of ${args.rounds}`,
              plans[topology][name],
              log,
            );
      // The host's speed again at the end: a paired run is read against how far it drifted.
      results.machine = { ...(results.machine as object), probeAtEnd: await hostProbe(redis.url) };
    } else {
      const plans = plansFor(contextOn(args.topology), args.mode);
      for (const name of args.only) results[name] = await measure(name, plans[name], log);
    }
  } finally {
    await fleet?.stop();
    if (cluster) {
      // Keys each master holds at the end: proof the run's data spread over the cluster's slots.
      const keysPerMaster = cluster.ports.map((port) =>
        Number(spawnSync('redis-cli', ['-p', String(port), 'dbsize'], { encoding: 'utf8' }).stdout.trim()),
      );
      results.redisCluster = { ...(results.redisCluster as object), keysPerMasterAtEnd: keysPerMaster };
    }
    await cluster?.stop();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }

  const finished = new Date();
  Object.assign(results, {
    finishedAt: finished.toISOString(),
    durationS: Math.round((finished.getTime() - started.getTime()) / 100) / 10,
  });
  if (args.topology === 'paired') {
    const runs = results.runs as Record<RedisTopology, Array<Record<string, unknown>>>;
    const measured = (run: Record<string, unknown>) =>
      targets(run).filter((target) => args.only.some((name) => name === scenarioOf(target)));
    const comparison = comparePaired({ single: runs.single.map(measured), cluster: runs.cluster.map(measured) });
    results.comparison = comparison;
    process.stdout.write(`\n${renderPaired(results, comparison)}\n`);
  } else {
    const verdicts = judgedTargets(results);
    results.targets = verdicts;
    const previous = previousTargets(args.topology === 'single' ? 'latest.json' : `${args.topology}-latest.json`);
    const measured = verdicts.filter((target) => args.only.some((name) => name === scenarioOf(target)));
    const compared = previous ? regressions(measured, previous.targets) : [];
    results.regressions = previous ? { against: previous.startedAt, threshold: REGRESSION_THRESHOLD, targets: compared } : undefined;
    process.stdout.write(
      `\n${render(results)}\n\n${table(
        ['target', 'value', 'limit', 'verdict'],
        verdicts.map((v) => [
          v.name,
          v.value === undefined ? undefined : `${fmt(v.value)} ${v.unit}`,
          `${v.direction === 'max' ? '≤' : '≥'} ${fmt(v.limit)} ${v.unit}`,
          v.verdict,
        ]),
      )}\n`,
    );
    process.stdout.write(`\n${renderRegressions(compared, previous?.startedAt, results)}\n`);
  }

  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  // Cluster and paired runs' files are named apart, so their figures never replace or mix with the single-Redis ones.
  const named = (name: string) => path.join(RESULTS_DIR, args.topology === 'single' ? name : `${args.topology}-${name}`);
  const latest = named('latest.json');
  // A paired run's file holds what it ran and is never merged with an earlier one.
  const partial = args.mode === 'full' && args.topology !== 'paired' && args.only.length < SCENARIOS.length && existsSync(latest);
  // Only a full run is comparable, so only a full run replaces latest.json (the committed figures).
  const written =
    args.mode === 'full'
      ? [
          latest,
          named(
            `${started
              .toISOString()
              .replace(/:/g, '-')
              .replace(/\.\d+Z$/, 'Z')}.json`,
          ),
        ]
      : [named(`${args.mode}.json`)];
  for (const file of written) writeFileSync(file, file === latest && partial ? mergedLatest(latest, results, args.only) : json);
  process.stdout.write(`\nresults: ${written.map((file) => path.relative(process.cwd(), file)).join(', ')} (${results.durationS} s)\n`);

  // Everything is closed by now, so the process exits on its own. If something still holds the
  // event loop, say what instead of hanging silently (the timer itself never keeps it alive).
  setTimeout(() => {
    process.stderr.write(`bench: still running 10 s after finishing; open handles: ${process.getActiveResourcesInfo().join(', ')}\n`);
    process.exit(process.exitCode ?? 1);
  }, 10_000).unref();
}

/**
 * Runs one scenario and adds how busy the machine was meanwhile (`environment`); a scenario that
 * throws gives `{ error }` and makes the run exit with 1, and the other scenarios still run.
 */
async function measure(label: string, plan: () => Promise<unknown>, log: (line: string) => void): Promise<Record<string, unknown>> {
  log(`${label}: starting`);
  const t0 = Date.now();
  const cpu0 = { machine: machineCpuMs(), own: ownCpuMs(), load: os.loadavg()[0] };
  try {
    const result = (await plan()) as Record<string, unknown>;
    const seconds = (Date.now() - t0) / 1000;
    const machineBusy = (machineCpuMs().busy - cpu0.machine.busy) / 1000 / seconds;
    // How busy the machine was while the scenario ran, to judge its numbers (2 cores = 2.0).
    result.environment = {
      seconds: Math.round(seconds * 10) / 10,
      machineCoresBusy: Math.round(machineBusy * 100) / 100,
      benchProcessCores: Math.round(((ownCpuMs() - cpu0.own) / 1000 / seconds) * 100) / 100,
      loadAvg1: [Math.round(cpu0.load * 100) / 100, Math.round(os.loadavg()[0] * 100) / 100],
    };
    log(`${label}: done in ${seconds.toFixed(1)} s`);
    return result;
  } catch (error) {
    log(`${label}: FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/** The scenario a target is read from: the first part of its metric (`fanout.byClients[...]` → `fanout`). */
const scenarioOf = (target: Target) => target.metric.split(/[.[]/, 1)[0];

/**
 * latest.json after a full run of some scenarios: theirs replaced, the others kept, the targets
 * judged again over the whole, and `note` saying which figures come from which run.
 */
function mergedLatest(file: string, results: Record<string, unknown>, only: readonly string[]): string {
  const merged = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  for (const name of only) merged[name] = results[name];
  merged.topology = results.topology;
  merged.targets = judgedTargets(merged);
  const note = `${only.join(', ')} from the full run at ${String(results.startedAt)} (machine: ${JSON.stringify((results.machine as { loadAvgAtStart?: unknown }).loadAvgAtStart)} load at start)`;
  merged.note = merged.note ? `${String(merged.note)}; ${note}` : note;
  return `${JSON.stringify(merged, null, 2)}\n`;
}

/** The committed results' targets (read before this run replaces them), or undefined when there are none. */
function previousTargets(file: string): { startedAt: string; targets: Target[] } | undefined {
  const latest = path.join(RESULTS_DIR, file);
  if (!existsSync(latest)) return undefined;
  const earlier = JSON.parse(readFileSync(latest, 'utf8')) as Record<string, unknown>;
  return { startedAt: String(earlier.startedAt), targets: targets(earlier) };
}

/**
 * Each measured target against the previous full run's (bench/results/latest.json), by scenario:
 * a target 10 % or more worse is REGRESSED, whatever its verdict, so a loss is seen in review.
 */
function renderRegressions(
  compared: ReturnType<typeof regressions>,
  against: string | undefined,
  results: Record<string, unknown>,
): string {
  if (!against) return 'regressions: no previous latest.json to compare with';
  const note =
    results.mode === 'full' ? '' : ` (this is a ${String(results.mode)} run: its figures are not comparable, read the changes as a hint)`;
  const worse = compared.filter((row) => row.regressed);
  const rows = compared.map((row) => [
    scenarioOf({ metric: row.metric } as Target),
    row.name,
    `${fmt(row.previous)} ${row.unit}`.trim(),
    `${fmt(row.value)} ${row.unit}`.trim(),
    Number.isFinite(row.worseBy)
      ? `${row.worseBy > 0 ? '+' : ''}${fmt(row.worseBy * 100)} % ${row.worseBy > 0 ? 'worse' : 'better'}`
      : 'worse (was 0)',
    row.regressed ? 'REGRESSED' : '',
  ]);
  return [
    `against the previous full run (latest.json of ${against})${note}: ${worse.length ? `${worse.length} target(s) ${REGRESSION_THRESHOLD * 100} % or more worse: ${worse.map((row) => row.name).join('; ')}` : `no target ${REGRESSION_THRESHOLD * 100} % or more worse`}`,
    table(['feature', 'target', 'previous', 'now', 'change', ''], rows),
  ].join('\n');
}

/** Every target of `results` with its verdict, as the JSON keeps them. */
const judgedTargets = (results: Record<string, unknown>) => judge(targets(results));

/** After the machine line: a smoke or quick run's figures are not to be compared. */
const modeNote = (results: Record<string, unknown>) =>
  results.mode === 'smoke' ? ' (SMOKE: checks every scenario runs; not comparable)' : results.quick ? ' (QUICK: not comparable)' : '';

const fmt = (value: number) =>
  Math.abs(value) >= 1000 ? Math.round(value).toLocaleString('en-US') : String(Math.round(value * 100) / 100);

type AnyResult = Record<string, any> | undefined;

function targets(results: Record<string, unknown>): Target[] {
  const generation = results.generation as AnyResult;
  const fanout = results.fanout as AnyResult;
  const sse = results.sseOverhead as AnyResult;
  const memory = results.memory as AnyResult;
  const stream = results.realisticStream as AnyResult;
  const rooms = results.roomThreads as AnyResult;
  const list: Target[] = [
    { name: 'generation ratioP50', metric: 'generation.ratioP50', value: generation?.ratioP50, limit: 1.5, direction: 'max', unit: '×' },
  ];
  list.push(
    {
      name: 'room thread: members with every event once, in order',
      metric: 'roomThreads.exactlyOnceInOrderPct',
      value: rooms?.exactlyOnceInOrderPct,
      limit: 100,
      direction: 'min',
      unit: '%',
    },
    {
      name: 'room thread: replay after a reconnect p99',
      metric: 'roomThreads.replayAfterReconnectMs.p99',
      value: rooms?.replayAfterReconnectMs?.p99,
      limit: 250,
      direction: 'max',
      unit: 'ms',
    },
    {
      name: 'room thread: decision → every member p99',
      metric: 'roomThreads.decisionToMemberMs.p99',
      value: rooms?.decisionToMemberMs?.p99,
      limit: 250,
      direction: 'max',
      unit: 'ms',
    },
  );
  const waits = results.turnWaits as AnyResult;
  list.push(
    {
      name: 'turn waits: assistant jobs active while turns wait on a decision',
      metric: 'turnWaits.activeAssistantJobsWhileWaiting',
      value: waits?.activeAssistantJobsWhileWaiting,
      limit: 0,
      direction: 'max',
      unit: '',
    },
    {
      name: 'turn waits: decision → the resumed turn goes on, p95',
      metric: 'turnWaits.decisionToResumedMs.p95',
      value: waits?.decisionToResumedMs?.p95,
      limit: 250,
      direction: 'max',
      unit: 'ms',
    },
  );
  list.push({
    name: 'realistic stream CPU / openai SDK',
    metric: 'realisticStream.ratioToOpenaiSdk',
    value: stream?.ratioToOpenaiSdk,
    limit: 2,
    direction: 'max',
    unit: '×',
  });
  list.push({
    name: 'realistic stream CPU / minimal consumer',
    metric: 'realisticStream.ratioToMinimalConsumer',
    value: stream?.ratioToMinimalConsumer,
    limit: 2,
    direction: 'max',
    unit: '×',
  });
  list.push({
    name: 'last model byte → complete p50',
    metric: 'realisticStream.lastByteToCompleteMs.p50',
    value: stream?.lastByteToCompleteMs?.p50,
    limit: 50,
    direction: 'max',
    unit: 'ms',
  });
  list.push({
    name: 'first call → first tool_output p50',
    metric: 'realisticStream.firstCallToFirstToolOutputMs.p50',
    value: stream?.firstCallToFirstToolOutputMs?.p50,
    limit: 50,
    direction: 'max',
    unit: 'ms',
  });
  list.push({
    name: 'POST → model has the request p50',
    metric: 'realisticStream.postToModelRequestMs.p50',
    value: stream?.postToModelRequestMs?.p50,
    limit: 10,
    direction: 'max',
    unit: 'ms',
  });
  list.push({
    name: 'POST → model has the request p95',
    metric: 'realisticStream.postToModelRequestMs.p95',
    value: stream?.postToModelRequestMs?.p95,
    limit: 25,
    direction: 'max',
    unit: 'ms',
  });
  list.push({
    name: 'model first token → first SSE byte p95',
    metric: 'realisticStream.modelFirstTokenToFirstSseMs.p95',
    value: stream?.modelFirstTokenToFirstSseMs?.p95,
    limit: 25,
    direction: 'max',
    unit: 'ms',
  });
  const leanRows = (fanout?.byClients as Array<{ clients: number; client: string; shareOfRaw: number }> | undefined)?.filter(
    (row) => row.client === 'lean',
  );
  for (const row of leanRows ?? [{ clients: 0, shareOfRaw: undefined as unknown as number }]) {
    // The fan-out target: at least 0.8 of raw Socket.IO at 100 clients and 0.9 from 500 on.
    const limit = row.clients >= 500 ? 0.9 : 0.8;
    list.push({
      name: `fanout shareOfRaw (${row.clients || '?'} clients)`,
      metric: `fanout.byClients[client=lean,clients=${row.clients}].shareOfRaw`,
      value: row.shareOfRaw,
      limit,
      direction: 'min',
      unit: '×',
    });
  }
  const throughput = results.throughput as AnyResult;
  list.push({
    name: 'worker CPU per 20-block generation',
    metric: 'throughput.byWorkers[workers=1].workerCpuMsPerGeneration',
    value: throughput?.byWorkers?.[0]?.workerCpuMsPerGeneration,
    limit: 10,
    direction: 'max',
    unit: 'ms',
  });
  const runs = results.runThroughput as AnyResult;
  list.push({
    name: `light runs per core, 1 worker (Hatchet: ${ANCHORS.hatchetRunsPerVcpu} per vCPU)`,
    metric: 'runThroughput.runsPerCore',
    value: runs?.runsPerCore,
    limit: ANCHORS.hatchetRunsPerVcpu,
    direction: 'min',
    unit: '/s',
  });
  list.push({
    name: `light runs per second, best worker count (n8n queue mode: ~${ANCHORS.n8nRunsPerS})`,
    metric: 'runThroughput.runsPerS',
    value: runs?.runsPerS,
    limit: ANCHORS.n8nRunsPerS,
    direction: 'min',
    unit: '/s',
  });
  list.push({
    name: 'all-in CPU per light run at saturation, 1 worker (API, worker, PostgreSQL, Redis)',
    metric: 'runThroughput.byWorkers[workers=1].allInCpuMsPerRun',
    value: runs?.byWorkers?.find((row: AnyResult) => row?.workers === 1)?.allInCpuMsPerRun,
    limit: 4,
    direction: 'max',
    unit: 'ms',
  });
  // The fixed costs of a light run, held to the limits the scenario states (FIXED_COST_LIMITS).
  for (const [kind, limits] of Object.entries(FIXED_COST_LIMITS)) {
    const costs = runs?.costsPerRun?.byKind?.[kind] as AnyResult;
    const metric = `runThroughput.costsPerRun.byKind.${kind}`;
    list.push(
      {
        name: `statements per ${kind} run (API + worker)`,
        metric: `${metric}.postgresStatements.total`,
        value: costs?.postgresStatements?.total,
        limit: limits.statements,
        direction: 'max',
        unit: '',
      },
      {
        name: `PostgreSQL commits per ${kind} run`,
        metric: `${metric}.postgresCommits`,
        value: costs?.postgresCommits,
        limit: limits.commits,
        direction: 'max',
        unit: '',
      },
      {
        name: `Redis round trips per ${kind} run`,
        metric: `${metric}.redisRoundTrips.total`,
        value: costs?.redisRoundTrips?.total,
        limit: limits.redisRoundTrips,
        direction: 'max',
        unit: '',
      },
    );
  }
  const budget = results.budget as AnyResult;
  list.push({
    name: 'budget reservation added before enqueue, p50',
    metric: 'budget.addedP50Ms',
    value: budget?.addedP50Ms,
    limit: 1,
    direction: 'max',
    unit: 'ms',
  });
  list.push({ name: 'sseOverhead p50', metric: 'sseOverhead.p50Ms', value: sse?.p50Ms, limit: 3, direction: 'max', unit: 'ms' });
  const churn = results.churn as AnyResult;
  list.push({
    name: 'churn delivery to the app (SDK)',
    metric: 'churn.deliveryPct.sdk',
    value: churn?.deliveryPct?.sdk,
    limit: 100,
    direction: 'min',
    unit: '%',
  });
  list.push({
    name: 'churn blocks handed again to an app that held them',
    metric: 'churn.repeatedBlocksHanded',
    value: churn?.repeatedBlocksHanded,
    limit: 0,
    direction: 'max',
    unit: '',
  });
  list.push({
    name: 'churn replay p99 from reconnect',
    metric: 'churn.replayFromReconnectAttemptMs.p99',
    value: churn?.replayFromReconnectAttemptMs?.p99,
    limit: 250,
    direction: 'max',
    unit: 'ms',
  });
  const cancel = results.cancel as AnyResult;
  list.push({
    name: 'cancel → cancelled at the client p95',
    metric: 'cancel.cancelToCancelledMs.p95',
    value: cancel?.cancelToCancelledMs?.p95,
    limit: 500,
    direction: 'max',
    unit: 'ms',
  });
  const recovery = results.recovery as AnyResult;
  list.push({
    name: "kill -9 of a generation's worker → resumed on a survivor, worst run",
    metric: 'recovery.killToResumedMs.max',
    value: recovery?.killToResumedMs?.max,
    limit: 15_000,
    direction: 'max',
    unit: 'ms',
  });
  const streams = results.manyStreams as AnyResult;
  list.push({
    name: 'open SSE streams held',
    metric: 'manyStreams.streamsHeld',
    value: streams?.streamsHeld,
    limit: streams?.config?.steps?.at(-1) ?? 10_000,
    direction: 'min',
    unit: '',
  });
  // "A constant number of Redis connections": the count must not grow with the streams. The node's
  // one stream reader connects with the first stream, so growth is read from the first step to the last.
  list.push({
    name: 'Redis connections added, first → last step',
    metric: 'manyStreams.redisConnectionsGrowth',
    value: streams?.redisConnectionsGrowth,
    limit: 0,
    direction: 'max',
    unit: '',
  });
  list.push({
    name: 'memory per SSE stream',
    metric: 'manyStreams.bytesPerStream',
    value: streams?.bytesPerStream,
    limit: 20 * 1024,
    direction: 'max',
    unit: 'B',
  });
  list.push({
    name: 'SSE event latency p99 (1,000 hot streams)',
    metric: 'manyStreams.eventLatencyMs.p99',
    value: streams?.eventLatencyMs?.p99,
    limit: 50,
    direction: 'max',
    unit: 'ms',
  });
  list.push({
    name: 'memory per socket',
    metric: 'memory.bytesPerSocket',
    value: memory?.bytesPerSocket,
    limit: 20 * 1024,
    direction: 'max',
    unit: 'B',
  });
  list.push(...knowledgeTargets(results));
  return list;
}

function render(results: Record<string, unknown>): string {
  const out: string[] = [];
  const m = results.machine as Record<string, unknown>;
  const note = modeNote(results);
  const cluster = results.redisCluster as { masters: number; keysPerMasterAtEnd?: number[] } | undefined;
  const topology = cluster
    ? `Redis Cluster of ${cluster.masters} masters (raw floors on one redis-server); keys per master at the end ${cluster.keysPerMasterAtEnd?.join(' / ') ?? '?'}`
    : 'one redis-server';
  out.push(`Switchboard benchmark — ${m.cpus} × ${m.cpuModel}, node ${m.node}, redis ${m.redis}${note}`);
  const probe = m.probe as { redisPingUs: number; jsLoopMs: number } | undefined;
  if (probe)
    out.push(
      `host: a PING to redis-server ${probe.redisPingUs} µs, the fixed JS loop ${probe.jsLoopMs} ms (medians; compare hosts by these)`,
    );
  out.push(`topology: ${results.topology} — ${topology}`);
  const rows: Array<Array<string | number | undefined>> = [];
  const g = results.generation as AnyResult;
  if (g?.error) rows.push(['generation', 'error', g.error]);
  else if (g) {
    rows.push([
      'generation',
      `end to end, ${g.config.blocks} blocks → ${g.config.clients} clients: p50 / p99`,
      `${fmt(g.p50Ms)} / ${fmt(g.p99Ms)} ms`,
    ]);
    rows.push([
      '',
      'floor (queue + model stream + insert + emit): p50',
      `${fmt(g.floorP50Ms)} ms (${fmt(g.floorPartsP50Ms.queue)} + ${fmt(g.floorPartsP50Ms.model)} + ${fmt(g.floorPartsP50Ms.insert)} + ${fmt(g.floorPartsP50Ms.emit)})`,
    ]);
    rows.push(['', 'ratioP50 (median of paired run ratios)', `${fmt(g.ratioP50)} × (${fmt(g.ratioPairedMedian)} ×)`]);
  }
  const r = results.realisticStream as AnyResult;
  if (r?.error) rows.push(['realisticStream', 'error', r.error]);
  else if (r) {
    for (const row of r.bySize) {
      rows.push([
        row === r.bySize[0] ? 'realisticStream' : '',
        `${fmt(row.chunks)} chunks (${row.megabytes} MB): CPU ours / openai SDK / minimal consumer`,
        `${fmt(row.cpuMsP50.switchboard)} / ${fmt(row.cpuMsP50.openaiSdk)} / ${fmt(row.cpuMsP50.bare)} ms (${fmt(row.ratioToMinimalConsumer ?? NaN)} × minimal, ${fmt(row.ratioToOpenaiSdk)} × SDK; ${fmt(row.switchboardCpuMsPer1kChunks)} ms per 1k chunks)`,
      ]);
    }
    rows.push([
      '',
      'last model byte → complete; first call → first tool_output: p50 / p99',
      `${fmt(r.lastByteToCompleteMs.p50)} / ${fmt(r.lastByteToCompleteMs.p99)} ms; ${fmt(r.firstCallToFirstToolOutputMs.p50)} / ${fmt(r.firstCallToFirstToolOutputMs.p99)} ms`,
    ]);
    rows.push([
      '',
      'POST → model has the request; model first token → first SSE byte: p50 / p95',
      `${fmt(r.postToModelRequestMs.p50)} / ${fmt(r.postToModelRequestMs.p95)} ms; ${fmt(r.modelFirstTokenToFirstSseMs.p50)} / ${fmt(r.modelFirstTokenToFirstSseMs.p95)} ms`,
    ]);
  }
  const f = results.fanout as AnyResult;
  if (f?.error) rows.push(['fanout', 'error', f.error]);
  else if (f) {
    for (const row of f.byClients) {
      rows.push([
        'fanout',
        `${row.clients} ${row.client} clients: ours / raw deliveries/s (p50 ms)`,
        `${fmt(row.oursDeliveriesPerS)} / ${fmt(row.rawDeliveriesPerS)} (${fmt(row.oursP50Ms)} / ${fmt(row.rawP50Ms)} ms)`,
      ]);
      rows.push([
        '',
        `${row.clients} ${row.client} clients: shareOfRaw (paired median); server CPU ours / raw`,
        `${fmt(row.shareOfRaw)} × (${fmt(row.shareOfRawPairedMedian)} ×); ${fmt(row.oursServerCpuMs)} / ${fmt(row.rawServerCpuMs)} ms`,
      ]);
      rows.push([
        '',
        `${row.clients} ${row.client} clients: to the first chunk ours / raw; no queue: total (share of raw), to the first chunk`,
        `${fmt(row.oursToFirstChunkP50Ms)} / ${fmt(row.rawToFirstChunkP50Ms)} ms; ${fmt(row.directP50Ms)} ms (${fmt(row.directShareOfRaw)} ×), ${fmt(row.directToFirstChunkP50Ms)} ms`,
      ]);
    }
  }
  const s = results.sseOverhead as AnyResult;
  if (s?.error) rows.push(['sseOverhead', 'error', s.error]);
  else if (s) {
    rows.push(['sseOverhead', 'model wrote call → tool_output on SSE: p50 / p99', `${fmt(s.p50Ms)} / ${fmt(s.p99Ms)} ms`]);
    rows.push([
      '',
      'call known complete → tool_output on SSE: p50 / p99',
      `${fmt(s.fromCallClosedP50Ms)} / ${fmt(s.fromCallClosedP99Ms)} ms`,
    ]);
  }
  const t = results.throughput as AnyResult;
  if (t?.error) rows.push(['throughput', 'error', t.error]);
  else if (t) {
    for (const row of t.byWorkers) {
      const cores = row.cpuOfMedianBurst;
      rows.push([
        row.workers === 1 ? 'throughput' : '',
        `${row.workers} worker process(es): generations/s (latency p50)`,
        `${fmt(row.generationsPerS)} /s (${fmt(row.latencyP50Ms)} ms)`,
      ]);
      rows.push([
        '',
        `  cores busy: machine / workers`,
        `${fmt(cores.machineCoresBusy)} / ${cores.workerProcessCores.map(fmt).join(' + ')}`,
      ]);
      rows.push([
        '',
        `  CPU per ${t.config.blocksPerGeneration}-block generation: workers / API`,
        `${fmt(row.workerCpuMsPerGeneration)} / ${fmt(row.apiCpuMsPerGeneration)} ms`,
      ]);
    }
  }
  const tw = results.turnWaits as AnyResult;
  if (tw?.error) rows.push(['turnWaits', 'error', tw.error]);
  else if (tw)
    rows.push(
      [
        'turnWaits',
        `${tw.turns} turns parked on an approval: run status while waiting; assistant jobs active then (most); parked after the request p95`,
        `${Object.entries(tw.statusesWhileWaiting as Record<string, number>)
          .map(([status, count]) => `${status} ${count}`)
          .join(', ')}; ${fmt(tw.activeAssistantJobsWhileWaiting)}; ${fmt(tw.requestToParkedMs.p95)} ms`,
      ],
      [
        '',
        'decision → the resumed turn goes on / → its final: p50 / p95 / max',
        `${fmt(tw.decisionToResumedMs.p50)} / ${fmt(tw.decisionToResumedMs.p95)} / ${fmt(tw.decisionToResumedMs.max)} ms; ${fmt(tw.decisionToFinalMs.p50)} / ${fmt(tw.decisionToFinalMs.p95)} / ${fmt(tw.decisionToFinalMs.max)} ms`,
      ],
    );
  const bd = results.budget as AnyResult;
  if (bd?.error) rows.push(['budget', 'error', bd.error]);
  else if (bd)
    rows.push([
      'budget',
      'admit p50 with limits / without / plan read alone (p99 with limits)',
      `${fmt(bd.admitP50Ms)} / ${fmt(bd.unlimitedAdmitP50Ms)} / ${fmt(bd.planReadP50Ms)} ms (${fmt(bd.admitP99Ms)} ms)`,
    ]);
  const rt = results.runThroughput as AnyResult;
  if (rt?.error) rows.push(['runThroughput', 'error', rt.error]);
  else if (rt) {
    for (const row of rt.byWorkers) {
      rows.push([
        row.workers === rt.byWorkers[0].workers ? 'runThroughput' : '',
        `${row.workers} worker process(es), saturated at ${row.saturationConcurrency} clients: runs/s; per core (cores in API + workers)`,
        `${fmt(row.runsPerS)} /s; ${fmt(row.runsPerCore)} /s per core (${fmt(row.ourCores)}) [sweeps ${row.runsPerSBySweep.map(fmt).join(', ')}] load ${row.loadAvg.join(' ')}`,
      ]);
      rows.push([
        '',
        "  per core of the pipeline (API + workers + PostgreSQL + Redis); the benchmark's own processes",
        `${fmt(row.runsPerPipelineCore)} /s per core (${fmt(row.pipelineCores)} cores); model stand-in + load generator ${fmt(row.harnessCores)} cores`,
      ]);
      const h = row.halfRateLatencyMs;
      rows.push([
        '',
        `  at half that rate (${fmt(h.rate)} /s): latency p50 / p99`,
        `${fmt(h.p50)} / ${fmt(h.p99)} ms load ${h.loadAvg.join(' ')}`,
      ]);
    }
    if (rt.scaling2vs1 !== undefined) rows.push(['', 'growth from 1 to 2 worker processes', `${fmt(rt.scaling2vs1)} ×`]);
    const b = rt.bullmq;
    rows.push([
      '',
      `anchor: bare BullMQ add → completed, ${b.concurrency} clients, one process (ours, this machine)`,
      `${fmt(b.jobsPerS)} jobs/s; ${fmt(b.jobsPerNodeCore)} per Node core (+ ${fmt(b.redisCores)} Redis cores) load ${b.loadAvg.join(' ')}`,
    ]);
    rows.push(['', `anchor: ${rt.anchors.hatchetNote}`, `${fmt(rt.anchors.hatchetRunsPerVcpu)} /s per vCPU`]);
    rows.push(['', `anchor: ${rt.anchors.n8nNote}`, `${fmt(rt.anchors.n8nRunsPerS)} /s`]);
    for (const [kind, c] of Object.entries((rt.costsPerRun?.byKind ?? {}) as Record<string, AnyResult>)) {
      rows.push([
        '',
        `per ${kind} run (${c!.runs} runs): Redis commands incl. in scripts (server µs) / round trips / event writes / PG statements API + worker / PG commits`,
        `${fmt(c!.redisCommands)} (${fmt(c!.redisServerUsec)} µs) / ${fmt(c!.redisRoundTrips?.total)} / ${fmt(c!.eventWrites)} / ${fmt(c!.postgresStatements?.api ?? NaN)} + ${fmt(c!.postgresStatements?.worker ?? NaN)} / ${fmt(c!.postgresCommits)}`,
      ]);
      rows.push([
        '',
        `per ${kind} run: CPU µs API / worker; log lines at info`,
        `${fmt(c!.apiCpuUs)} / ${fmt(c!.workerCpuUs)}; ${fmt(c!.logLinesAtInfo)}`,
      ]);
    }
  }
  const mem = results.memory as AnyResult;
  if (mem?.error) rows.push(['memory', 'error', mem.error]);
  else if (mem) {
    rows.push([
      'memory',
      `API RSS idle → ${mem.sockets} /canvas sockets (after GC)`,
      `${fmt(mem.idleRssBytes / 2 ** 20)} → ${fmt(mem.rssWithSocketsBytes / 2 ** 20)} MiB`,
    ]);
    rows.push([
      '',
      'bytes per socket: RSS delta / RSS slope / V8 heap (all after GC)',
      `${fmt(mem.bytesPerSocket)} / ${fmt(mem.slopeBytesPerSocket)} / ${fmt(mem.heapBytesPerSocket)} B`,
    ]);
  }
  const c = results.churn as AnyResult;
  if (c?.error) rows.push(['churn', 'error', c.error]);
  else if (c) {
    rows.push([
      'churn',
      `${c.config.clients} clients on ${c.config.apiNodes ?? 1} API node(s), ${c.cuts} cuts (${c.reconnectsRecovered} recovered): delivery Socket.IO alone / SDK`,
      `${c.deliveryPct.socketIoAlone} % / ${c.deliveryPct.sdk} % of ${fmt(c.roomEvents)} events × clients`,
    ]);
    rows.push([
      '',
      'clients with a gap: Socket.IO alone / SDK; events handed twice; blocks handed again (full reloads)',
      `${c.clientsWithGap.socketIoAlone} / ${c.clientsWithGap.sdk}; ${c.duplicatesHanded}; ${c.repeatedBlocksHanded} (${c.fullReloads})`,
    ]);
    rows.push([
      '',
      'replay, reconnect attempt → caught up: p50 / p99',
      `${fmt(c.replayFromReconnectAttemptMs.p50)} / ${fmt(c.replayFromReconnectAttemptMs.p99)} ms`,
    ]);
    rows.push([
      '',
      'catch-up CPU: per canvas:sync / all / share of the run',
      `${c.catchUp.cpuMsPerSync} ms / ${fmt(c.catchUp.cpuMsTotal)} ms / ${fmt(c.catchUp.shareOfRunCpu * 100)} %`,
    ]);
  }
  const k = results.cancel as AnyResult;
  if (k?.error) rows.push(['cancel', 'error', k.error]);
  else if (k) {
    rows.push([
      'cancel',
      "POST cancel on node B → `cancelled` at node A's client: p50 / p95 / p99",
      `${fmt(k.cancelToCancelledMs.p50)} / ${fmt(k.cancelToCancelledMs.p95)} / ${fmt(k.cancelToCancelledMs.p99)} ms`,
    ]);
    const closed = k.cancelToModelConnectionClosedMs;
    rows.push([
      '',
      'POST → 202; POST → model connection closed: p50 / p95',
      `${fmt(k.cancelTo202Ms.p50)} / ${fmt(k.cancelTo202Ms.p95)} ms; ${closed ? `${fmt(closed.p50)} / ${fmt(closed.p95)} ms` : 'not seen'}`,
    ]);
  }
  const rc = results.recovery as AnyResult;
  if (rc?.error) rows.push(['recovery', 'error', rc.error]);
  else if (rc) {
    rows.push([
      'recovery',
      'kill -9 of the worker running a generation → resumed on a survivor; → stream complete: p50 / max',
      `${fmt(rc.killToResumedMs.p50)} / ${fmt(rc.killToResumedMs.max)} ms; ${fmt(rc.killToCompletedMs.p50)} / ${fmt(rc.killToCompletedMs.max)} ms`,
    ]);
  }
  const ms = results.manyStreams as AnyResult;
  if (ms?.error) rows.push(['manyStreams', 'error', ms.error]);
  else if (ms) {
    rows.push([
      'manyStreams',
      `SSE streams open on one API node (refused)`,
      `${fmt(ms.streamsHeld)} (${fmt(ms.refused)}${ms.firstError ? `: ${ms.firstError}` : ''})`,
    ]);
    rows.push([
      '',
      'Redis connections of the API node: idle → per step',
      `${ms.redisConnectionsIdle} → ${ms.readings
        .slice(1)
        .map((r: { redisConnections: number; streams: number }) => `${r.redisConnections} (${fmt(r.streams)})`)
        .join(' → ')}`,
    ]);
    rows.push([
      '',
      'bytes per stream (RSS after GC, young generation at rest): delta from idle / slope over the steps with streams',
      `${fmt(ms.bytesPerStream ?? NaN)} / ${fmt(ms.marginalBytesPerStream ?? NaN)} B`,
    ]);
    const l = ms.eventLatencyMs;
    rows.push([
      '',
      `model wrote call → tool_output at ${ms.config.hotStreams} streams: p50 / p95 / p99`,
      l
        ? `${fmt(l.p50)} / ${fmt(l.p95)} / ${fmt(l.p99)} ms (${fmt(l.deliveries)} deliveries, ${l.missing} missing)`
        : `not measured: ${ms.hotError}`,
    ]);
    const c = ms.hotCpuMs;
    if (c)
      rows.push([
        '',
        'while it streamed: CPU of the node / client fleet / worker + model / Redis',
        `${fmt(c.api)} / ${fmt(c.fleet)} / ${fmt(c.benchProcess)} / ${c.redis === undefined ? '—' : fmt(c.redis)} ms in ${fmt(c.wallMs)} ms`,
      ]);
  }
  rows.push(...knowledgeRows(results));
  out.push('', table(['scenario', 'measure', 'value'], rows));
  // Every figure is read with the machine's load: the 1-minute load average as each scenario started and ended.
  const loads = SCENARIOS.flatMap((name) => {
    const environment = (results[name] as AnyResult)?.environment as { loadAvg1?: number[] } | undefined;
    return environment?.loadAvg1 ? [`${name} ${environment.loadAvg1.join(' → ')}`] : [];
  });
  out.push('', `load average (1 min) at start ${(m.loadAvgAtStart as number[]).join(' ')}; per scenario, start → end: ${loads.join('; ')}`);
  return out.join('\n');
}

/** A paired run's report: each target on one Redis and on the cluster, round by round. */
function renderPaired(results: Record<string, unknown>, comparison: PairedTarget[]): string {
  const m = results.machine as Record<string, unknown>;
  const note = modeNote(results);
  const probe = (p: unknown) => {
    const { redisPingUs, jsLoopMs } = (p ?? {}) as { redisPingUs?: number; jsLoopMs?: number };
    return `PING ${redisPingUs ?? '?'} µs, JS loop ${jsLoopMs ?? '?'} ms`;
  };
  const cluster = results.redisCluster as { masters: number; keysPerMasterAtEnd?: number[] } | undefined;
  const value = (v: number | undefined, unit = '') => (v === undefined ? '—' : `${fmt(v)}${unit ? ` ${unit}` : ''}`);
  const each = (values: Array<number | undefined>) => values.map((v) => value(v)).join(', ');
  const rows = comparison.map((t) => [
    t.name,
    `${t.direction === 'max' ? '≤' : '≥'} ${fmt(t.limit)} ${t.unit}`,
    `${value(t.singleMedian, t.unit)} (${each(t.single)})`,
    `${value(t.clusterMedian, t.unit)} (${each(t.cluster)})`,
    `${value(t.clusterWorseByMedian, '×')} (${each(t.clusterWorseBy)})`,
    `${t.verdictSingle} / ${t.verdictCluster}`,
    t.onCluster,
  ]);
  const misses = comparison.filter((t) => t.onCluster === 'misses').map((t) => t.name);
  return [
    `Switchboard benchmark, paired — ${m.cpus} × ${m.cpuModel}, node ${m.node}, redis ${m.redis}${note}`,
    `host at the start: ${probe(m.probe)}; at the end: ${probe(m.probeAtEnd)}`,
    `topology: each scenario on one redis-server and on a Redis Cluster of ${cluster?.masters ?? '?'} masters in turn, ${String(results.rounds)} round(s), the order alternating (one Redis first in rounds 1, 3, …); keys per master at the end ${cluster?.keysPerMasterAtEnd?.join(' / ') ?? '?'}`,
    '',
    table(
      [
        'target',
        'limit',
        'one Redis: median (rounds)',
        'cluster: median (rounds)',
        'cluster worse by (rounds)',
        'verdict',
        'on the cluster',
      ],
      rows,
    ),
    '',
    "cluster worse by: the cluster's figure against one Redis's in the same round (above 1 = worse on the cluster).",
    "on the cluster: `holds` when the cluster's median meets the target; `as one Redis` when it misses it but did as well as one Redis or better in at least one round; `misses` when it misses it and did worse than one Redis in every round.",
    misses.length ? `the cluster misses: ${misses.join('; ')}` : 'no target misses on the cluster',
  ].join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});

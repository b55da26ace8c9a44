import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { createTestDatabase } from '../../test/support/database';
import { createCanvas, registerUser, type TestUser } from '../../test/support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../../test/support/processes';
import type { BenchContext } from '../lib/context';
import { benchEnv, cpuMsOf, cpuMsOfCommand, machineCpuMs, ownCpuMs, uniquePrefix } from '../lib/harness';
import { redisServerCpuMs } from '../lib/bench-redis';
import { startBulkModel } from '../lib/models';
import { Inspector } from '../lib/inspector';
import { generateStream } from '../lib/sse-client';
import { median, round, summarize } from '../lib/stats';
import { msBetween, now } from '../lib/timing';

export interface ThroughputOptions {
  workerCounts: number[];
  /** Generations per burst; each configuration runs `bursts` bursts and reports the median rate. */
  generations: number;
  bursts: number;
  users: number;
  blocks: number;
}

/**
 * Completed generations per second with 1, then 2, worker processes (SWITCHBOARD_ROLES=worker)
 * behind one API process, all on one PostgreSQL database and the benchmark's Redis; the model is
 * the zero-latency scripted one, served from this process. All generations start at once.
 */
export async function throughputScenario(ctx: BenchContext, options: ThroughputOptions) {
  const database = await createTestDatabase({ server: ctx.postgresUrl });
  const model = await startBulkModel(options.blocks);
  const processes: SwitchboardProcess[] = [];
  try {
    const shared = {
      ...benchEnv({ redis: ctx.redis, keyPrefix: uniquePrefix('tput'), dataDir: ctx.dataDir }),
      DATABASE_URL: database.url,
      OPENAI_BASE_URL: model.baseURL,
      OPENAI_API_KEY: 'bench',
      LLM_MODEL: 'scripted',
      LLM_PROVIDER: 'scripted',
    };
    ctx.log('throughput: starting the API process');
    const apiProcess = await spawnSwitchboard({ ...shared, SWITCHBOARD_ROLES: 'api' }, 60_000);
    processes.push(apiProcess);
    const api = `${apiProcess.url}/api/v1`;
    const users: Array<{ user: TestUser; canvasId: string }> = [];
    for (let i = 0; i < options.users; i += 1) {
      const user = await registerUser(api, `Load${i}`);
      users.push({ user, canvasId: await createCanvas(api, user, `Load ${i}`) });
    }
    const burst = async (count: number, tag: string) => {
      const servers = () => ({ postgres: cpuMsOfCommand('postgres'), redis: redisServerCpuMs(ctx.redis) });
      const cpu0 = { machine: machineCpuMs(), own: ownCpuMs(), procs: processes.map((p) => cpuMsOf(p.child.pid!)), servers: servers() };
      const started = now();
      const streams = await Promise.all(
        Array.from({ length: count }, (_, i) => {
          const { user, canvasId } = users[i % users.length];
          return generateStream(api, user.accessToken, canvasId, `Write ${options.blocks} paragraphs [run:${tag}-${i}]`, {
            timeoutMs: 120_000,
          });
        }),
      );
      const seconds = msBetween(started) / 1000;
      const machine = machineCpuMs();
      const share = (ms: number) => round(ms / (seconds * 1000), 2);
      const cpu = {
        // Cores busy on average during the burst (2.0 = both cores of a 2-core machine, all the time).
        machineCoresBusy: share(machine.busy - cpu0.machine.busy),
        benchProcessCores: share(ownCpuMs() - cpu0.own),
        apiProcessCores: share(cpuMsOf(processes[0].child.pid!) - cpu0.procs[0]),
        workerProcessCores: processes.slice(1).map((p, i) => share(cpuMsOf(p.child.pid!) - cpu0.procs[i + 1])),
        // Every postgres process on the machine (other databases' backends included) and our redis-server.
        postgresCores: share(servers().postgres - cpu0.servers.postgres),
        redisCores: share(servers().redis - cpu0.servers.redis),
      };
      // CPU milliseconds per generation (target: 10 ms per 20-block generation): every worker process together, and the API.
      const workerCpuMs = processes.slice(1).reduce((sum, p, i) => sum + cpuMsOf(p.child.pid!) - cpu0.procs[i + 1], 0);
      const perGeneration = {
        worker: round(workerCpuMs / count, 1),
        api: round((cpuMsOf(processes[0].child.pid!) - cpu0.procs[0]) / count, 1),
      };
      return { seconds, cpu, perGeneration, latencies: streams.map((stream) => msBetween(stream.startedAt, stream.events.at(-1)!.at)) };
    };

    const byWorkers = [];
    for (const workers of options.workerCounts) {
      while (processes.length - 1 < workers) {
        ctx.log(`throughput: starting worker process ${processes.length}`);
        // With --profile the first worker runs with the inspector on loopback, to profile one burst.
        const inspect: Record<string, string> = ctx.profileDir && processes.length === 1 ? { NODE_OPTIONS: '--inspect=127.0.0.1:0' } : {};
        processes.push(await spawnSwitchboard({ ...shared, SWITCHBOARD_ROLES: 'worker', ...inspect }, 60_000));
      }
      await burst(options.users * 2, `warm-${workers}`);
      ctx.log(`throughput: ${options.bursts} × ${options.generations} generations with ${workers} worker process(es)`);
      const runs = [];
      for (let b = 0; b < options.bursts; b += 1) {
        const profiling = ctx.profileDir && workers === 1 && b === 0 ? await profileWorker(processes[1].output()) : undefined;
        runs.push(await burst(options.generations, `w${workers}-${b}`));
        if (profiling)
          ctx.log(
            `throughput: CPU profile of worker 1 during one burst in ${await profiling(path.join(ctx.profileDir!, 'throughput-worker.cpuprofile'))}`,
          );
      }
      const perSecond = runs.map((run) => options.generations / run.seconds);
      const best = runs[perSecond.indexOf(median(perSecond))] ?? runs[0];
      const latency = summarize(runs.flatMap((run) => run.latencies));
      byWorkers.push({
        workers,
        generations: options.generations,
        bursts: options.bursts,
        generationsPerS: round(median(perSecond)),
        generationsPerSByBurst: perSecond.map((value) => round(value)),
        latencyP50Ms: latency.p50,
        latencyP99Ms: latency.p99,
        cpuOfMedianBurst: best.cpu,
        // /proc CPU time has a 10 ms tick, so per-generation figures come from whole bursts.
        workerCpuMsPerGeneration: round(median(runs.map((run) => run.perGeneration.worker)), 1),
        apiCpuMsPerGeneration: round(median(runs.map((run) => run.perGeneration.api)), 1),
      });
    }
    return {
      config: {
        generations: options.generations,
        users: options.users,
        blocksPerGeneration: options.blocks,
        generationConcurrencyPerWorker: 4,
        database: `PostgreSQL ${await serverVersion(database.url)} (fresh database, dropped afterwards)`,
        model: 'zero-latency scripted model in the benchmark process',
        processes:
          'one API process (SWITCHBOARD_ROLES=api) + N worker processes (SWITCHBOARD_ROLES=worker, generation and broadcast queues)',
        measure:
          'a burst POSTs all its generations at once; rate = generations / wall time from the first POST to the last `complete` on SSE; median of the bursts',
        cpu: 'average cores busy during the burst: whole machine (/proc/stat), benchmark process (model + SSE clients), API and worker processes',
      },
      byWorkers,
      scaling2vs1: byWorkers.length === 2 ? round(byWorkers[1].generationsPerS / byWorkers[0].generationsPerS) : undefined,
    };
  } finally {
    // SIGTERM first (a graceful drain is part of the product); the harness SIGKILLs what hangs.
    await Promise.all(
      processes.map((p) => Promise.race([p.stop('SIGTERM'), new Promise((resolve) => setTimeout(resolve, 8_000).unref())])),
    );
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await model.close();
    await database.drop();
  }
}

/** Starts profiling a process spawned with --inspect; the returned function writes the profile to `file`. */
async function profileWorker(output: string): Promise<(file: string) => Promise<string>> {
  const url = Inspector.urlIn(output);
  if (!url) throw new Error('the worker printed no inspector URL');
  const inspector = await Inspector.connect(url);
  const stop = await inspector.startProfile();
  return async (file) => {
    writeFileSync(file, JSON.stringify(await stop()));
    inspector.close();
    return file;
  };
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

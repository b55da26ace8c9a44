/**
 * The embedded default under a closed loop from outside: what `npm start` runs with nothing
 * configured (every role in one process, PGlite on disk, its own redis-server, the demo model),
 * driven by the run-throughput scenario's load generator in a process of its own, chat and
 * chatflow turns alternating. Prints runs/s per concurrency step, the CPU of each process in the
 * window, and runs/s per machine core (runs/s ÷ the machine's cores, whatever is busy).
 *
 *   node -r ./bench/register.cjs bench/tools/embedded-loop.ts [--concurrency=8,16,32] [--window=8000] [--kinds=chat,chatflow] [--profile=dir]
 *
 * `ASSISTANT_CONCURRENCY` in this tool's environment is handed to the Switchboard it starts, to
 * compare settings.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSwitchboard } from '../../test/support/processes';
import { BENCH_JWT_SECRET, cpuMsOf, machineCpuMs } from '../lib/harness';
import { round, summarize } from '../lib/stats';
import { LoadGenerator, loadTargets } from '../scenarios/run-throughput';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const CONCURRENCY = arg('concurrency', '8,16,32').split(',').map(Number);
const WINDOW_MS = Number(arg('window', '8000'));
const WARMUP_MS = Number(arg('warmup', '3000'));
const KINDS = new Set(arg('kinds', 'chat,chatflow').split(','));
/** A folder for a V8 CPU profile of the Switchboard process (written when it stops). */
const PROFILE = arg('profile', '');

/** CPU ms of a process's threads by name (`/proc/<pid>/task/*`), to tell the main thread from the rest. */
function threadCpuMs(pid: number): Record<string, number> {
  const byName: Record<string, number> = {};
  const tick = 1000 / 100;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(fields[11]) + Number(fields[12])) * tick;
      const key = Number(task) === pid ? 'main' : name;
      byName[key] = (byName[key] ?? 0) + ms;
    } catch {
      // the thread ended while we looked
    }
  }
  return byName;
}

async function main() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-embedded-loop-'));
  const limits = { free: { chatPerMinute: 10_000_000, flowExecutionsPerMinute: 10_000_000, generationsPerMinute: 10_000_000 } };
  const app = await spawnSwitchboard(
    {
      DATA_DIR: dataDir,
      PORT: '0',
      NODE_ENV: 'development',
      LLM_DEMO: '1',
      JWT_SECRET: BENCH_JWT_SECRET,
      OAUTH_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
      LOG_LEVEL: 'silent',
      TIER_LIMITS: JSON.stringify(limits),
      MAX_STREAMS_PER_USER: '100000',
      HTTP_MAX_CONNECTIONS_PER_IP: '1000000',
      ...(process.env.ASSISTANT_CONCURRENCY ? { ASSISTANT_CONCURRENCY: process.env.ASSISTANT_CONCURRENCY } : {}),
      ...(PROFILE ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.resolve(PROFILE)}` } : {}),
    },
    120_000,
  );
  const loader = await LoadGenerator.start();
  try {
    const targets = (await loadTargets(app.url!)).filter((target) => KINDS.has(target.kind));
    const pid = app.child.pid!;
    const cores = os.cpus().length;
    const redisPid = Number(readFileSync(path.join(dataDir, 'redis', 'redis-server.pid'), 'utf8'));
    console.log(`embedded default (pid ${pid}), ${cores} cores, kinds ${[...KINDS].join(',')}, window ${WINDOW_MS} ms`);
    for (const concurrency of CONCURRENCY) {
      type Snap = { ours: number; threads: Record<string, number>; redis: number; loader: number; machine: number };
      const snap = (): Snap => ({
        ours: cpuMsOf(pid),
        threads: threadCpuMs(pid),
        redis: cpuMsOf(redisPid),
        loader: cpuMsOf(loader.pid),
        machine: machineCpuMs().busy,
      });
      let a: Snap | undefined;
      let b: Snap | undefined;
      const result = await loader.run(
        { cmd: 'closed', concurrency, targets, warmupMs: WARMUP_MS, windowMs: WINDOW_MS },
        { onWindowStart: () => (a = snap()), onWindowEnd: () => (b = snap()) },
      );
      if (result.failed) throw new Error(`${result.failed} run(s) failed, the first: ${result.firstError}`);
      const share = (x: number, y: number) => round((y - x) / result.windowMs, 2);
      const runsPerS = round(result.completed / (result.windowMs / 1000), 1);
      const threads = Object.fromEntries(
        Object.entries(b!.threads)
          .map(([name, ms]) => [name, share(a!.threads[name] ?? 0, ms)] as const)
          .filter(([, value]) => value >= 0.01),
      );
      console.log(
        JSON.stringify({
          concurrency,
          runsPerS,
          runsPerMachineCore: round(runsPerS / cores, 1),
          byKind: result.completedByKind,
          cores: {
            ours: share(a!.ours, b!.ours),
            redis: share(a!.redis, b!.redis),
            loader: share(a!.loader, b!.loader),
            machine: share(a!.machine, b!.machine),
          },
          threads,
          latencyMs: summarize(Object.values(result.latenciesMs).flat()),
          loadAvg: os.loadavg().map((value) => round(value, 2)),
        }),
      );
    }
  } finally {
    await loader.stop();
    await app.stop('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

void main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

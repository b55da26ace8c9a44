import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadConfig } from '../../config';
import type { LlmEndpoint } from '../../src/ai/llm';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import type { BenchRedis } from './bench-redis';
import { median } from './stats';

/** Secret shared by every Switchboard the benchmark starts (in-process and spawned). */
export const BENCH_JWT_SECRET = 'bench-secret-bench-secret-bench-secret-0123456789';

/** OAuth token key for this run (production mode requires one); fresh per run, shared with spawned processes. */
const BENCH_OAUTH_KEY = randomBytes(32).toString('base64');

/** Limits high enough that no benchmark run is ever rate limited or truncated. */
export const BENCH_TIER_LIMITS = JSON.stringify({
  free: { generationsPerMinute: 100_000, generationsPerHour: 1_000_000, concurrentGenerations: 1_000, maxBlocksPerGeneration: 1_000 },
});

export const uniquePrefix = (scenario: string) => `bench-${scenario}-${randomUUID().slice(0, 8)}`;

/**
 * Settings every benchmarked Switchboard shares: its Redis (a URL, or the run's {@link BenchRedis}
 * on either topology), production mode, no logs, no rate limits. The
 * chunk delay is 0 so the fan-out is measured, not the pacing (the default 50 ms would add ~1 s).
 */
export function benchEnv(options: { redis: BenchRedis | string; keyPrefix: string; dataDir: string }): Record<string, string> {
  return {
    NODE_ENV: 'production',
    // A scenario that names no model endpoint measures the demo model on purpose.
    LLM_DEMO: '1',
    JWT_SECRET: BENCH_JWT_SECRET,
    OAUTH_ENCRYPTION_KEY: BENCH_OAUTH_KEY,
    LOG_LEVEL: 'silent',
    PORT: '0',
    ...(typeof options.redis === 'string' ? { REDIS_URL: options.redis } : options.redis.env),
    REDIS_KEY_PREFIX: options.keyPrefix,
    DATA_DIR: options.dataDir,
    BROADCAST_CHUNK_DELAY_MS: '0',
    TIER_LIMITS: BENCH_TIER_LIMITS,
    SHUTDOWN_TIMEOUT_MS: '5000',
    // The fleets connect thousands of clients with one user's token from one address; the per-user
    // and per-address caps are not under test.
    MAX_SOCKETS_PER_USER: '1000000',
    HTTP_MAX_CONNECTIONS_PER_IP: '1000000',
  };
}

/** Every role of Switchboard in this process (in-memory PGlite unless `env` says otherwise). */
export async function startInProcessSwitchboard(options: {
  redis: BenchRedis;
  keyPrefix: string;
  dataDir: string;
  endpoint: LlmEndpoint;
  env?: Record<string, string>;
}): Promise<RunningSwitchboard & { url: string; api: string }> {
  const config = loadConfig({ ...benchEnv(options), DATABASE_URL: 'memory://', ...options.env });
  const app = await startSwitchboard(config, { logger: createLogger({ level: config.log.level }), endpoint: options.endpoint });
  return Object.assign(app, { url: app.url!, api: `${app.url}/api/v1` });
}

/** Resident set size of a process from /proc (Linux), in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** CPU time (user + system) a process has used so far, in milliseconds, from /proc (10 ms resolution). */
export function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command; USER_HZ is 100 on Linux.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time of this process so far, in milliseconds (microsecond resolution). */
export function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** Busy and total CPU time of the whole machine so far (all cores), in milliseconds, from /proc/stat. */
export function machineCpuMs(): { busy: number; total: number } {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const values = fields.map(Number);
  const idle = values[3] + (values[4] ?? 0);
  const total = values.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { busy: (total - idle) * 10, total: total * 10 };
}

/**
 * Cores the rest of the machine keeps busy, averaged over `ms` before the benchmark starts (it
 * has started nothing heavy yet). On a shared machine this says how far the numbers can be trusted.
 */
export async function settleMachine(ms = 2_000): Promise<number> {
  const before = machineCpuMs();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = machineCpuMs();
  return Math.round(((after.busy - before.busy) / ms) * 100) / 100;
}

/**
 * What this host charges for the two things the pipeline does most, so runs on different hosts can
 * be compared: a round trip to another process over loopback (a `PING` to the run's redis-server,
 * which sleeps between them, so each one wakes it: what every Redis command, SQL statement and
 * socket event pays) and plain JavaScript (a fixed loop). Medians: 2,000 pings after 200, and three
 * loops. 2-core VMs of the same CPU model measured 24 – 67 µs and 91 µs for the ping.
 */
export async function hostProbe(redisUrl: string): Promise<{ redisPingUs: number; jsLoopMs: number }> {
  const { hostname, port } = new URL(redisUrl);
  const socket = connect({ host: hostname, port: Number(port) });
  await once(socket, 'connect');
  const times: number[] = [];
  try {
    for (let i = 0; i < 2_200; i += 1) {
      const start = process.hrtime.bigint();
      socket.write('PING\r\n');
      await once(socket, 'data');
      if (i >= 200) times.push(Number(process.hrtime.bigint() - start) / 1_000);
    }
  } finally {
    socket.destroy();
  }
  const loops: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    const start = performance.now();
    let sum = 0;
    for (let j = 0; j < 50_000_000; j += 1) sum += j % 7;
    if (sum < 0) throw new Error('unreachable');
    loops.push(performance.now() - start);
  }
  return { redisPingUs: Math.round(median(times)), jsLoopMs: Math.round(median(loops)) };
}

/**
 * CPU milliseconds used so far by every process whose command name is `comm` (e.g. `postgres`,
 * `redis-server`) and whose command line contains `match`; processes that exited are not counted.
 */
export function cpuMsOfCommand(comm: string, match = ''): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== comm) continue;
      if (match && !readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(match)) continue;
      total += cpuMsOf(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}

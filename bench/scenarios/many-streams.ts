import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { loadConfig } from '../../config';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { GenerationEventLog } from '../../src/generation/event-log';
import { createLogger } from '../../src/lib/logger';
import { baseJobOptions } from '../../src/producers/define';
import { bullPrefix } from '../../src/producers/registry';
import { createTestDatabase } from '../../test/support/database';
import { createCanvas, registerUser } from '../../test/support/http';
import { spawnSwitchboard } from '../../test/support/processes';
import type { BenchContext } from '../lib/context';
import { benchEnv, cpuMsOf, ownCpuMs, rssBytes, uniquePrefix } from '../lib/harness';
import { benchRedisClient, redisServerCpuMs } from '../lib/bench-redis';
import { Inspector } from '../lib/inspector';
import { startCpuProfile } from '../lib/profiler';
import { SseFleet } from '../lib/sse-fleet';
import { round, slope } from '../lib/stats';
import { startTimedModel } from '../lib/timed-model';
import { settle } from '../lib/timing';

export interface ManyStreamsOptions {
  /** Cumulative open streams at which memory and Redis connections are read; the last is the headline. */
  steps: number[];
  /** How many of the open streams follow the generation that streams (the rest follow queued ones). */
  hot: number;
  /** Tool calls the hot generation streams, `gapMs` apart. */
  calls: number;
  gapMs: number;
}

/** Queued generations the idle streams follow (spread over a few, as real clients would be). */
const IDLE_GENERATIONS = 10;

/**
 * One API node (its own OS process, API role only, on the PostgreSQL server, --inspect on loopback
 * to force a GC before each memory reading) holding many open SSE generation streams from a client
 * fleet process (bench/lib/sse-fleet-process.ts). Most follow queued generations that stay idle;
 * `hot` of them follow one generation, run by a worker in the benchmark process against the timed
 * model, whose tool calls are stamped when the model wrote them. Reported: Redis connections of the
 * API process (from /proc: its TCP sockets to the Redis port, every master's on a cluster) and RSS per stream at each step, and
 * model write → `tool_output` at each of the `hot` streams (p50/p95/p99). When the node cannot open
 * a stream (a refusal, or running out of connections), the failures are counted and the scenario
 * goes on with what is open: it measures whatever main does.
 */
export async function manyStreamsScenario(ctx: BenchContext, options: ManyStreamsOptions) {
  const keyPrefix = uniquePrefix('streams');
  const database = await createTestDatabase({ server: ctx.postgresUrl });
  // One user holds every stream here, so the per-user stream cap is lifted (the node's cost per
  // stream, its lease in Redis included, is what is measured, not the cap).
  const env = {
    ...benchEnv({ redis: ctx.redis, keyPrefix, dataDir: ctx.dataDir }),
    DATABASE_URL: database.url,
    MAX_STREAMS_PER_USER: '1000000',
  };
  const model = await startTimedModel({ calls: options.calls, gapMs: options.gapMs });
  const redis = benchRedisClient(ctx.redis);
  // BullMQ leaves a connection it was handed open on close: closed below, with `redis`.
  const queueConnection = benchRedisClient(ctx.redis);
  const queue = new Queue('generation', {
    connection: queueConnection,
    prefix: bullPrefix(keyPrefix),
  });
  let api: Awaited<ReturnType<typeof spawnSwitchboard>> | undefined;
  let worker: RunningSwitchboard | undefined;
  let inspector: Inspector | undefined;
  let fleet: SseFleet | undefined;
  try {
    api = await spawnSwitchboard(
      { ...env, SWITCHBOARD_ROLES: 'api', NODE_OPTIONS: '--inspect=127.0.0.1:0 --max-old-space-size=2048' },
      60_000,
    );
    const apiUrl = `${api.url}/api/v1`;
    const inspectorUrl = Inspector.urlIn(api.output());
    if (!inspectorUrl) throw new Error('the API process printed no inspector URL');
    inspector = await Inspector.connect(inspectorUrl);
    const workerConfig = loadConfig({ ...env, SWITCHBOARD_ROLES: 'worker' });
    worker = await startSwitchboard(workerConfig, {
      logger: createLogger({ level: 'silent' }),
      endpoint: { baseURL: model.baseURL, apiKey: 'bench', provider: 'bench', models: ['bench-model'] },
    });
    fleet = await SseFleet.start();
    const pid = api.child.pid!;

    const owner = await registerUser(apiUrl, 'Streams');
    const canvasId = await createCanvas(apiUrl, owner, 'Many streams');
    // Generations written as the API writes them (row + `queued` event), their jobs delayed by an
    // hour: queued work that is still live (the reaper leaves it alone). The idle ones stay queued
    // for the whole run; the hot one's job is promoted once its followers are connected.
    const events = new GenerationEventLog(redis, keyPrefix, 3600);
    const queued = async (tag: string) => {
      const id = randomUUID();
      await worker!.repos.generations.create({
        id,
        canvasId,
        userId: owner.id,
        prompt: `Write ${options.calls} paragraphs [run:${tag}]`,
        afterId: null,
      });
      // Its run too: a worker starts only a generation whose run is queued, as the API records both.
      await worker!.repos.runs.insert({ kind: 'generation', id, userId: owner.id, queue: 'generation', jobId: id });
      await events.append(id, 1, { type: 'status', generationId: id, stage: 'queued' });
      await queue.add(
        'generate',
        { generationId: id, canvasId, userId: owner.id, tier: 'free' },
        { ...baseJobOptions, jobId: id, delay: 3_600_000 },
      );
      return id;
    };
    const idle = await Promise.all(Array.from({ length: IDLE_GENERATIONS }, (_, i) => queued(`idle-${i}`)));
    const hot = await queued('hot');
    const eventsUrl = (generationId: string) => `${apiUrl}/canvases/${canvasId}/ai/generations/${generationId}/events`;

    // V8 grows its young generation (an allocation buffer: up to 64 MiB on Node 24, 32 MiB on
    // Node 20) with whatever the node allocates around a reading, and a full GC shrinks it back.
    // It holds nothing of the streams, but its size at the moment RSS is read would land in the
    // per-stream figure divided by a fixed count, so each reading is taken with it at its resting
    // size (that of the idle reading): GC and settle again, a few times at most, until it is.
    let restingYoung: number | undefined;
    const read = async () => {
      let attempts = 0;
      let memory;
      do {
        attempts += 1;
        await inspector!.heapUsedAfterGc();
        await settle(500);
        memory = await inspector!.memory();
      } while (restingYoung !== undefined && memory.newSpace > restingYoung && attempts < 5);
      restingYoung ??= memory.newSpace;
      const { heapUsed, heapTotal, newSpace } = memory;
      return {
        rss: rssBytes(pid),
        heapUsed,
        heapTotal,
        newSpace,
        attempts,
        redisConnections: ctx.redis.ports.reduce((sum, port) => sum + tcpConnectionsTo(pid, port), 0),
      };
    };
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    await settle(500);
    const idleReading = await read();
    const readings = [{ streams: 0, ...idleReading }];
    ctx.log(
      `manyStreams: idle: ${idleReading.redisConnections} Redis connections, RSS ${mib(idleReading.rss)} MiB (V8 heap used ${mib(idleReading.heapUsed)} of ${mib(idleReading.heapTotal)}, young generation ${mib(idleReading.newSpace)}; outside the V8 heap ${mib(idleReading.rss - idleReading.heapTotal)})`,
    );
    let open = 0;
    let failed = 0;
    let firstError: string | undefined;
    const idleTotal = options.steps.at(-1)! - options.hot;
    for (const step of options.steps) {
      // Idle followers first, the hot generation's last, so the last step is the full load.
      const idleWanted = Math.min(step, idleTotal) - Math.min(open, idleTotal);
      const hotWanted = Math.max(0, step - idleTotal) - Math.max(0, open - idleTotal);
      const urls = Array.from({ length: idleWanted }, (_, i) => eventsUrl(idle[(open + i) % idle.length]));
      const opened = await fleet.open('idle', urls, owner.accessToken);
      const openedHot =
        hotWanted > 0
          ? await fleet.open(
              'hot',
              Array.from({ length: hotWanted }, () => eventsUrl(hot)),
              owner.accessToken,
            )
          : { failed: 0, firstError: undefined };
      failed += opened.failed + openedHot.failed;
      firstError ??= opened.firstError ?? openedHot.firstError;
      open = step;
      readings.push({ streams: step - failed, ...(await read()) });
      ctx.log(
        `manyStreams: ${step - failed} streams open (${failed} refused), ${readings.at(-1)!.redisConnections} Redis connections, RSS ${mib(readings.at(-1)!.rss)} MiB (V8 heap used ${mib(readings.at(-1)!.heapUsed)} of ${mib(readings.at(-1)!.heapTotal)}, young generation ${mib(readings.at(-1)!.newSpace)}; outside the V8 heap ${mib(readings.at(-1)!.rss - readings.at(-1)!.heapTotal)})`,
      );
      if (failed > step / 2) break;
    }

    // The hot generation streams now: tool calls `gapMs` apart, stamped when the model wrote them.
    const hotJob = await queue.getJob(hot);
    if (!hotJob) throw new Error('the hot generation has no job');
    // With --profile: the API process's CPU profile while the hot generation streams.
    const stopProfile = ctx.profileDir ? await inspector.startProfile(1_000) : undefined;
    // And this process's (the worker and the model), over the same span.
    const stopOwnProfile = await startCpuProfile(ctx.profileDir, 'many-streams-worker');
    // Where the cores go while it streams: the node, the client fleet, this process (worker + model)
    // and the redis-servers (every master on a cluster).
    const cpuBefore = {
      api: cpuMsOf(pid),
      fleet: cpuMsOf(fleet.pid!),
      bench: ownCpuMs(),
      redis: redisServerCpuMs(ctx.redis),
      at: performance.now(),
    };
    await hotJob.promote();
    let latency;
    let hotError: string | undefined;
    try {
      await fleet.done('hot', 120_000 + options.calls * options.gapMs * 4);
      const turn = model.turns.get('hot');
      if (!turn) throw new Error('the model never saw the hot generation');
      latency = await fleet.latency('hot', turn.emittedAt);
    } catch (error) {
      hotError = error instanceof Error ? error.message : String(error);
    }
    // A hot generation that never streamed is a broken scenario, not a slow one: fail it (the smoke run too).
    if (hotError && !model.turns.get('hot')) throw new Error(`manyStreams: the hot generation did not run: ${hotError}`);
    const hotCpuMs = {
      api: cpuMsOf(pid) - cpuBefore.api,
      fleet: cpuMsOf(fleet.pid!) - cpuBefore.fleet,
      benchProcess: round(ownCpuMs() - cpuBefore.bench),
      redis: redisServerCpuMs(ctx.redis) - cpuBefore.redis,
      wallMs: round(performance.now() - cpuBefore.at),
    };
    ctx.log(
      `manyStreams: while the hot generation streamed (${hotCpuMs.wallMs} ms): CPU of the node ${hotCpuMs.api} ms, the client fleet ${hotCpuMs.fleet} ms, the benchmark process (worker + model) ${hotCpuMs.benchProcess} ms, Redis ${hotCpuMs.redis} ms`,
    );
    if (stopProfile) {
      const file = path.join(ctx.profileDir!, 'many-streams-api.cpuprofile');
      writeFileSync(file, JSON.stringify(await stopProfile()));
      ctx.log(`manyStreams: CPU profile of the API process while the hot generation streamed in ${file}`);
    }
    const ownProfile = await stopOwnProfile();
    if (ownProfile) ctx.log(`manyStreams: CPU profile of the worker and the model over the same span in ${ownProfile}`);
    const last = readings.at(-1)!;
    const held = last.streams;
    const withStreams = readings.filter((r) => r.streams > 0);
    return {
      config: {
        process:
          'API only (SWITCHBOARD_ROLES=api) on the PostgreSQL server, --inspect on loopback; streams from a client fleet process; the hot generation run by a worker in the benchmark process',
        steps: options.steps,
        hotStreams: options.hot,
        calls: options.calls,
        gapMs: options.gapMs,
        reading:
          'full GC through the inspector, 0.5 s settle, again (up to 5 times) until the young generation is back at its idle size; a stream counts as open once its first event arrived; Redis connections = TCP sockets of the API process to the Redis port, or to every master of a cluster (/proc)',
      },
      streamsHeld: held,
      refused: failed,
      firstError,
      redisConnectionsIdle: idleReading.redisConnections,
      redisConnectionsWithStreams: last.redisConnections,
      /** From the first step with streams to the last (the reader connects with the first stream). */
      redisConnectionsGrowth: readings.length > 1 ? last.redisConnections - readings[1].redisConnections : undefined,
      /** RSS after GC, young generation at rest: (last − idle) / streams held. The headline. */
      bytesPerStream: held ? Math.round((last.rss - idleReading.rss) / held) : undefined,
      slopeBytesPerStream: readings.length > 2 ? Math.round(slope(readings.map((r) => [r.streams, r.rss] as const))) : undefined,
      /** What each further stream adds: the slope of RSS over the readings with streams open (the idle one left out). */
      marginalBytesPerStream: withStreams.length > 1 ? Math.round(slope(withStreams.map((r) => [r.streams, r.rss] as const))) : undefined,
      eventLatencyMs: latency
        ? {
            deliveries: latency.deliveries,
            missing: latency.missing,
            p50: round(latency.p50 ?? NaN),
            p95: round(latency.p95 ?? NaN),
            p99: round(latency.p99 ?? NaN),
            max: round(latency.max ?? NaN),
            byCall: latency.byCall.map(({ first, last }) => [round(first), round(last)]),
          }
        : undefined,
      hotError,
      hotCpuMs,
      readings: readings.map((r) => ({
        streams: r.streams,
        rssMiB: round(r.rss / 2 ** 20),
        heapUsedMiB: round(r.heapUsed / 2 ** 20),
        heapTotalMiB: round(r.heapTotal / 2 ** 20),
        youngGenerationMiB: round(r.newSpace / 2 ** 20),
        gcRounds: r.attempts,
        redisConnections: r.redisConnections,
      })),
    };
  } finally {
    inspector?.close();
    await fleet?.stop();
    await worker?.stop().catch(() => undefined);
    if (api) {
      await Promise.race([api.stop('SIGTERM'), new Promise((resolve) => setTimeout(resolve, 8_000).unref())]);
      await api.stop('SIGKILL');
    }
    await queue.close();
    queueConnection.disconnect();
    redis.disconnect();
    await model.close();
    await database.drop();
  }
}

/** Established TCP connections of process `pid` to local `port` (its sockets' inodes matched in /proc/net/tcp*). */
export function tcpConnectionsTo(pid: number, port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]);
    } catch {
      // closed while we looked
    }
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // remote address is field 2 (hex ip:port), state field 3 (01 = established), inode field 9
      if (fields.length > 9 && fields[2].endsWith(`:${hexPort}`) && fields[3] === '01' && inodes.has(fields[9])) count += 1;
    }
  }
  return count;
}

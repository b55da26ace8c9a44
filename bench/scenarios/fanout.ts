import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { GenerationEventLog } from '../../src/generation/event-log';
import { redisKeys } from '../../src/lib/redis-keys';
import { broadcastJobId } from '../../src/producers/broadcast';
import { bullPrefix } from '../../src/producers/registry';
import { CanvasLog } from '../../src/realtime/canvas-log';
import { JsonText } from '../../src/realtime/socket-parser';
import { CANVAS_NAMESPACE, rooms } from '../../src/schemas/socket-events';
import { STREAM_MAX_LEN } from '../../src/realtime/socket-server';
import { createCanvas, registerUser } from '../../test/support/http';
import type { BenchContext } from '../lib/context';
import { cpuMsOf, ownCpuMs, startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { benchRedisClient } from '../lib/bench-redis';
import { startBulkModel } from '../lib/models';
import { startCpuProfile } from '../lib/profiler';
import { startRawSocketServer } from '../lib/raw-socket-server';
import { generateStream } from '../lib/sse-client';
import { median, round } from '../lib/stats';
import { msBetween, now } from '../lib/timing';

const CHUNK_EVENT = 'blocks_bulk_added_chunk';

export interface FanoutOptions {
  clientCounts: number[];
  /** `lean` first: the headline. socket.io-client parses every chunk, which makes the client the bottleneck. */
  clientKinds: Array<'lean' | 'socket.io-client'>;
  reps: number;
  /** Reps with socket.io-client clients (reported, not the target). */
  clientLibraryReps: number;
  warmups: number;
}

/**
 * The broadcast of a persisted 200-block generation (20 chunks × 10 blocks) to N clients through
 * Switchboard — a `broadcast` job enqueued → every client has every chunk — against a bare
 * Socket.IO emit loop of the same payloads to N clients of a bare server, in the same run.
 * Between the two, reported without a target: the same 20 chunks appended straight to the canvas's
 * log and the adapter's stream (what the broadcast worker does once it holds the blocks), which
 * splits what the queue hop costs from what the trip through Redis costs.
 */
export async function fanoutScenario(ctx: BenchContext, options: FanoutOptions) {
  const { fleet } = ctx;
  const keyPrefix = uniquePrefix('fanout');
  const model = await startBulkModel(200);
  const app = await startInProcessSwitchboard({ redis: ctx.redis, keyPrefix, dataDir: ctx.dataDir, endpoint: model.endpoint });
  const raw = await startRawSocketServer();
  // BullMQ leaves connections it was handed open on close: closed below.
  const connections = [benchRedisClient(ctx.redis), benchRedisClient(ctx.redis)];
  const queue = new Queue('broadcast', { connection: connections[0], prefix: bullPrefix(keyPrefix) });
  const queueEvents = new QueueEvents('broadcast', { connection: connections[1], prefix: bullPrefix(keyPrefix) });
  const redis = benchRedisClient(ctx.redis, 'command');
  const open: string[] = [];
  try {
    await queueEvents.waitUntilReady();
    const owner = await registerUser(app.api, 'Fanout');
    const canvasId = await createCanvas(app.api, owner, 'Fan-out canvas');

    // One persisted generation, broadcast again and again: every run reads it and its blocks anew.
    // Its own broadcast must be over before clients join, or they would count those chunks too.
    const generationId = (await generateStream(app.api, owner.accessToken, canvasId, 'Write 200 paragraphs [run:fanout]')).generationId;
    await (await queue.getJob(broadcastJobId(generationId)))?.waitUntilFinished(queueEvents, 30_000);

    // What the runner keeps for its broadcast: kept again before each rep, as after a real generation.
    const kept = await app.repos.blocks.listByGeneration(generationId);
    const events = new GenerationEventLog(redis, app.config.redis.keyPrefix, app.config.generation.eventsTtlSeconds);

    // The canvas log as a worker writes it, on the benchmark's own connection.
    const log = new CanvasLog(redis, app.config.redis.keyPrefix, app.config.canvasLog);
    const roomRecord = {
      stream: redisKeys(app.config.redis.keyPrefix).socketIoStream(),
      maxLen: STREAM_MAX_LEN,
      nsp: CANVAS_NAMESPACE,
      room: rooms.canvas(canvasId),
    };
    let payloads: Array<Record<string, unknown>> | undefined;
    const byClients = [];
    for (const client of options.clientKinds) {
      for (const clients of options.clientCounts) {
        const groups = { ours: `${keyPrefix}-ours-${client}-${clients}`, raw: `${keyPrefix}-raw-${client}-${clients}` };
        open.push(groups.ours, groups.raw);
        ctx.log(`fanout: ${clients} ${client} clients in the canvas room and ${clients} on a bare Socket.IO server`);
        await fleet.connect({
          group: groups.ours,
          url: `${app.url}/canvas`,
          auth: { token: owner.accessToken },
          count: clients,
          client,
          join: { event: 'canvas:join', arg: canvasId },
        });
        await fleet.connect({ group: groups.raw, url: raw.url, auth: {}, count: clients, client });
        const ours = { total: [] as number[], toFirst: [] as number[], cpu: 0, fleetCpu: 0 };
        const bare = { total: [] as number[], toFirst: [] as number[], cpu: 0, fleetCpu: 0 };
        const direct = { total: [] as number[], toFirst: [] as number[] };
        const fleetPid = fleet.pid!;
        const reps = client === 'lean' ? options.reps : options.clientLibraryReps;
        let stopProfile: (() => Promise<string | undefined>) | undefined;
        for (let rep = 0; rep < options.warmups + reps; rep += 1) {
          const measured = rep >= options.warmups;
          if (rep === options.warmups) stopProfile = await startCpuProfile(ctx.profileDir, `fanout-${client}-${clients}`);
          await events.keepBlocks(generationId, kept);
          let [cpu, fleetCpu] = [ownCpuMs(), cpuMsOf(fleetPid)];
          const enqueued = now();
          await queue.add('broadcast-blocks', { generationId, canvasId }, { jobId: `bench-${randomUUID()}`, removeOnComplete: true });
          const done = await fleet.completion(groups.ours, generationId, { withSample: payloads === undefined, timeoutMs: 60_000 });
          payloads ??= done.sample as Array<Record<string, unknown>>;
          if (measured) [ours.cpu, ours.fleetCpu] = [ours.cpu + ownCpuMs() - cpu, ours.fleetCpu + cpuMsOf(fleetPid) - fleetCpu];

          // The chunks as the worker sends them (without the seq, which the append gives).
          const directKey = randomUUID();
          const texts = payloads.map(({ seq: _seq, ...payload }) => new JsonText(JSON.stringify({ ...payload, generationId: directKey })));
          const appended = now();
          await log.appendAll(canvasId, CHUNK_EVENT, texts, roomRecord);
          const directDone = await fleet.completion(groups.ours, directKey, { timeoutMs: 60_000 });
          if (measured) {
            direct.total.push(msBetween(appended, directDone.lastAt));
            direct.toFirst.push(msBetween(appended, directDone.firstAt));
          }

          const key = randomUUID();
          const keyed = payloads.map((payload) => ({ ...payload, generationId: key }));
          [cpu, fleetCpu] = [ownCpuMs(), cpuMsOf(fleetPid)];
          const emitted = now();
          raw.emitAll(CHUNK_EVENT, keyed);
          const rawDone = await fleet.completion(groups.raw, key, { timeoutMs: 60_000 });
          if (!measured) continue;
          [bare.cpu, bare.fleetCpu] = [bare.cpu + ownCpuMs() - cpu, bare.fleetCpu + cpuMsOf(fleetPid) - fleetCpu];
          ours.total.push(msBetween(enqueued, done.lastAt));
          ours.toFirst.push(msBetween(enqueued, done.firstAt));
          bare.total.push(msBetween(emitted, rawDone.lastAt));
          bare.toFirst.push(msBetween(emitted, rawDone.firstAt));
        }
        const profile = await stopProfile?.();
        if (profile) ctx.log(`fanout: CPU profile of the measured runs in ${profile}`);
        await fleet.close(groups.ours);
        await fleet.close(groups.raw);
        const deliveries = clients * payloads!.length;
        const oursP50 = median(ours.total);
        const rawP50 = median(bare.total);
        byClients.push({
          clients,
          client,
          chunks: payloads!.length,
          deliveries,
          oursP50Ms: round(oursP50),
          rawP50Ms: round(rawP50),
          oursDeliveriesPerS: Math.round(deliveries / (oursP50 / 1000)),
          rawDeliveriesPerS: Math.round(deliveries / (rawP50 / 1000)),
          shareOfRaw: round(rawP50 / oursP50, 3),
          // Median of each rep's own share (ours and raw back to back): steadier on a shared machine.
          shareOfRawPairedMedian: round(median(ours.total.map((value, i) => bare.total[i] / value)), 3),
          oursToFirstChunkP50Ms: round(median(ours.toFirst)),
          // No queue hop: the chunks appended to the log and the adapter's stream by the benchmark.
          directP50Ms: round(median(direct.total)),
          directToFirstChunkP50Ms: round(median(direct.toFirst)),
          directShareOfRaw: round(rawP50 / median(direct.total), 3),
          rawToFirstChunkP50Ms: round(median(bare.toFirst)),
          // Mean CPU per broadcast: the benchmark process (app + worker + bare server) and the fleet.
          oursServerCpuMs: round(ours.cpu / reps, 1),
          rawServerCpuMs: round(bare.cpu / reps, 1),
          oursFleetCpuMs: round(ours.fleetCpu / reps, 1),
          rawFleetCpuMs: round(bare.fleetCpu / reps, 1),
          oursSamplesMs: ours.total.map((value) => round(value)),
          rawSamplesMs: bare.total.map((value) => round(value)),
        });
      }
    }
    return {
      config: {
        reps: options.reps,
        clientLibraryReps: options.clientLibraryReps,
        warmups: options.warmups,
        clients:
          'lean: raw websocket clients speaking the Socket.IO protocol that match chunk frames by their first bytes (the target); socket.io-client: the library, which JSON-parses every chunk',
        chunkSize: app.config.broadcast.chunkSize,
        chunkDelayMs: app.config.broadcast.chunkDelayMs,
        ours: 'broadcast job enqueued (BullMQ) → processor reads the kept copy of the blocks (0157) → 20 emits through the Redis Streams adapter → fleet',
        direct:
          'the same 20 chunks appended to the canvas log and the adapter stream in one call (no queue, no kept copy) → fleet; reported, no target',
        raw: 'bare socket.io Server (in-memory adapter, no recovery) → 20 × io.to(room).emit of the same payloads → fleet',
      },
      byClients,
    };
  } finally {
    for (const group of open) await fleet.close(group).catch(() => undefined);
    await queueEvents.close();
    await queue.close();
    connections.forEach((connection) => connection.disconnect());
    redis.disconnect();
    await app.stop();
    await raw.close();
    await model.close();
  }
}

import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { BROADCAST_JOB, BROADCAST_QUEUE, broadcastJobId } from '../../src/producers/broadcast';
import { bullPrefix } from '../../src/producers/queue-registry';
import { createCanvas, registerUser } from '../../test/support/http';
import type { BenchContext } from '../lib/context';
import { startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { startBulkModel } from '../lib/models';
import { startRawSocketServer } from '../lib/raw-socket-server';
import { generateStream } from '../lib/sse-client';
import { median, round } from '../lib/stats';
import { msBetween, now } from '../lib/timing';

const CHUNK_EVENT = 'blocks_bulk_added_chunk';

export interface FanoutOptions {
  clientCounts: number[];
  reps: number;
  warmups: number;
}

/**
 * The broadcast of a persisted 200-block generation (20 chunks × 10 blocks) to N clients through
 * Switchboard — a `broadcast` job enqueued → every client has every chunk — against a bare
 * Socket.IO emit loop of the same payloads to N clients of a bare server, in the same run.
 */
export async function fanoutScenario(ctx: BenchContext, options: FanoutOptions) {
  const { fleet } = ctx;
  const keyPrefix = uniquePrefix('fanout');
  const model = await startBulkModel(200);
  const app = await startInProcessSwitchboard({ redisUrl: ctx.redisUrl, keyPrefix, dataDir: ctx.dataDir, endpoint: model.endpoint });
  const raw = await startRawSocketServer();
  const url = new URL(ctx.redisUrl);
  const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
  const queue = new Queue(BROADCAST_QUEUE, { connection, prefix: bullPrefix(keyPrefix) });
  const queueEvents = new QueueEvents(BROADCAST_QUEUE, { connection, prefix: bullPrefix(keyPrefix) });
  const open: string[] = [];
  try {
    await queueEvents.waitUntilReady();
    const owner = await registerUser(app.api, 'Fanout');
    const canvasId = await createCanvas(app.api, owner, 'Fan-out canvas');

    // Persisted generations to re-broadcast, made before anyone is in the room; their own
    // broadcasts must be over before clients join, or clients would count their chunks too.
    const perCount = options.warmups + options.reps;
    ctx.log(`fanout: persisting ${perCount * options.clientCounts.length} generations of 200 blocks`);
    const generationIds: string[] = [];
    for (let i = 0; i < perCount * options.clientCounts.length; i += 1) {
      generationIds.push((await generateStream(app.api, owner.accessToken, canvasId, `Write 200 paragraphs [run:fanout-${i}]`)).generationId);
    }
    for (const id of generationIds) await (await queue.getJob(broadcastJobId(id)))?.waitUntilFinished(queueEvents, 30_000);

    let payloads: Array<Record<string, unknown>> | undefined;
    const byClients = [];
    for (const clients of options.clientCounts) {
      const groups = { ours: `${keyPrefix}-ours-${clients}`, raw: `${keyPrefix}-raw-${clients}` };
      open.push(groups.ours, groups.raw);
      ctx.log(`fanout: connecting ${clients} clients to the canvas room and ${clients} to a bare Socket.IO server`);
      await fleet.connect({ group: groups.ours, url: `${app.url}/canvas`, auth: { token: owner.accessToken }, count: clients, join: { event: 'canvas:join', arg: canvasId } });
      await fleet.connect({ group: groups.raw, url: raw.url, auth: {}, count: clients });
      const ours = { total: [] as number[], toFirst: [] as number[] };
      const bare = { total: [] as number[], toFirst: [] as number[] };
      let chunkCount = 0;
      for (let rep = 0; rep < perCount; rep += 1) {
        const generationId = generationIds.shift()!;
        const enqueued = now();
        await queue.add(BROADCAST_JOB, { generationId, canvasId }, { jobId: `bench-${randomUUID()}`, removeOnComplete: true });
        const done = await fleet.completion(groups.ours, generationId, { withSample: payloads === undefined, timeoutMs: 60_000 });
        payloads ??= done.sample as Array<Record<string, unknown>>;
        chunkCount = payloads.length;

        const key = randomUUID();
        const keyed = payloads.map((payload) => ({ ...payload, generationId: key }));
        const emitted = now();
        raw.emitAll(CHUNK_EVENT, keyed);
        const rawDone = await fleet.completion(groups.raw, key, { timeoutMs: 60_000 });
        if (rep < options.warmups) continue;
        ours.total.push(msBetween(enqueued, done.lastAt));
        ours.toFirst.push(msBetween(enqueued, done.firstAt));
        bare.total.push(msBetween(emitted, rawDone.lastAt));
        bare.toFirst.push(msBetween(emitted, rawDone.firstAt));
      }
      await fleet.close(groups.ours);
      await fleet.close(groups.raw);
      const deliveries = clients * chunkCount;
      const oursP50 = median(ours.total);
      const rawP50 = median(bare.total);
      byClients.push({
        clients,
        chunks: chunkCount,
        deliveries,
        oursP50Ms: round(oursP50),
        rawP50Ms: round(rawP50),
        oursDeliveriesPerS: Math.round(deliveries / (oursP50 / 1000)),
        rawDeliveriesPerS: Math.round(deliveries / (rawP50 / 1000)),
        shareOfRaw: round(rawP50 / oursP50, 3),
        oursToFirstChunkP50Ms: round(median(ours.toFirst)),
        rawToFirstChunkP50Ms: round(median(bare.toFirst)),
        oursSamplesMs: ours.total.map((value) => round(value)),
        rawSamplesMs: bare.total.map((value) => round(value)),
      });
    }
    return {
      config: {
        reps: options.reps,
        warmups: options.warmups,
        chunkSize: app.config.broadcast.chunkSize,
        chunkDelayMs: app.config.broadcast.chunkDelayMs,
        ours: 'broadcast job enqueued (BullMQ) → processor reads the generation and its blocks → 20 emits through the Redis Streams adapter → fleet',
        raw: 'bare socket.io Server (in-memory adapter, no recovery) → 20 × io.to(room).emit of the same payloads → fleet',
      },
      byClients,
    };
  } finally {
    for (const group of open) await fleet.close(group).catch(() => undefined);
    await queueEvents.close();
    await queue.close();
    await app.stop();
    await raw.close();
    await model.close();
  }
}

import { randomUUID } from 'node:crypto';
import { createCanvas, registerUser } from '../../test/support/http';
import type { BenchContext } from '../lib/context';
import { consumeModelStream, FloorDb, FloorQueue } from '../lib/floor';
import { uniquePrefix, startInProcessSwitchboard } from '../lib/harness';
import { generationEventsKey } from '../lib/bench-redis';
import { startBulkModel } from '../lib/models';
import { startCpuProfile } from '../lib/profiler';
import { startRawSocketServer } from '../lib/raw-socket-server';
import type { GenerationStream } from '../lib/sse-client';
import { median, round, summarize } from '../lib/stats';
import { msBetween, now, type Stamp } from '../lib/timing';

const CHUNK_EVENT = 'blocks_bulk_added_chunk';

export interface GenerationOptions {
  runs: number;
  warmups: number;
  clients: number;
  blocks: number;
}

/**
 * One generation of `blocks` blocks from a zero-latency model, end to end: POST generate-stream →
 * the last `blocks_bulk_added_chunk` at the last of `clients` sockets in the canvas room. The POST
 * and its SSE stream are made and read by the client fleet's process, as the sockets are. Each run
 * is followed by a floor run on the same machine: BullMQ add → no-op worker done, the raw
 * consumption of the same model stream (the first turn's 200 tool calls), one 200-row insert, and
 * a bare Socket.IO emit of the same 20 chunk payloads to as many clients.
 */
export async function generationScenario(ctx: BenchContext, options: GenerationOptions) {
  const { fleet } = ctx;
  const keyPrefix = uniquePrefix('gen');
  const model = await startBulkModel(options.blocks);
  const app = await startInProcessSwitchboard({ redis: ctx.redis, keyPrefix, dataDir: ctx.dataDir, endpoint: model.endpoint });
  const raw = await startRawSocketServer();
  const floorQueue = await FloorQueue.start(ctx.floorRedisUrl, `${keyPrefix}-floor:bull`);
  const floorDb = await FloorDb.start();
  const groups = { ours: `${keyPrefix}-ours`, floor: `${keyPrefix}-floor` };
  try {
    const owner = await registerUser(app.api, 'Bench');
    const canvasId = await createCanvas(app.api, owner, 'Benchmark canvas');
    ctx.log(`generation: connecting ${options.clients} clients to the canvas room and ${options.clients} to a bare Socket.IO server`);
    await fleet.connect({
      group: groups.ours,
      url: `${app.url}/canvas`,
      auth: { token: owner.accessToken },
      count: options.clients,
      join: { event: 'canvas:join', arg: canvasId },
    });
    await fleet.connect({ group: groups.floor, url: raw.url, auth: {}, count: options.clients });

    const ours: number[] = [];
    const floor: number[] = [];
    const parts = { queue: [] as number[], model: [] as number[], insert: [] as number[], emit: [] as number[] };
    const stages: Array<Record<string, number>> = [];
    let payloads: Array<Record<string, unknown>> | undefined;
    let rows: Array<{ type: string; content: unknown }> = [];
    const total = options.warmups + options.runs;
    let stopProfile: (() => Promise<string | undefined>) | undefined;
    for (let run = 0; run < total; run += 1) {
      if (run === options.warmups) stopProfile = await startCpuProfile(ctx.profileDir, 'generation');
      // Ours: the whole product path; the generation's SSE stream is read in the fleet process, as
      // its sockets are (a browser reads it elsewhere), and its Redis event stream followed there.
      const stream = await fleet.generate({
        api: app.api,
        token: owner.accessToken,
        canvasId,
        prompt: `Write ${options.blocks} paragraphs about the quarterly plan [run:${run}]`,
        follow: { target: ctx.redis.target, keyPrefix },
      });
      const done = await fleet.completion(groups.ours, stream.generationId, { withSample: payloads === undefined, timeoutMs: 60_000 });
      const events = await fleet.followed(generationEventsKey(keyPrefix, stream.generationId));
      if (!payloads) {
        payloads = done.sample as Array<Record<string, unknown>>;
        rows = payloads.flatMap((payload) => payload.blocks as Array<{ type: string; content: unknown }>);
        if (rows.length !== options.blocks) throw new Error(`expected ${options.blocks} blocks in the chunks, got ${rows.length}`);
      }
      // Floor: the same work with nothing in between.
      const queueMs = await floorQueue.roundTrip();
      const consumed = await consumeModelStream(model.baseURL, 'scripted', `Write ${options.blocks} paragraphs [floor:${run}]`);
      if (consumed.calls !== options.blocks) throw new Error(`the floor read ${consumed.calls} of ${options.blocks} tool calls`);
      const modelMs = consumed.ms;
      const insertMs = await floorDb.insert(rows);
      const key = randomUUID();
      const keyed = payloads.map((payload) => ({ ...payload, generationId: key }));
      const emitted = now();
      raw.emitAll(CHUNK_EVENT, keyed);
      const floorDone = await fleet.completion(groups.floor, key);
      const emitMs = msBetween(emitted, floorDone.lastAt);
      if (run < options.warmups) continue;
      ours.push(msBetween(stream.startedAt, done.lastAt));
      floor.push(queueMs + modelMs + insertMs + emitMs);
      parts.queue.push(queueMs);
      parts.model.push(modelMs);
      parts.insert.push(insertMs);
      parts.emit.push(emitMs);
      stages.push(stageTimes(stream, events, model.requestTimes, done.firstAt, done.lastAt));
    }
    const profile = await stopProfile?.();
    if (profile) ctx.log(`generation: CPU profile of the measured runs in ${profile}`);

    const p = summarize(ours);
    const f = summarize(floor);
    const stageNames = Object.keys(stages[0] ?? {});
    return {
      config: {
        runs: options.runs,
        warmups: options.warmups,
        clients: options.clients,
        blocks: options.blocks,
        chunkSize: app.config.broadcast.chunkSize,
        chunkDelayMs: app.config.broadcast.chunkDelayMs,
        database: 'PGlite in memory (app and floor)',
        model: 'zero-latency scripted model (stock OpenAI-compatible server), 200 create_text calls then a text',
        process: 'every role in the benchmark process; clients in a separate fleet process',
      },
      p50Ms: p.p50,
      p90Ms: p.p90,
      p99Ms: p.p99,
      minMs: p.min,
      maxMs: p.max,
      floorP50Ms: f.p50,
      floorP99Ms: f.p99,
      floorPartsP50Ms: {
        queue: round(median(parts.queue)),
        model: round(median(parts.model)),
        insert: round(median(parts.insert)),
        emit: round(median(parts.emit)),
      },
      ratioP50: round(p.p50 / f.p50),
      // Median of each run's own ratio (ours and its floor run back to back): steadier on a shared machine.
      ratioPairedMedian: round(median(ours.map((value, i) => value / floor[i]))),
      stagesP50Ms: Object.fromEntries(stageNames.map((name) => [name, round(median(stages.map((s) => s[name])))])),
      samplesMs: ours.map((value) => round(value)),
      floorSamplesMs: floor.map((value) => round(value)),
    };
  } finally {
    await fleet.close(groups.ours).catch(() => undefined);
    await fleet.close(groups.floor).catch(() => undefined);
    await app.stop();
    await raw.close();
    await floorQueue.close();
    await floorDb.close();
    await model.close();
  }
}

/**
 * Where one run's time went. Event times are when each generation event became readable in Redis,
 * seen from the fleet process (the benchmark process runs Switchboard, so its own stamps lag when
 * Switchboard blocks its event loop); model request times are stamped by the scripted model.
 * Consecutive stages add up to the end-to-end time.
 */
function stageTimes(
  stream: GenerationStream,
  events: Array<{ type: string; stage?: string; at: Stamp }>,
  modelRequests: Stamp[],
  firstChunk: Stamp,
  lastChunk: Stamp,
): Record<string, number> {
  const find = (predicate: (event: { type: string; stage?: string }) => boolean, last = false) => {
    const matches = events.filter(predicate);
    const event = last ? matches.at(-1) : matches[0];
    if (!event) throw new Error('missing generation event');
    return event.at;
  };
  const status = (stage: string) => find((e) => e.type === 'status' && e.stage === stage);
  const [turn1, turn2] = modelRequests.filter((stamp) => stamp > stream.startedAt);
  const lastOutput = find((e) => e.type === 'tool_output', true);
  const complete = find((e) => e.type === 'complete');
  const sseComplete = stream.events.find((e) => e.event === 'complete')!.at;
  return {
    'api: POST → SSE response headers': msBetween(stream.startedAt, stream.headersAt),
    'queue: headers → model request 1': msBetween(stream.headersAt, turn1),
    'agent: model request 1 → last tool_output in Redis': msBetween(turn1, lastOutput),
    'agent: last tool_output → model request 2': msBetween(lastOutput, turn2),
    'agent: model request 2 → persisting in Redis': msBetween(turn2, status('persisting')),
    'persist: persisting → broadcasting in Redis': msBetween(status('persisting'), status('broadcasting')),
    'finish: broadcasting → complete in Redis': msBetween(status('broadcasting'), complete),
    'broadcast: complete in Redis → first chunk at a client': msBetween(complete, firstChunk),
    'fan-out: first chunk → last chunk at the last client': msBetween(firstChunk, lastChunk),
    '(aside) complete in Redis → complete at the SSE client': msBetween(complete, sseComplete),
  };
}

import { createCanvas, registerUser } from '../../test/support/http';
import type { BenchContext } from '../lib/context';
import { startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { benchRedisClient, generationEventsKey } from '../lib/bench-redis';
import type { RedisClient } from '../../src/lib/redis';
import { generateStream } from '../lib/sse-client';
import { median, round, summarize } from '../lib/stats';
import { startCpuProfile } from '../lib/profiler';
import { startTimedModel } from '../lib/timed-model';
import { msBetween, now, type Stamp } from '../lib/timing';

export interface SseOverheadOptions {
  generations: number;
  warmups: number;
  /** Tool calls per generation. */
  calls: number;
  /** Pause between tool calls, so each tool_output is a separate SSE message. */
  gapMs: number;
}

/**
 * From the model writing a tool call to the SSE client holding the matching `tool_output`, with
 * model, Switchboard and SSE client in this process (one clock). A bench-side reader follows the
 * generation's Redis event stream too, splitting the path at the XADD.
 */
export async function sseOverheadScenario(ctx: BenchContext, options: SseOverheadOptions) {
  const keyPrefix = uniquePrefix('sse');
  const model = await startTimedModel({ calls: options.calls, gapMs: options.gapMs });
  const app = await startInProcessSwitchboard({
    redis: ctx.redis,
    keyPrefix,
    dataDir: ctx.dataDir,
    endpoint: { baseURL: model.baseURL, apiKey: 'bench', provider: 'scripted', models: ['timed'] },
  });
  const reader = benchRedisClient(ctx.redis);
  try {
    const owner = await registerUser(app.api, 'Sse');
    const canvasId = await createCanvas(app.api, owner, 'SSE canvas');
    const fromEmit: number[] = [];
    const fromClosed: number[] = [];
    const closedToRedis: number[] = [];
    const redisToSse: number[] = [];
    let separateMessages = 0;
    let outputs = 0;
    let stopProfile: (() => Promise<string | undefined>) | undefined;
    for (let g = 0; g < options.warmups + options.generations; g += 1) {
      if (g === options.warmups) stopProfile = await startCpuProfile(ctx.profileDir, 'sse-overhead');
      const tag = `sse-${g}`;
      let follower: Promise<Map<number, Stamp>> | undefined;
      const stream = await generateStream(
        app.api,
        owner.accessToken,
        canvasId,
        `Write ${options.calls} paragraphs, one at a time [run:${tag}]`,
        {
          onHeaders: (generationId) => {
            follower = followRedis(reader, generationEventsKey(keyPrefix, generationId));
          },
        },
      );
      const seenInRedis = await follower!;
      const turn = model.turns.get(tag);
      if (!turn) throw new Error(`the model saw no turn ${tag}`);
      if (g < options.warmups) continue;
      const toolOutputs = stream.events.filter((event) => event.event === 'tool_output');
      if (toolOutputs.length !== options.calls) throw new Error(`expected ${options.calls} tool_output events, got ${toolOutputs.length}`);
      separateMessages += new Set(toolOutputs.map((event) => event.at)).size;
      outputs += toolOutputs.length;
      for (const event of toolOutputs) {
        const index = event.data.index as number;
        fromEmit.push(msBetween(turn.emittedAt[index], event.at));
        fromClosed.push(msBetween(turn.closedAt[index], event.at));
        const inRedis = seenInRedis.get(Number(event.id));
        if (inRedis !== undefined) {
          closedToRedis.push(msBetween(turn.closedAt[index], inRedis));
          redisToSse.push(msBetween(inRedis, event.at));
        }
      }
    }
    const profile = await stopProfile?.();
    if (profile) ctx.log(`sseOverhead: CPU profile of the measured runs in ${profile}`);
    const emit = summarize(fromEmit);
    const closed = summarize(fromClosed);
    return {
      config: {
        generations: options.generations,
        warmups: options.warmups,
        callsPerGeneration: options.calls,
        gapMs: options.gapMs,
        model: 'bench timed model: each tool call in one write, stamped just before it; calls gapMs apart',
        process: 'model, Switchboard (every role) and SSE client in the benchmark process',
      },
      samples: fromEmit.length,
      separateSseChunks: `${separateMessages} of ${outputs} tool_output events arrived in a network chunk of their own`,
      p50Ms: emit.p50,
      p90Ms: emit.p90,
      p99Ms: emit.p99,
      fromCallClosedP50Ms: closed.p50,
      fromCallClosedP99Ms: closed.p99,
      splitP50Ms: {
        'call closed → XADD visible to a Redis reader': round(median(closedToRedis)),
        'XADD visible → tool_output at SSE client': round(median(redisToSse)),
      },
    };
  } finally {
    reader.disconnect();
    await app.stop();
    await model.close();
  }
}

/** Stamps when each entry of a generation's event stream becomes readable, until `complete` or `error`. */
async function followRedis(redis: RedisClient, key: string): Promise<Map<number, Stamp>> {
  const seen = new Map<number, Stamp>();
  let last = '0-0';
  for (;;) {
    const result = await redis.xread('BLOCK', 10_000, 'STREAMS', key, last);
    if (!result) throw new Error(`no events on ${key} for 10 s`);
    const at = now();
    for (const [id, fields] of result[0][1]) {
      seen.set(Number.parseInt(id, 10), at);
      last = id;
      const type = (JSON.parse(fields[1]) as { type: string }).type;
      if (type === 'complete' || type === 'error') return seen;
    }
  }
}

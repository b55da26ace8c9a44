/**
 * Where the time from a `broadcast` job's enqueue to its first chunk goes (the fixed cost that the
 * fan-out target pays before its first chunk): an in-process Switchboard on PGlite in memory, one
 * persisted 200-block generation broadcast again and again as the `fanout` scenario does, one
 * broadcast at a time after a 50 ms pause, each step stamped by wrapping the method that does it
 * (`name`, and `name:done` when its promise settles). Prints, for each stamp, the median time from
 * the enqueue to it, in the order of those medians.
 *
 *   node -r ./bench/register.cjs bench/tools/broadcast-hop.ts [--runs=100]
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { GenerationEventLog } from '../../src/generation/event-log';
import { broadcastJobId } from '../../src/producers/broadcast';
import { bullPrefix } from '../../src/producers/registry';
import { CanvasLog } from '../../src/realtime/canvas-log';
import { RedisStreamsAdapter } from '../../src/realtime/redis-streams-adapter';
import { broadcastHandlers } from '../../src/workers/broadcast';
import { createCanvas, registerUser } from '../../test/support/http';
import { benchRedisClient, KEPT_FOR_WAITERS } from '../lib/bench-redis';
import { startBulkModel } from '../lib/models';
import { generateStream } from '../lib/sse-client';
import { median } from '../lib/stats';
import { MethodStamps, msBetween, now, settle } from '../lib/timing';
import { startToolSwitchboard } from '../lib/tool-switchboard';

const RUNS = Number(process.argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? '100');

/** The stamps of the broadcast in flight (one at a time). */
const clock = new MethodStamps();
const stamp: MethodStamps['wrap'] = (target, method, name) => clock.wrap(target, method, name);

async function main() {
  stamp(broadcastHandlers.handlers as Record<string, () => Promise<unknown>>, 'broadcast-blocks', 'handler');
  stamp(GenerationEventLog.prototype, 'takeKeptBlocks', 'takeKept');
  stamp(CanvasLog.prototype, 'appendAll', 'append');
  stamp(RedisStreamsAdapter.prototype, 'receive', 'adapterReceive');

  const model = await startBulkModel(200);
  const { app, redis, keyPrefix, stop } = await startToolSwitchboard('broadcast-hop', model.endpoint);
  const connections = [benchRedisClient(redis), benchRedisClient(redis)];
  const command = benchRedisClient(redis, 'command');
  const queue = new Queue('broadcast', { connection: connections[0], prefix: bullPrefix(keyPrefix) });
  const queueEvents = new QueueEvents('broadcast', { connection: connections[1], prefix: bullPrefix(keyPrefix) });
  const steps: Record<string, number[]> = {};
  try {
    await queueEvents.waitUntilReady();
    const owner = await registerUser(app.api, 'Hop');
    const canvasId = await createCanvas(app.api, owner, 'Hop');
    const { generationId } = await generateStream(app.api, owner.accessToken, canvasId, 'Write 200 paragraphs [run:hop]');
    await (await queue.getJob(broadcastJobId(generationId)))?.waitUntilFinished(queueEvents, 30_000);
    const kept = await app.repos.blocks.listByGeneration(generationId);
    const events = new GenerationEventLog(command, app.config.redis.keyPrefix, app.config.generation.eventsTtlSeconds);
    for (let run = 0; run < RUNS + 10; run += 1) {
      await events.keepBlocks(generationId, kept);
      await settle(50);
      clock.reset();
      const enqueued = now();
      const job = await queue.add('broadcast-blocks', { generationId, canvasId }, { jobId: `hop-${randomUUID()}`, ...KEPT_FOR_WAITERS });
      clock.stamps.added = now();
      await job.waitUntilFinished(queueEvents, 30_000);
      if (run < 10) continue;
      for (const [name, at] of Object.entries(clock.stamps)) (steps[name] ??= []).push(msBetween(enqueued, at));
    }
  } finally {
    await queue.close();
    await queueEvents.close();
    for (const connection of [...connections, command]) connection.disconnect();
    await stop();
    await model.close();
  }
  const rows = Object.entries(steps)
    .map(([name, samples]) => [name, median(samples)] as const)
    .sort((a, b) => a[1] - b[1]);
  console.log('  from add      step  stamp');
  rows.forEach(([name, at], i) =>
    console.log(`${at.toFixed(2).padStart(8)} ms ${(at - (rows[i - 1]?.[1] ?? 0)).toFixed(2).padStart(7)}  ${name}`),
  );
}

void main();

/**
 * A streamed generation's CPU against the minimal consumer of the same stream, rep by rep: the
 * realistic-stream scenario's model (create_text calls in ~4-character deltas, in a process of its
 * own, as fast as the socket takes them) and an in-process Switchboard on PGlite in memory, then
 * `consumeModelStream` (fetch, SSE split, `JSON.parse` of each chunk, the arguments accumulated)
 * on the same stream, taking turns. Each rep's own ratio is kept, so a rep that a busy host slowed
 * is compared with its neighbour, not with the whole run; the main thread's CPU is printed beside
 * the process's (V8's own threads, GC and compiling, make the difference).
 *
 *   node -r ./bench/register.cjs bench/tools/stream-cpu.ts [--calls=364] [--reps=12]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedRedis } from '../../src/app/embedded-redis';
import { createCanvas, registerUser } from '../../test/support/http';
import { singleBenchRedis } from '../lib/bench-redis';
import { consumeModelStream } from '../lib/floor';
import { ownCpuMs, startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { generateStream } from '../lib/sse-client';
import { median } from '../lib/stats';
import { fromWire, msBetween, settle } from '../lib/timing';
import { StreamModel } from '../scenarios/realistic-stream';

const flag = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const CALLS = flag('calls', 364);
const REPS = flag('reps', 12);
const WARMUPS = 2;

const threadMs = () => {
  const { user, system } = process.threadCpuUsage();
  return (user + system) / 1000;
};

async function main() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-stream-cpu-'));
  const redis = await startEmbeddedRedis(dataDir);
  const model = await StreamModel.start();
  const app = await startInProcessSwitchboard({
    redis: singleBenchRedis(redis.url),
    keyPrefix: uniquePrefix('stream-cpu'),
    dataDir,
    endpoint: model.endpoint,
  });
  const ours: number[] = [];
  const oursMain: number[] = [];
  const bare: number[] = [];
  const ratios: number[] = [];
  const afterStream: number[] = [];
  try {
    const owner = await registerUser(app.api, 'StreamCpu');
    const canvasId = await createCanvas(app.api, owner, 'Stream CPU');
    for (let rep = 0; rep < REPS + WARMUPS; rep += 1) {
      const prompt = (tag: string) => `Write ${CALLS} paragraphs [calls:${CALLS}] [run:${tag}]`;
      await settle(100);
      const cpu0 = ownCpuMs();
      const main0 = threadMs();
      const stream = await generateStream(app.api, owner.accessToken, canvasId, prompt(`ours${rep}`), { timeoutMs: 120_000 });
      const spent = ownCpuMs() - cpu0;
      const spentMain = threadMs() - main0;
      const complete = stream.events.find((event) => event.event === 'complete');
      if (!complete) throw new Error('the generation ended without complete');
      const turn = await model.turn(`ours${rep}`);
      await settle(100);
      const bare0 = ownCpuMs();
      const read = await consumeModelStream(model.baseURL, 'realistic', prompt(`bare${rep}`));
      const spentBare = ownCpuMs() - bare0;
      if (read.calls !== CALLS) throw new Error(`the minimal consumer saw ${read.calls} of ${CALLS} calls`);
      if (rep < WARMUPS) continue;
      ours.push(spent);
      oursMain.push(spentMain);
      bare.push(spentBare);
      ratios.push(spent / spentBare);
      afterStream.push(msBetween(fromWire(turn.lastByteAt), complete.at));
    }
  } finally {
    await app.stop();
    await model.stop();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const row = (name: string, values: number[], unit: string) =>
    console.log(`${name.padEnd(44)} median ${median(values).toFixed(2).padStart(8)} ${unit}  min ${Math.min(...values).toFixed(2)}`);
  console.log(`${CALLS} calls, ${REPS} reps after ${WARMUPS} warm-ups`);
  row('CPU per generation, process', ours, 'ms');
  row('CPU per generation, main thread', oursMain, 'ms');
  row('CPU of the minimal consumer', bare, 'ms');
  row('ratio of each rep (ours / minimal consumer)', ratios, '×');
  console.log(`${'ratio of the medians'.padEnd(44)} ${(median(ours) / median(bare)).toFixed(2)} ×`);
  row('last model byte → complete at the client', afterStream, 'ms');
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

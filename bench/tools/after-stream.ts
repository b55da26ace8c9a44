/**
 * Where a realistic-stream generation's time goes after the model's last byte, and its CPU by
 * phase: the realistic-stream scenario's model (200 create_text calls in ~4-character deltas, in a
 * process of its own, as fast as the socket takes them), an in-process Switchboard on PGlite in
 * memory, one generation at a time after a 100 ms pause. Stamps, from the model's last byte: the
 * model turns' calls and returns, the generation's status events, the end transaction's steps, the
 * releases, `complete` emitted and at the SSE client. Prints each stamp's median, then the main
 * thread's CPU in each phase and the whole process's CPU per generation, at the median.
 *
 *   node -r ./bench/register.cjs bench/tools/after-stream.ts [--runs=10] [--calls=200]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelGateway } from '../../src/ai/model-gateway';
import { startEmbeddedRedis } from '../../src/app/embedded-redis';
import { GenerationEventLog } from '../../src/generation/event-log';
import { GenerationLimiter } from '../../src/generation/generation-limiter';
import { EventWriter } from '../../src/lib/sequenced-event-log';
import { BlocksRepository } from '../../src/models/blocks-repository';
import { GenerationsRepository } from '../../src/models/generations-repository';
import { RunsRepository } from '../../src/models/runs-repository';
import { createCanvas, registerUser } from '../../test/support/http';
import { singleBenchRedis } from '../lib/bench-redis';
import { ownCpuMs, startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { generateStream } from '../lib/sse-client';
import { median } from '../lib/stats';
import { fromWire, MethodStamps, msBetween, now, settle, type Stamp } from '../lib/timing';
import { StreamModel } from '../scenarios/realistic-stream';
import { commandStats } from '../scenarios/run-throughput';
import { Redis } from 'ioredis';

const RUNS = Number(process.argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? '10');
const CALLS = Number(process.argv.find((a) => a.startsWith('--calls='))?.slice(8) ?? '200');
const WARMUPS = 2;

const clock = new MethodStamps();
/** CPU of the main thread so far, ms: the phases are told apart on it (V8's own threads, GC and compiling, count in the whole). */
const threadMs = () => {
  const { user, system } = process.threadCpuUsage();
  return (user + system) / 1000;
};
let cpuAt: Record<string, number> = {};
const once = (name: string) => {
  cpuAt[name] ??= threadMs();
  clock.stamps[name] ??= now();
};

/** The CPU phases, each from the stamp before it (the first from the POST, the last to the client's `complete`). */
const PHASES = ['turn 1: called', 'turn 1: returned', 'status persisting emitted', 'status broadcasting emitted', 'complete emitted'];

async function main() {
  const streamTurn = ModelGateway.prototype.streamTurn;
  let turns = 0;
  ModelGateway.prototype.streamTurn = function (this: ModelGateway, request) {
    const turn = ++turns;
    once(`turn ${turn}: called`);
    const result = streamTurn.call(this, request);
    // Stamped when the call settles either way; its caller handles the call's own failure.
    const returned = () => once(`turn ${turn}: returned`);
    void result.then(returned, returned);
    return result;
  };
  const emit = EventWriter.prototype.emit;
  EventWriter.prototype.emit = function (this: EventWriter<{ type: string }>, event) {
    if (event.type === 'status') once(`status ${(event as { stage?: string }).stage} emitted`);
    if (event.type === 'complete') once('complete emitted');
    return emit.call(this, event);
  };
  clock.wrap(RunsRepository.prototype, 'moveWith', 'end transaction');
  clock.wrap(BlocksRepository.prototype, 'lockForGeneration', 'lock');
  clock.wrap(BlocksRepository.prototype, 'insertMany', 'insert');
  clock.wrap(GenerationsRepository.prototype, 'complete', 'generation row');
  clock.wrap(GenerationEventLog.prototype, 'keepBlocks', 'broadcast copy');
  clock.wrap(GenerationLimiter.prototype, 'release', 'slot release');

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-after-stream-'));
  const redis = await startEmbeddedRedis(dataDir);
  const model = await StreamModel.start();
  const app = await startInProcessSwitchboard({
    redis: singleBenchRedis(redis.url),
    keyPrefix: uniquePrefix('after'),
    dataDir,
    endpoint: model.endpoint,
  });
  const steps: Record<string, number[]> = {};
  const phases: number[][] = PHASES.map(() => []).concat([[]]);
  const totals: number[] = [];
  const mainThread: number[] = [];
  /** Redis commands by name, per generation (the server's own counts: every connection of the app). */
  const commands: Record<string, number[]> = {};
  const stats = new Redis(redis.url, { lazyConnect: false });
  try {
    const owner = await registerUser(app.api, 'After');
    const canvasId = await createCanvas(app.api, owner, 'After the stream');
    for (let run = 0; run < RUNS + WARMUPS; run += 1) {
      await settle(100);
      clock.reset();
      cpuAt = {};
      turns = 0;
      const tag = `after${run}`;
      const stats0 = await commandStats(stats);
      const cpu0 = ownCpuMs();
      const thread0 = threadMs();
      const stream = await generateStream(app.api, owner.accessToken, canvasId, `Write ${CALLS} paragraphs [calls:${CALLS}] [run:${tag}]`, {
        timeoutMs: 120_000,
      });
      const cpu1 = ownCpuMs();
      const thread1 = threadMs();
      const turn = await model.turn(tag);
      const stats1 = await commandStats(stats);
      if (run < WARMUPS) continue;
      for (const [name, { calls }] of Object.entries(stats1))
        if (name !== 'info') (commands[name] ??= []).push(calls - (stats0[name]?.calls ?? 0));
      const complete = stream.events.find((event) => event.event === 'complete');
      if (!complete) throw new Error('the generation ended without complete');
      const lastByte = fromWire(turn.lastByteAt);
      const stamps: Record<string, Stamp> = { ...clock.stamps, 'complete at the SSE client': complete.at };
      for (const [name, at] of Object.entries(stamps)) (steps[name] ??= []).push(msBetween(lastByte, at));
      const marks = [thread0, ...PHASES.map((name) => cpuAt[name]), thread1];
      marks.slice(1).forEach((mark, i) => phases[i].push(mark - marks[i]));
      totals.push(cpu1 - cpu0);
      mainThread.push(thread1 - thread0);
    }
  } finally {
    stats.disconnect();
    await app.stop();
    await model.stop();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  console.log("  from the model's last byte, median over", RUNS, 'runs');
  for (const [name, samples] of Object.entries(steps).sort((a, b) => median(a[1]) - median(b[1])))
    console.log(`${median(samples).toFixed(1).padStart(8)} ms  ${name}`);
  const names = [
    'POST → turn 1',
    'turn 1 (the stream)',
    '→ persisting',
    'end transaction and releases',
    '→ complete emitted',
    '→ at the SSE client',
  ];
  console.log('\n  main-thread CPU by phase, median');
  names.forEach((name, i) => console.log(`${median(phases[i]).toFixed(1).padStart(8)} ms  ${name}`));
  console.log(`${median(mainThread).toFixed(1).padStart(8)} ms  main thread, the whole generation`);
  console.log(
    `${median(totals).toFixed(1).padStart(8)} ms  the process (V8's threads too), the whole generation (min ${Math.min(...totals).toFixed(1)})`,
  );
  console.log('\n  Redis commands per generation, median (the server counts every connection)');
  for (const [name, samples] of Object.entries(commands).sort((a, b) => median(b[1]) - median(a[1])))
    if (median(samples) > 0) console.log(`${median(samples).toFixed(0).padStart(8)}     ${name}`);
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

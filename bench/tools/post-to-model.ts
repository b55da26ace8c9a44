/**
 * Where the time from `POST /ai/generate-stream` to the model's request goes, stage by stage: an
 * in-process Switchboard on PGlite in memory with the realistic-stream scenario's stand-in model in
 * a process of its own (as `realisticStream` measures it), one generation at a time after a 100 ms
 * pause, each step's start stamped by wrapping the method that does it (`name`, and `name:done` when
 * its promise settles). Prints, for each stamp, the median time from the POST to it, in the order
 * of those medians (steps that run side by side interleave), then the median of the whole.
 *
 *   node -r ./bench/register.cjs bench/tools/post-to-model.ts [--runs=40]
 */
import http from 'node:http';
import { BudgetDoor } from '../../src/budget/budget-door';
import { GenerationRunner } from '../../src/generation/generation-runner';
import { GenerationService } from '../../src/generation/generation-service';
import { ModelGateway } from '../../src/ai/model-gateway';
import { GenerationsRepository } from '../../src/models/generations-repository';
import { GenerationLimiter } from '../../src/generation/generation-limiter';
import { GenerationEventLog } from '../../src/generation/event-log';
import { Queue } from 'bullmq';
import { UsersRepository } from '../../src/models/users-repository';
import { SseStreams } from '../../src/http/sse-streams';
import { createCanvas, registerUser } from '../../test/support/http';
import { generateStream } from '../lib/sse-client';
import { median } from '../lib/stats';
import { fromWire, MethodStamps, msBetween, now, settle, type Stamp } from '../lib/timing';
import { startToolSwitchboard } from '../lib/tool-switchboard';
import { StreamModel } from '../scenarios/realistic-stream';

const RUNS = Number(process.argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? '40');

/** The stamps of the generation in flight (one at a time). */
const clock = new MethodStamps();
const stamp: MethodStamps['wrap'] = (target, method, name) => clock.wrap(target, method, name);

async function main() {
  stamp(UsersRepository.prototype, 'sessionAndCanvasRole', 'session');
  stamp(SseStreams.prototype, 'serve', 'serve');
  stamp(SseStreams.prototype as unknown as { acquire: () => Promise<void> }, 'acquire', 'streamSlot');
  stamp(GenerationService.prototype, 'start', 'service');
  stamp(BudgetDoor.prototype, 'admitPrompt', 'admit');
  stamp(GenerationLimiter.prototype, 'take', 'rateLimit');
  stamp(GenerationsRepository.prototype, 'createWithRun', 'insert');
  stamp(GenerationEventLog.prototype, 'append', 'queuedEvent');
  stamp(Queue.prototype, 'add', 'enqueue');
  stamp(GenerationRunner.prototype, 'process', 'worker');
  stamp(GenerationsRepository.prototype, 'start', 'runStart');
  stamp(GenerationEventLog.prototype, 'writer', 'logWriter');
  stamp(ModelGateway.prototype, 'streamTurn', 'modelCall');
  stamp(BudgetDoor.prototype, 'forCall', 'budget');
  const emit = http.Server.prototype.emit;
  http.Server.prototype.emit = function (this: http.Server, event: string, ...args: unknown[]) {
    if (event === 'request') clock.stamps.request ??= now();
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as typeof emit;
  const request = http.request;
  (http as { request: unknown }).request = (...args: unknown[]) => {
    clock.stamps.httpRequest ??= now();
    return (request as (...a: unknown[]) => http.ClientRequest)(...args);
  };

  const model = await StreamModel.start();
  const { app, stop } = await startToolSwitchboard('post-to-model', model.endpoint);
  const steps: Record<string, number[]> = {};
  const add = (name: string, ms: number) => (steps[name] ??= []).push(ms);
  try {
    const owner = await registerUser(app.api, 'Stages');
    const canvasId = await createCanvas(app.api, owner, 'Stages');
    for (let run = 0; run < RUNS + 5; run += 1) {
      await settle(100);
      clock.reset();
      const tag = `p${run}`;
      const stream = await generateStream(app.api, owner.accessToken, canvasId, `Write 1 paragraphs [calls:1] [run:${tag}]`);
      const turn = await model.turn(tag);
      if (run < 5) continue;
      const post = stream.startedAt;
      const at: Record<string, Stamp> = { ...clock.stamps, modelRequest: fromWire(turn.requestAt), headers: stream.headersAt };
      for (const [name, stamped] of Object.entries(at)) add(name, msBetween(post, stamped));
      add('POST → model request (total)', msBetween(post, at.modelRequest));
      add('POST → response headers', msBetween(post, at.headers));
    }
  } finally {
    await stop();
    await model.stop();
  }
  // Each stamp's median time from the POST, in that order, and the step from the one before it.
  const rows = Object.entries(steps)
    .filter(([name]) => !name.startsWith('POST'))
    .map(([name, samples]) => [name, median(samples), samples.length] as const)
    .sort((a, b) => a[1] - b[1]);
  console.log('  from POST     step  stamp');
  rows.forEach(([name, at, n], i) =>
    console.log(
      `${at.toFixed(2).padStart(8)} ms ${(at - (rows[i - 1]?.[1] ?? 0)).toFixed(2).padStart(7)}  ${name}${n < RUNS ? ` (${n} runs)` : ''}`,
    ),
  );
  for (const name of ['POST → response headers', 'POST → model request (total)'])
    console.log(`${median(steps[name]).toFixed(2).padStart(8)} ms  ${name}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

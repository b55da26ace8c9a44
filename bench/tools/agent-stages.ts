/**
 * Where a 200-block generation's agent stage goes, step by step: an in-process Switchboard on
 * PGlite in memory with the generation scenario's zero-latency scripted model (in this process, as
 * there), no canvas clients, one generation at a time after a 100 ms pause. Stamps, from the
 * model's first request: each model turn's call and return, the first and last `tool_output`
 * emitted, every write of the generation's event log (sent, answered), the `persisting` status,
 * the model's second request. Prints each stamp's median.
 *
 *   node -r ./bench/register.cjs bench/tools/agent-stages.ts [--runs=30]
 */
import { ModelGateway } from '../../src/ai/model-gateway';
import { EventWriter } from '../../src/lib/sequenced-event-log';
import { createCanvas, registerUser } from '../../test/support/http';
import { startBulkModel } from '../lib/models';
import { startToolSwitchboard } from '../lib/tool-switchboard';
import { generateStream } from '../lib/sse-client';
import { median } from '../lib/stats';
import { msBetween, now, settle, type Stamp } from '../lib/timing';

const RUNS = Number(process.argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? '30');
const BLOCKS = 200;

let stamps: Record<string, Stamp> = {};
const once = (name: string) => (stamps[name] ??= now());

async function main() {
  const streamTurn = ModelGateway.prototype.streamTurn;
  let turns = 0;
  ModelGateway.prototype.streamTurn = function (this: ModelGateway, request) {
    const turn = ++turns;
    once(`turn ${turn}: streamTurn called`);
    const result = streamTurn.call(this, request);
    void result.finally(() => once(`turn ${turn}: streamTurn returned`)).catch(() => undefined);
    return result;
  };
  const emit = EventWriter.prototype.emit;
  let outputs = 0;
  EventWriter.prototype.emit = function (this: EventWriter<{ type: string }>, event) {
    if (event.type === 'tool_output') {
      outputs += 1;
      if (outputs === 1) once('first tool_output emitted');
      if (outputs === BLOCKS) once('last tool_output emitted');
    }
    if (event.type === 'status' && (event as { stage?: string }).stage === 'persisting') once('persisting emitted');
    return emit.call(this, event);
  };
  const flush = EventWriter.prototype.flush;
  let flushes = 0;
  EventWriter.prototype.flush = function (this: EventWriter<{ type: string }>) {
    const n = ++flushes;
    once(`flush ${n} sent`);
    const done = flush.call(this);
    void done.finally(() => once(`flush ${n} answered`)).catch(() => undefined);
    return done;
  };

  const model = await startBulkModel(BLOCKS);
  const { app, stop } = await startToolSwitchboard('agent-stages', model.endpoint);
  const steps: Record<string, number[]> = {};
  try {
    const owner = await registerUser(app.api, 'Stages');
    const canvasId = await createCanvas(app.api, owner, 'Stages');
    for (let run = 0; run < RUNS + 3; run += 1) {
      await settle(100);
      stamps = {};
      turns = 0;
      outputs = 0;
      flushes = 0;
      const from = model.requestTimes.length;
      const stream = await generateStream(app.api, owner.accessToken, canvasId, `Write ${BLOCKS} paragraphs [run:${run}]`);
      if (run < 3) continue;
      const [request1, request2] = model.requestTimes.slice(from);
      const complete = stream.events.find((e) => e.event === 'complete')!.at;
      const at: Record<string, Stamp> = { ...stamps, 'model request 2': request2, 'complete at the SSE client': complete };
      for (const [name, stamped] of Object.entries(at)) (steps[name] ??= []).push(msBetween(request1, stamped));
    }
  } finally {
    await stop();
    await model.close();
  }
  const rows = Object.entries(steps)
    .filter(([, samples]) => samples.length >= RUNS / 2)
    .map(([name, samples]) => [name, median(samples), samples.length] as const)
    .sort((a, b) => a[1] - b[1]);
  console.log('  from model request 1   stamp');
  for (const [name, at, n] of rows) console.log(`${at.toFixed(2).padStart(9)} ms  ${name}${n < RUNS ? ` (${n} runs)` : ''}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

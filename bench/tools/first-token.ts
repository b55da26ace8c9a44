/**
 * Where the time from the model's first tool call to the `status: tool` SSE event goes: an
 * in-process Switchboard on PGlite in memory with the realistic-stream scenario's stand-in model in
 * a process of its own, one generation at a time after a 100 ms pause, at each of the scenario's
 * sizes. Stamps: the model's first call on the wire, the model response's headers in Switchboard,
 * the agent's `tool` status, the event log's flush of it and that flush's answer from Redis, then
 * the SSE client's read. Prints the median time from the first call to each stamp, per size.
 *
 *   node -r ./bench/register.cjs bench/tools/first-token.ts [--runs=15]
 */
import http from 'node:http';
import { EventWriter } from '../../src/lib/sequenced-event-log';
import { createCanvas, registerUser } from '../../test/support/http';
import { generateStream } from '../lib/sse-client';
import { median } from '../lib/stats';
import { fromWire, msBetween, now, settle, type Stamp } from '../lib/timing';
import { startToolSwitchboard } from '../lib/tool-switchboard';
import { StreamModel } from '../scenarios/realistic-stream';

const RUNS = Number(process.argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? '15');
const SIZES = [18, 91, 200, 364];

let stamps: Record<string, Stamp> = {};

async function main() {
  const emit = EventWriter.prototype.emit;
  EventWriter.prototype.emit = function (this: EventWriter<{ type: string }>, event) {
    if (event.type === 'status' && (event as { stage?: string }).stage === 'tool') stamps.toolStatus ??= now();
    return emit.call(this, event);
  };
  const flush = EventWriter.prototype.flush;
  EventWriter.prototype.flush = function (this: EventWriter<{ type: string }>) {
    const after = stamps.toolStatus !== undefined && stamps.flush === undefined;
    if (after) stamps.flush = now();
    const done = flush.call(this);
    if (after) void done.finally(() => (stamps['flush:done'] ??= now())).catch(() => undefined);
    return done;
  };
  const request = http.request;
  (http as { request: unknown }).request = (...args: unknown[]) => {
    const sent = (request as (...a: unknown[]) => http.ClientRequest)(...args);
    sent.once('response', () => (stamps.modelHeaders ??= now()));
    return sent;
  };

  const model = await StreamModel.start();
  const { app, stop } = await startToolSwitchboard('first-token', model.endpoint);
  try {
    const owner = await registerUser(app.api, 'Stages');
    const canvasId = await createCanvas(app.api, owner, 'Stages');
    for (const size of SIZES) {
      const steps: Record<string, number[]> = {};
      for (let run = 0; run < RUNS + 2; run += 1) {
        await settle(100);
        stamps = {};
        const tag = `s${size}r${run}`;
        const stream = await generateStream(app.api, owner.accessToken, canvasId, `Write ${size} paragraphs [calls:${size}] [run:${tag}]`);
        const turn = await model.turn(tag);
        if (run < 2) continue;
        const first = fromWire(turn.firstCallAt);
        const sse = stream.events.find((e) => e.event === 'status' && (e.data as { stage?: string }).stage === 'tool')?.at;
        const at: Record<string, Stamp | undefined> = { ...stamps, sse };
        for (const [name, stamped] of Object.entries(at)) if (stamped !== undefined) (steps[name] ??= []).push(msBetween(first, stamped));
      }
      const rows = Object.entries(steps)
        .map(([name, samples]) => [name, median(samples), Math.max(...samples)] as const)
        .sort((a, b) => a[1] - b[1]);
      console.log(`${size} calls: median (max) ms from the model's first call`);
      for (const [name, at, max] of rows) console.log(`${at.toFixed(2).padStart(8)} (${max.toFixed(2).padStart(6)})  ${name}`);
    }
  } finally {
    await stop();
    await model.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

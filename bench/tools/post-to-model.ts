/**
 * Where the time from `POST /ai/generate-stream` to the model's request goes, stage by stage: an
 * in-process Switchboard on PGlite in memory with the realistic-stream scenario's stand-in model in
 * a process of its own (as `realisticStream` measures it), one generation at a time after a 100 ms
 * pause, each step's start stamped by wrapping the method that does it. Prints the median of each
 * step's share and of the whole.
 *
 *   node -r ./bench/register.cjs bench/tools/post-to-model.ts [--runs=40]
 */
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { BudgetDoor } from '../../src/runs/budget-door';
import os from 'node:os';
import path from 'node:path';
import { GenerationRunner } from '../../src/generation/generation-runner';
import { GenerationService } from '../../src/generation/generation-service';
import { ModelGateway } from '../../src/ai/model-gateway';
import { GenerationsRepository } from '../../src/models/generations-repository';
import { Queue } from 'bullmq';
import { UsersRepository } from '../../src/models/users-repository';
import { SseStreams } from '../../src/http/sse-streams';
import { createCanvas, registerUser } from '../../test/support/http';
import { startEmbeddedRedis } from '../../src/app/embedded-redis';
import { singleBenchRedis } from '../lib/bench-redis';
import { startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { generateStream } from '../lib/sse-client';
import { median } from '../lib/stats';
import { fromWire, msBetween, now, settle, type Stamp } from '../lib/timing';
import { StreamModel } from '../scenarios/realistic-stream';

const RUNS = Number(process.argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? '40');

/** The stamps of the generation in flight (one at a time). */
let stamps: Record<string, Stamp> = {};

/** Stamps `name` when `method` of `proto` is called and `name:done` when its promise settles. */
function stamp<T extends object>(proto: T, method: keyof T & string, name: string): void {
  const original = proto[method] as unknown as (...args: unknown[]) => Promise<unknown>;
  (proto as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]) {
    stamps[name] ??= now();
    const result = original.apply(this, args);
    void Promise.resolve(result).finally(() => (stamps[`${name}:done`] ??= now()));
    return result;
  };
}

async function main() {
  stamp(UsersRepository.prototype, 'sessionAndCanvasRole', 'session');
  stamp(SseStreams.prototype, 'serve', 'streamCap');
  stamp(GenerationService.prototype, 'start', 'service');
  stamp(GenerationsRepository.prototype, 'createWithRun', 'insert');
  stamp(Queue.prototype, 'add', 'enqueue');
  stamp(GenerationRunner.prototype, 'process', 'worker');
  stamp(GenerationsRepository.prototype, 'start', 'runStart');
  stamp(ModelGateway.prototype, 'streamTurn', 'modelCall');
  stamp(BudgetDoor.prototype, 'forCall', 'budget');
  const request = http.request;
  (http as { request: unknown }).request = (...args: unknown[]) => {
    stamps.httpRequest ??= now();
    return (request as (...a: unknown[]) => http.ClientRequest)(...args);
  };

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'post-to-model-'));
  const server = await startEmbeddedRedis(dataDir);
  const redis = singleBenchRedis(server.url);
  const model = await StreamModel.start();
  const app = await startInProcessSwitchboard({
    redis,
    keyPrefix: uniquePrefix('post-to-model'),
    dataDir,
    endpoint: { baseURL: model.baseURL, apiKey: 'bench', provider: 'scripted', models: ['realistic'] },
  });
  const steps: Record<string, number[]> = {};
  const add = (name: string, ms: number) => (steps[name] ??= []).push(ms);
  try {
    const owner = await registerUser(app.api, 'Stages');
    const canvasId = await createCanvas(app.api, owner, 'Stages');
    for (let run = 0; run < RUNS + 5; run += 1) {
      await settle(100);
      stamps = {};
      const tag = `p${run}`;
      const stream = await generateStream(app.api, owner.accessToken, canvasId, `Write 1 paragraphs [calls:1] [run:${tag}]`);
      const turn = await model.turn(tag);
      if (run < 5) continue;
      const at = { post: stream.startedAt, ...stamps, modelRequest: fromWire(turn.requestAt), headers: stream.headersAt };
      const order = [
        'post',
        'session',
        'session:done',
        'streamCap',
        'service',
        'insert',
        'insert:done',
        'enqueue',
        'enqueue:done',
        'worker',
        'runStart',
        'runStart:done',
        'modelCall',
        'budget',
        'budget:done',
        'httpRequest',
        'modelRequest',
      ];
      for (let i = 1; i < order.length; i += 1) {
        const from = at[order[i - 1] as keyof typeof at];
        const to = at[order[i] as keyof typeof at];
        if (from !== undefined && to !== undefined) add(`${order[i - 1]} → ${order[i]}`, msBetween(from, to));
      }
      add('POST → model request (total)', msBetween(at.post, at.modelRequest));
      add('POST → response headers', msBetween(at.post, at.headers));
    }
  } finally {
    await app.stop();
    await model.stop();
    await server.stop();
  }
  for (const [name, samples] of Object.entries(steps)) console.log(`${median(samples).toFixed(2).padStart(8)} ms  ${name}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

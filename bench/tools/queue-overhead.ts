/**
 * Queue overhead alone: small generations one after another, every role in this
 * process (as `realisticStream` measures it), against a model that stamps when the request arrived
 * and writes one tool call at once. Per generation: POST → SSE headers, POST → the model has the
 * request, the model's first call → `status {stage: tool}` at the SSE client, POST → `complete`,
 * and this process's CPU (API, worker, client and model together; the model and client are the
 * same on both sides of a comparison).
 *
 *   node -r ./bench/register.cjs bench/tools/queue-overhead.ts [--runs=60] [--profile=/tmp/q] [--postgres=<server url>]
 *
 * Also, per generation, the waits on the path from POST to the model's request: every Redis
 * command and PGlite query issued in that window, merged where they overlap. `serialWaits` (the
 * number of merged intervals: round trips one after another) does not depend on the machine's
 * load, unlike the milliseconds; `commands` is how many were issued in all.
 *
 * Run it from two trees alternately to compare a change (the figures are printed as one JSON line
 * with the load average at start and end).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import Redis from 'ioredis';
import { startEmbeddedRedis } from '../../src/app/embedded-redis';
import { PgliteStatements } from '../../src/models/pglite-statements';
import { createTestDatabase } from '../../test/support/database';
import { createCanvas, registerUser } from '../../test/support/http';
import { ownCpuMs, startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { singleBenchRedis } from '../lib/bench-redis';
import { startCpuProfile } from '../lib/profiler';
import { generateStream } from '../lib/sse-client';
import { summarize } from '../lib/stats';
import { msBetween, now, settle, type Stamp } from '../lib/timing';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const RUNS = Number(arg('runs') ?? 60);
const WARMUPS = 10;

/** One tool call per first turn, written the moment the request is in; a text for the second. */
async function startModel() {
  const turns = new Map<string, { requestAt: Stamp; firstCallAt: Stamp }>();
  const server = http.createServer({ noDelay: true }, (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      const requestAt = now();
      const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as {
        model: string;
        messages: Array<{ role: string; content: unknown }>;
      };
      const frame = (choices: unknown[]) =>
        `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: body.model, choices })}\n\n`;
      const delta = (d: Record<string, unknown>, finish: string | null = null) => frame([{ index: 0, delta: d, finish_reason: finish }]);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (body.messages.some((message) => message.role === 'tool')) {
        res.end(delta({ role: 'assistant', content: '' }) + delta({ content: 'Done.' }) + delta({}, 'stop') + 'data: [DONE]\n\n');
        return;
      }
      const prompt = String(body.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '');
      const tag = /\[run:([^\]]+)\]/.exec(prompt)?.[1] ?? 'x';
      const call = {
        index: 0,
        id: 'call_0',
        type: 'function',
        function: { name: 'create_text', arguments: JSON.stringify({ text: 'One paragraph.' }) },
      };
      turns.set(tag, { requestAt, firstCallAt: now() });
      res.end(delta({ role: 'assistant', content: '' }) + delta({ tool_calls: [call] }) + delta({}, 'tool_calls') + 'data: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    turns,
    close: () => new Promise((r) => server.close(r)),
  };
}

const BLOCKING = new Set(['xread', 'xreadgroup', 'bzpopmin', 'bzpopmax', 'blpop', 'brpop', 'brpoplpush', 'blmove']);

/** Every Redis command and PGlite query, with when it was issued and when it settled. */
const waits: Array<{ what: string; from: Stamp; to: Stamp }> = [];
function traceWaits() {
  const track = <T>(what: string, promise: Promise<T>) => {
    const entry = { what, from: now(), to: 0n };
    waits.push(entry);
    const done = () => {
      entry.to = now();
    };
    promise.then(done, done);
    return promise;
  };
  const redis = Redis.prototype as unknown as { sendCommand(command: { name: string; promise: Promise<unknown> }): unknown };
  const send = redis.sendCommand;
  redis.sendCommand = function (this: unknown, command) {
    const result = send.call(this, command);
    // Blocking reads (the stream follower, BullMQ's marker wait) are not waits on the path.
    // A script is named by its first key (`evalsha <sha> <numkeys> <key>`), other commands by their key.
    const args = (command as { args?: unknown[] }).args ?? [];
    const key = String((command.name === 'evalsha' || command.name === 'eval' ? args[2] : args[0]) ?? '')
      .replace(/[0-9a-f-]{36}/g, '<id>')
      .slice(-40);
    if (!BLOCKING.has(command.name)) void track(`redis ${command.name}${key ? ` ${key}` : ''}`, command.promise).catch(() => undefined);
    return result;
  };
  const base = Object.getPrototypeOf(PGlite.prototype) as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const statements = PgliteStatements.prototype as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  // PGlite's own methods, and the kept statements that run most queries past them (0164).
  for (const [target, method] of [
    [base, 'query'],
    [base, 'exec'],
    [base, 'transaction'],
    [statements, 'query'],
  ] as const) {
    const original = target[method];
    target[method] = function (this: unknown, ...args: unknown[]) {
      const sql = typeof args[0] === 'string' ? ` ${args[0].replace(/\s+/g, ' ').slice(0, 48)}` : '';
      return track(`pg ${method}${sql}`, original.apply(this, args));
    };
  }
}

/** Waits issued in [from, to], merged where they overlap: how many came one after another. */
function serialWaits(from: Stamp, to: Stamp) {
  const inside = waits.filter((wait) => wait.from >= from && wait.from <= to).sort((a, b) => (a.from < b.from ? -1 : 1));
  let serial = 0;
  let end = 0n;
  for (const wait of inside) {
    if (wait.from >= end) serial += 1;
    if (wait.to > end) end = wait.to;
  }
  const ms = (stamp: Stamp) => (Number(stamp - from) / 1e6).toFixed(1);
  return { serial, commands: inside.length, names: inside.map((wait) => `${wait.what} ${ms(wait.from)}–${wait.to ? ms(wait.to) : '?'}`) };
}

async function main() {
  traceWaits();
  const loadStart = os.loadavg()[0];
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-qo-'));
  const redis = await startEmbeddedRedis(dataDir);
  const model = await startModel();
  // --postgres=<url>: the PostgreSQL server instead of PGlite in this process (a database of its own).
  const database = arg('postgres') ? await createTestDatabase({ server: arg('postgres') }) : undefined;
  const app = await startInProcessSwitchboard({
    redis: singleBenchRedis(redis.url),
    keyPrefix: uniquePrefix('queue'),
    dataDir,
    endpoint: { baseURL: model.baseURL, apiKey: 'bench', provider: 'scripted', models: ['q'] },
    env: database ? { DATABASE_URL: database.url } : undefined,
  });
  const samples = {
    postToHeaders: [] as number[],
    postToModelRequest: [] as number[],
    firstCallToToolStage: [] as number[],
    postToComplete: [] as number[],
    cpuMs: [] as number[],
    serialWaits: [] as number[],
    commands: [] as number[],
  };
  let names: string[] = [];
  try {
    const owner = await registerUser(app.api, 'Queue');
    const canvasId = await createCanvas(app.api, owner, 'Queue canvas');
    let stopProfile: (() => Promise<string | undefined>) | undefined;
    for (let i = 0; i < WARMUPS + RUNS; i += 1) {
      if (i === WARMUPS) stopProfile = await startCpuProfile(arg('profile'), 'queue-overhead');
      await settle(30);
      const tag = `q${i}`;
      const cpu0 = ownCpuMs();
      const stream = await generateStream(app.api, owner.accessToken, canvasId, `One paragraph [run:${tag}]`);
      const cpu = ownCpuMs() - cpu0;
      if (i < WARMUPS) {
        waits.length = 0;
        continue;
      }
      const turn = model.turns.get(tag)!;
      const toolStage = stream.events.find((event) => event.event === 'status' && event.data.stage === 'tool');
      const complete = stream.events.find((event) => event.event === 'complete')!;
      samples.postToHeaders.push(msBetween(stream.startedAt, stream.headersAt));
      samples.postToModelRequest.push(msBetween(stream.startedAt, turn.requestAt));
      if (toolStage) samples.firstCallToToolStage.push(msBetween(turn.firstCallAt, toolStage.at));
      samples.postToComplete.push(msBetween(stream.startedAt, complete.at));
      samples.cpuMs.push(cpu);
      const path = serialWaits(stream.startedAt, turn.requestAt);
      samples.serialWaits.push(path.serial);
      samples.commands.push(path.commands);
      names = path.names;
      waits.length = 0;
    }
    const file = await stopProfile?.();
    if (file) process.stderr.write(`profile: ${file}\n`);
  } finally {
    await app.stop();
    await database?.drop();
    await model.close();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const out = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, summarize(values)]));
  if (process.argv.includes('--names')) console.error(`waits of the last run, POST → model request: ${names.join(', ')}`);
  console.log(
    JSON.stringify({
      tree: process.cwd(),
      runs: RUNS,
      loadAvg: [loadStart, os.loadavg()[0]].map((v) => Math.round(v * 100) / 100),
      ...out,
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

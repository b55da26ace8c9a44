/**
 * What tracing costs at its seams, off and on. Off (no OTEL endpoint, the SDK never loaded): a
 * `withSpan` seam against calling the work directly, and the HTTP middleware against none. On (the
 * SDK batching OTLP/HTTP JSON to a local receiver that answers 200 and discards the body): a span
 * per call, and a real HTTP request through express with the middleware. Rounds alternate off and
 * on (tracing is stopped and started again between them); CPU is the whole process's, user + system.
 * An "on" measure ends with the flush of every span it made (the batch queue is large enough that
 * none is dropped), so its CPU includes turning the spans into OTLP JSON and sending them.
 *
 *   node -r ./bench/register.cjs bench/tools/tracing-overhead.ts [calls=1000000] [requests=4000] [rounds=3] [spans=10000]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createLogger } from '../../src/lib/logger';
import { httpTracing } from '../../src/http/middleware/tracing';
import { startTracing, withSpan } from '../../src/observability/tracing';

const [calls = 1_000_000, requests = 4_000, rounds = 3, spans = 10_000] = process.argv.slice(2).map(Number);
const logger = createLogger({ level: 'silent' });

async function collector(): Promise<{ endpoint: string; close: () => void }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

async function timed(label: string, count: number, run: () => Promise<void>): Promise<number> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run();
  const wall = (performance.now() - started) * 1e6;
  const used = process.cpuUsage(cpu);
  const cpuNs = ((used.user + used.system) * 1000) / count;
  console.log(`${label.padEnd(44)} ${(wall / count).toFixed(1).padStart(9)} ns wall  ${cpuNs.toFixed(1).padStart(9)} ns CPU per call`);
  return cpuNs;
}

const work = async () => 1;
const attributes = (i: number) => ({ 'messaging.destination.name': 'generation', 'switchboard.job.name': 'generate', n: i });

async function seams(): Promise<void> {
  await timed('off: direct call', calls, async () => {
    for (let i = 0; i < calls; i++) await work();
  });
  await timed('off: withSpan seam', calls, async () => {
    for (let i = 0; i < calls; i++) await withSpan('process generation', 'consumer', attributes(i), work);
  });
  const middleware = httpTracing();
  const req = { method: 'GET', originalUrl: '/x', headers: {} } as never;
  const res = { once: () => undefined, locals: {} } as never;
  let nexts = 0;
  const next = () => void nexts++;
  await timed('off: next() alone', calls, async () => {
    for (let i = 0; i < calls; i++) next();
  });
  await timed('off: tracing middleware, then next()', calls, async () => {
    for (let i = 0; i < calls; i++) middleware(req, res, next);
  });
}

/** Spans made and exported: the loop, then the flush of everything it made. */
async function spansOn(env: Record<string, string>): Promise<void> {
  const stop = (await startTracing(env, logger, { roles: ['api'], version: 'bench' }))!;
  await timed('on: withSpan seam, span sent', spans, async () => {
    for (let i = 0; i < spans; i++) await withSpan('process generation', 'consumer', attributes(i), work);
    await stop();
  });
}

async function httpRequests(mode: 'off' | 'on', url: string, env: Record<string, string>): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise<void>((resolve, reject) =>
      http.get(`${url}/api/v1/things/42`, { agent }, (res) => (res.resume(), res.on('end', resolve))).on('error', reject),
    );
  for (let i = 0; i < 200; i++) await get();
  const stop = mode === 'on' ? await startTracing(env, logger, { roles: ['api'], version: 'bench' }) : undefined;
  const cpu = await timed(`${mode}: HTTP request through express${mode === 'on' ? ', span sent' : ''}`, requests, async () => {
    for (let i = 0; i < requests; i++) await get();
    await stop?.();
  });
  agent.destroy();
  return cpu;
}

async function main(): Promise<void> {
  const sink = await collector();
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: '200',
    OTEL_BSP_MAX_QUEUE_SIZE: String(Math.max(spans, requests) * 2),
  };
  Object.assign(process.env, env);
  const app = express();
  app.use(httpTracing());
  app.get('/api/v1/things/:id', (req, res) => void res.json({ id: req.params.id }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  console.log(`node ${process.version}, ${calls} calls off, ${spans} spans on, ${requests} requests, ${rounds} rounds`);
  const http = { off: [] as number[], on: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    await seams();
    await spansOn(env);
    http.off.push(await httpRequests('off', url, env));
    http.on.push(await httpRequests('on', url, env));
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  console.log(`HTTP request CPU, median: off ${(median(http.off) / 1000).toFixed(1)} µs, on ${(median(http.on) / 1000).toFixed(1)} µs`);
  server.close();
  sink.close();
}

void main();

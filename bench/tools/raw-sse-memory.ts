/**
 * What one open Server-Sent Events response costs a bare Node.js HTTP server, with no Switchboard in
 * it: the floor under the benchmark's "memory per open SSE stream". A client process opens N
 * keep-alive event streams; the server holds every response open; the server's RSS after GC, before
 * and after, divided by N. Run it on each Node version to see how much of that target is the runtime's.
 *
 * Also split per stream: V8 heap in use, RSS outside the V8 heap (Node's C++ objects: on Node 24 the
 * HTTP parser each connection keeps, ~10 KB of malloc against ~1.9 KB on Node 20, by heaptrack), and
 * the growth of V8's young generation, a buffer of the process (up to 64 MiB on Node 24, 32 MiB on
 * Node 20) that a forced GC need not shrink: a fixed cost that the division spreads over the streams.
 * Add `--max-semi-space-size=1` to see the figure without it.
 *
 *   node --expose-gc -r ./bench/register.cjs bench/tools/raw-sse-memory.ts [streams=5000]
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';

const streams = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 5_000);

interface Reading {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  youngGeneration: number;
}

async function settledMemory(): Promise<Reading> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  await sleep(200);
  gc();
  const { rss, heapUsed, heapTotal } = process.memoryUsage();
  const young = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
  return { rss, heapUsed, heapTotal, youngGeneration: young?.space_size ?? 0 };
}

function runClient(port: number, count: number): void {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  let open = 0;
  for (let i = 0; i < count; i++) {
    http.get({ port, path: '/stream', agent, headers: { accept: 'text/event-stream' } }, (res) => {
      res.resume();
      if (++open === count) process.send?.('open');
    });
  }
}

async function runServer(): Promise<void> {
  const held: http.ServerResponse[] = [];
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': open\n\n');
    held.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const before = await settledMemory();
  const { port } = server.address() as { port: number };
  const client = fork(__filename, ['client', String(port), String(streams)], { execArgv: process.execArgv });
  await new Promise((resolve) => client.once('message', resolve));
  await sleep(500);
  const after = await settledMemory();
  const each = (key: keyof Reading) => Math.round((after[key] - before[key]) / held.length);
  const young = after.youngGeneration - before.youngGeneration;
  console.log(
    `${process.version}: ${held.length} bare SSE streams, ${each('rss')} B each (server RSS after GC): ` +
      `V8 heap in use ${each('heapUsed')} B, outside the V8 heap ${each('rss') - each('heapTotal')} B; ` +
      `the young generation grew ${(young / 2 ** 20).toFixed(1)} MiB (${Math.round(young / held.length)} B a stream), ` +
      `${each('rss') - Math.round(young / held.length)} B each without it`,
  );
  client.kill();
  server.closeAllConnections();
  server.close();
}

if (process.argv[2] === 'client') runClient(Number(process.argv[3]), Number(process.argv[4]));
else
  runServer().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });

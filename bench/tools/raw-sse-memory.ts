/**
 * What one open Server-Sent Events response costs a bare Node.js HTTP server, with no Switchboard in
 * it: the floor under the benchmark's "memory per open SSE stream". A client process opens N
 * keep-alive event streams; the server holds every response open; the server's RSS after GC, before
 * and after, divided by N. Run it on each Node version to see how much of that target is the runtime's.
 *
 *   node --expose-gc -r ./bench/register.cjs bench/tools/raw-sse-memory.ts [streams=5000]
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

const streams = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 5_000);

async function settledRss(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  await sleep(200);
  gc();
  return process.memoryUsage().rss;
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
  const before = await settledRss();
  const { port } = server.address() as { port: number };
  const client = fork(__filename, ['client', String(port), String(streams)], { execArgv: process.execArgv });
  await new Promise((resolve) => client.once('message', resolve));
  await sleep(500);
  const after = await settledRss();
  console.log(
    `${process.version}: ${held.length} bare SSE streams, ${Math.round((after - before) / held.length)} B each (server RSS after GC)`,
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

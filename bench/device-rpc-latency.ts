/**
 * Device RPC round trip: `node -r ./bench/register.cjs bench/device-rpc-latency.ts [calls]` (default 200).
 *
 * Starts its own redis-server (or uses REDIS_URL), an api node with `/device` and a worker node
 * without HTTP, connects a simulated device to the api node, and times sequential `select` calls
 * issued on the api node (same node as the socket) and on the worker node (across nodes). Every
 * call still crosses Redis once: the adapter asks every node how many sockets are in the room.
 */
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedRedis } from '../src/app/embedded-redis';
import type { DevicePort } from '../src/devices/device-channel';
import { startDeviceFixture } from '../test/support/device-fixture';

const calls = Number(process.argv[2] ?? 200);

async function time(rpc: DevicePort, userId: string, count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await rpc.callDevice(userId, 'bench-laptop', { action: 'select', table: 'tasks', filters: { status: 'todo' }, limit: 10 });
    samples.push(performance.now() - started);
  }
  return samples.sort((a, b) => a - b);
}

const at = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const row = (label: string, sorted: number[]) =>
  `${label.padEnd(28)} p50 ${at(sorted, 0.5).toFixed(2).padStart(6)} ms   p95 ${at(sorted, 0.95).toFixed(2).padStart(6)} ms   p99 ${at(
    sorted,
    0.99,
  )
    .toFixed(2)
    .padStart(6)} ms   max ${sorted.at(-1)!.toFixed(2).padStart(6)} ms`;

async function main() {
  const redis = process.env.REDIS_URL ? undefined : await startEmbeddedRedis(path.join(os.tmpdir(), 'switchboard-bench-redis'));
  process.env.TEST_REDIS_URL = process.env.REDIS_URL ?? redis!.url;
  const fixture = await startDeviceFixture({ rpcTimeoutMs: 5_000 });
  try {
    const user = await fixture.newUser('Bench');
    await fixture.connect(user, 'bench-laptop', {
      seed: { tasks: Array.from({ length: 20 }, (_, i) => ({ title: `Task ${i}`, status: i % 2 ? 'todo' : 'done', priority: 'medium' })) },
    });
    await time(fixture.api.rpc, user.id, 20); // warm up both paths
    await time(fixture.worker.rpc, user.id, 20);
    const sameNode = await time(fixture.api.rpc, user.id, calls);
    const crossNode = await time(fixture.worker.rpc, user.id, calls);
    process.stdout.write(`device RPC round trip, ${calls} sequential select calls each (10 rows back)\n`);
    process.stdout.write(`${row('same node (api → its socket)', sameNode)}\n${row('cross node (worker → api)', crossNode)}\n`);
  } finally {
    await fixture.stop();
    await redis?.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

/**
 * Minimal reproduction of the Socket.IO 4.8 + @socket.io/redis-streams-adapter 0.3 recovery race
 * (ADR 0060), with no Switchboard code: a bare Socket.IO server with connection state recovery on
 * the Redis streams adapter, a second adapter-only server (as a worker would be) broadcasting
 * numbered packets to one room, and clients whose transports are cut at random. A recovered
 * reconnect must have every packet; the script counts those that did not.
 *
 *   node -r ./bench/register.cjs bench/tools/recovery-race.ts [--clients 40] [--seconds 30] [--redis redis://127.0.0.1:6379]
 *
 * Prints one JSON line: recovered reconnects, how many of them lost packets, packets lost, and a
 * few samples (last packet before the cut, first after, the missing ones).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { io as connect, type Socket } from 'socket.io-client';

const arg = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const CLIENTS = Number(arg('clients', '40'));
const SECONDS = Number(arg('seconds', '30'));
const REDIS_URL = arg('redis', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const EMIT_EVERY_MS = 5;
const CUT_EVERY_MS = 50;

interface Reconnect {
  recovered: boolean;
  /** The last packet seen before the cut. */
  lastBefore: number;
  /** The first packet seen after reconnecting (replayed or live). */
  firstAfter?: number;
}

async function main() {
  const streamName = `race-${randomUUID().slice(0, 8)}`;
  const redisA = new Redis(REDIS_URL);
  const redisB = new Redis(REDIS_URL);
  const adapterOptions = { streamName, maxLen: 100_000 };

  // Server A: holds the clients, recovery on (2 minutes), joins each new session to the room.
  const http = createServer();
  const serverA = new Server(http, {
    adapter: createAdapter(redisA, adapterOptions),
    connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: true },
  });
  serverA.on('connection', (socket) => {
    if (!socket.recovered) void socket.join('room');
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  // Server B: no HTTP, no clients; broadcasts through the adapter (like a worker process).
  const serverB = new Server({ adapter: createAdapter(redisB, adapterOptions) });

  const clients = Array.from({ length: CLIENTS }, () => {
    const socket: Socket = connect(url, { transports: ['websocket'], forceNew: true, reconnectionDelay: 20, reconnectionDelayMax: 200 });
    const state = { socket, seen: new Set<number>(), last: 0, reconnects: [] as Reconnect[], pending: undefined as Reconnect | undefined };
    socket.on('n', (n: number) => {
      state.seen.add(n);
      if (state.pending && state.pending.firstAfter === undefined) state.pending.firstAfter = n;
      state.last = Math.max(state.last, n);
    });
    socket.on('disconnect', () => {
      state.pending = { recovered: false, lastBefore: state.last };
    });
    socket.on('connect', () => {
      if (!state.pending) return;
      state.pending.recovered = socket.recovered;
      state.reconnects.push(state.pending);
    });
    return state;
  });
  await Promise.all(
    clients.map((c) =>
      c.socket.connected ? Promise.resolve() : new Promise<void>((resolve) => c.socket.once('connect', () => resolve())),
    ),
  );
  // Let every session join (and the first packets flow) before counting.
  await new Promise((resolve) => setTimeout(resolve, 500));

  let n = 0;
  const emitter = setInterval(() => serverB.to('room').emit('n', ++n), EMIT_EVERY_MS);
  const chaos = setInterval(() => {
    const victim = clients[Math.floor(Math.random() * clients.length)].socket;
    if (victim.connected) victim.io.engine.close();
  }, CUT_EVERY_MS);
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  clearInterval(chaos);
  // Every client back and every packet delivered before counting.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !clients.every((c) => c.socket.connected)) await new Promise((resolve) => setTimeout(resolve, 50));
  clearInterval(emitter);
  await new Promise((resolve) => setTimeout(resolve, 1_000));

  let recovered = 0;
  let recoveredWithLoss = 0;
  let notRecovered = 0;
  let packetsLost = 0;
  const samples: Array<{ lastBefore: number; firstAfter?: number; missing: number[] }> = [];
  for (const client of clients) {
    const first = Math.min(...client.seen);
    client.reconnects.forEach((reconnect, index) => {
      if (!reconnect.recovered) return void (notRecovered += 1);
      recovered += 1;
      // What a recovered session must have: every packet after the last one seen before the cut,
      // up to the last one seen before the next cut (or the end): each loss is counted once.
      const upTo = client.reconnects[index + 1]?.lastBefore ?? client.last;
      let lost = 0;
      for (let k = Math.max(first, reconnect.lastBefore + 1); k <= upTo; k += 1) if (!client.seen.has(k)) lost += 1;
      if (lost > 0 && samples.length < 5)
        samples.push({
          lastBefore: reconnect.lastBefore,
          firstAfter: reconnect.firstAfter,
          missing: [...Array(upTo - reconnect.lastBefore).keys()]
            .map((i) => reconnect.lastBefore + 1 + i)
            .filter((k) => !client.seen.has(k)),
        });
      if (lost > 0) recoveredWithLoss += 1;
      packetsLost += lost;
    });
  }
  console.log(
    JSON.stringify({
      clients: CLIENTS,
      seconds: SECONDS,
      packetsEmitted: n,
      recovered,
      recoveredWithLoss,
      packetsLost,
      notRecovered,
      samples,
    }),
  );

  clients.forEach((c) => c.socket.close());
  await new Promise<void>((resolve) => void serverA.close(() => resolve()));
  await serverB.of('/').adapter.close();
  redisA.disconnect();
  redisB.disconnect();
  process.exit(0);
}

void main();

import type { Server as HttpServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import type { Redis } from 'ioredis';
import { Server, type Namespace } from 'socket.io';

/** The Redis connections the adapter duplicated for its blocking reads, per server, closed with it. */
const adapterConnections = new WeakMap<Server, Redis[]>();

/** How long a dropped client may be away and still receive what it missed on reconnect. */
export const RECOVERY_WINDOW_MS = 2 * 60_000;

/**
 * A Socket.IO server on the Redis Streams adapter: rooms span every node, a worker can emit into
 * them without serving HTTP (it creates this server without an HTTP server), acknowledgements work
 * across nodes, and connection state recovery replays missed packets from the stream.
 *
 * `redis` must be a connection that queues while reconnecting (the adapter polls with XREAD).
 */
export function createSocketServer(options: { redis: Redis; keyPrefix: string; httpServer?: HttpServer }): Server {
  // The adapter duplicates its client for XREAD polling and never closes those copies itself
  // (they would reconnect forever after Redis goes away); record them so closeSocketServer can.
  const copies: Redis[] = [];
  const client = Object.create(options.redis) as Redis;
  client.duplicate = (...args: Parameters<Redis['duplicate']>) => {
    const copy = options.redis.duplicate(...args);
    copies.push(copy);
    return copy;
  };
  const adapter = createAdapter(client, {
    streamName: `${options.keyPrefix}:socket.io`,
    channelPrefix: `${options.keyPrefix}:socket.io`,
    sessionKeyPrefix: `${options.keyPrefix}:sio:session:`,
    maxLen: 50_000,
    onlyPlaintext: true,
  });
  const serverOptions = {
    adapter,
    serveClient: false,
    maxHttpBufferSize: 1e6,
    // Devices are desktop apps on flaky networks: ping every 30 s, give up after 10 s of silence.
    pingInterval: 30_000,
    pingTimeout: 10_000,
    // Middlewares run on recovery too: a restored connection is authenticated like a new one (0066).
    connectionStateRecovery: { maxDisconnectionDuration: RECOVERY_WINDOW_MS, skipMiddlewares: false },
  };
  const io = options.httpServer ? new Server(options.httpServer, serverOptions) : new Server(serverOptions);
  adapterConnections.set(io, copies);
  return io;
}

/**
 * Closes a Socket.IO server and the adapter's connections. `io.close()` assumes an attached engine,
 * which a worker's emit-only server does not have; there, disconnecting sockets and closing the
 * adapters is the whole job.
 */
export async function closeSocketServer(io: Server): Promise<void> {
  if (io.engine) {
    await new Promise<void>((resolve) => void io.close(() => resolve()));
  } else {
    for (const nsp of (io as unknown as { _nsps: Map<string, Namespace> })._nsps.values()) {
      // local: only this node's sockets (a worker has none); a plain disconnectSockets would go
      // through the adapter and drop every client on every API node.
      nsp.local.disconnectSockets(true);
      await nsp.adapter.close();
    }
  }
  for (const copy of adapterConnections.get(io) ?? []) copy.disconnect();
}

import type { Server as HttpServer } from 'node:http';
import type { RedisClient } from '../lib/redis';
import { Server, type Namespace } from 'socket.io';
import { createLogger, type Logger } from '../lib/logger';
import { redisKeys } from '../lib/redis-keys';
import { RedisStreamsAdapter, RedisStreamsCluster, type RoomBroadcastRecord } from './redis-streams-adapter';
import { socketParser } from './socket-parser';

export type { RoomBroadcastRecord } from './redis-streams-adapter';

/** The adapter connections and namespaces of each server, closed with it. */
const clusters = new WeakMap<Server, RedisStreamsCluster>();

/** How long a dropped client may be away and still receive what it missed on reconnect. */
export const RECOVERY_WINDOW_MS = 2 * 60_000;

/** The adapter stream's approximate length bound. */
export const STREAM_MAX_LEN = 50_000;

/**
 * A Socket.IO server on our Redis Streams adapter (redis-streams-adapter.ts): rooms span every
 * node, a worker can emit into them without serving HTTP (it creates this server without an HTTP
 * server, and then does not read the adapter's stream), acknowledgements work across nodes, and
 * connection state recovery replays missed packets from the stream.
 *
 * `redis` must be a connection that queues while reconnecting: the adapter duplicates it for its
 * blocking stream reads and its subscriptions, and publishes through it.
 */
export function createSocketServer(options: {
  redis: RedisClient;
  keyPrefix: string;
  httpServer?: HttpServer;
  corsOrigins?: readonly string[];
  logger?: Logger;
  /** Called with the number of records of each read of the adapter's stream that returned some. */
  onStreamRead?: (records: number) => void;
}): Server {
  const cluster = new RedisStreamsCluster(options.redis, {
    keys: redisKeys(options.keyPrefix),
    maxLen: STREAM_MAX_LEN,
    recoveryWindowMs: RECOVERY_WINDOW_MS,
    // An emit-only server holds no sockets: nothing on the stream is for it.
    readStream: Boolean(options.httpServer),
    // Without the process's logger, failures still reach the log (stdout), never nowhere.
    logger: options.logger?.child({ component: 'socket-adapter' }) ?? createLogger({ level: 'info', name: 'socket-adapter' }),
    onRead: options.onStreamRead,
  });
  const serverOptions = {
    // Socket.IO calls it with `new`: a function, not an arrow, returning the namespace's adapter.
    adapter: function adapterFor(nsp: Namespace) {
      return cluster.adapterFor(nsp);
    },
    serveClient: false,
    // Room events read from the adapter's stream are sent as the JSON they were stored as.
    parser: socketParser,
    maxHttpBufferSize: 1e6,
    // Devices are desktop apps on flaky networks: ping every 30 s, give up after 10 s of silence.
    pingInterval: 30_000,
    pingTimeout: 10_000,
    // Middlewares run on recovery too: a restored connection is authenticated like a new one.
    connectionStateRecovery: { maxDisconnectionDuration: RECOVERY_WINDOW_MS, skipMiddlewares: false },
    // The API's browser origins (CORS_ORIGINS) may use the HTTP long-polling transport too; the
    // handshake's token, not the origin, is what admits a socket.
    ...(options.corsOrigins?.length ? { cors: { origin: [...options.corsOrigins], methods: ['GET', 'POST'] } } : {}),
  };
  const io = options.httpServer ? new Server(options.httpServer, serverOptions) : new Server(serverOptions);
  clusters.set(io, cluster);
  return io;
}

/**
 * How to add room events of `nsp` straight to the adapter's stream from a Lua script (decision
 * 0158; the record's format is the adapter's, which is ours). Every node delivers such a record,
 * the writer's included, in stream order. Throws at start-up when `nsp` is not on our adapter.
 */
export function roomBroadcasts(io: Server, nsp: Namespace): (room: string) => RoomBroadcastRecord {
  const adapter = nsp.adapter;
  if (!clusters.has(io) || !(adapter instanceof RedisStreamsAdapter))
    throw new Error(`socket server: the ${nsp.name} namespace is not on the Redis Streams adapter this module sets up`);
  return (room) => adapter.roomRecord(room);
}

/**
 * The first step of a stop on an API node: closes this node's client connections (websocket and
 * long-polling alike), so they no longer hold the HTTP server open while work drains. The server
 * and its adapter stay: a worker finishing a job still emits to rooms, which other nodes deliver,
 * and the clients reconnect elsewhere and catch up by cursor.
 */
export function disconnectClients(io: Server): void {
  io.engine?.close();
}

/**
 * Closes a Socket.IO server and the adapter's connections. `io.close()` assumes an attached engine,
 * which a worker's emit-only server does not have; there, disconnecting sockets and closing the
 * adapters is the whole job.
 */
export async function closeSocketServer(io: Server): Promise<void> {
  const cluster = clusters.get(io);
  if (io.engine) {
    await new Promise<void>((resolve) => void io.close(() => resolve()));
  } else {
    for (const nsp of cluster?.namespaces() ?? []) {
      // local: only this node's sockets (a worker has none); a plain disconnectSockets would go
      // through the adapter and drop every client on every API node.
      nsp.local.disconnectSockets(true);
      await nsp.adapter.close();
    }
  }
  cluster?.close();
}

import type { Server as HttpServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import type { Redis } from 'ioredis';
import { Server } from 'socket.io';

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
  const adapter = createAdapter(options.redis, {
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
    pingInterval: 25_000,
    pingTimeout: 20_000,
    connectionStateRecovery: { maxDisconnectionDuration: RECOVERY_WINDOW_MS, skipMiddlewares: true },
  };
  return options.httpServer ? new Server(options.httpServer, serverOptions) : new Server(serverOptions);
}

import type { Server as HttpServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import type { Redis } from 'ioredis';
import { Server, type Namespace } from 'socket.io';

/** The Redis connections the adapter duplicated for its blocking reads, per server, closed with it. */
const adapterConnections = new WeakMap<Server, Redis[]>();
/** The adapter's stream and its length bound, per server. */
const adapterStreams = new WeakMap<Server, { key: string; maxLen: number }>();

/** Message and packet types of the adapter's records (socket.io-adapter `MessageType.BROADCAST`, socket.io-parser `PacketType.EVENT`). */
const BROADCAST_MESSAGE = 3;
const EVENT_PACKET = 2;
/**
 * Any id but a node's own: the adapter skips the records its node wrote (that node delivered
 * them itself), so a record under this id is delivered by every node, the writer included.
 */
const EVERY_NODE = 'room-broadcast';

/** How long a dropped client may be away and still receive what it missed on reconnect. */
export const RECOVERY_WINDOW_MS = 2 * 60_000;

/**
 * A Socket.IO server on the Redis Streams adapter: rooms span every node, a worker can emit into
 * them without serving HTTP (it creates this server without an HTTP server), acknowledgements work
 * across nodes, and connection state recovery replays missed packets from the stream.
 *
 * `redis` must be a connection that queues while reconnecting (the adapter polls with XREAD).
 */
export function createSocketServer(options: {
  redis: Redis;
  keyPrefix: string;
  httpServer?: HttpServer;
  corsOrigins?: readonly string[];
}): Server {
  // The adapter duplicates its client for XREAD polling and never closes those copies itself
  // (they would reconnect forever after Redis goes away); record them so closeSocketServer can.
  // An emit-only server (a worker) holds no sockets, so nothing on the adapter's stream is for it:
  // every record there is a broadcast, a join, a leave or a disconnect of sockets. Its polling copy
  // would still read, and JSON-parse, every room event of every canvas; it waits instead. What a
  // worker does need arrives by pub/sub: acknowledgements of `emitWithAck`, `serverSideEmit` and
  // `fetchSockets` answers (0158).
  const copies: Redis[] = [];
  const client = Object.create(options.redis) as Redis;
  client.duplicate = (...args: Parameters<Redis['duplicate']>) => {
    const copy = options.redis.duplicate(...args);
    copies.push(copy);
    if (!options.httpServer) copy.xread = () => new Promise<null>(() => undefined);
    return copy;
  };
  const stream = { key: `${options.keyPrefix}:socket.io`, maxLen: 50_000 };
  const adapter = createAdapter(client, {
    streamName: stream.key,
    channelPrefix: `${options.keyPrefix}:socket.io`,
    sessionKeyPrefix: `${options.keyPrefix}:sio:session:`,
    maxLen: stream.maxLen,
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
    // The API's browser origins (CORS_ORIGINS) may use the HTTP long-polling transport too; the
    // handshake's token, not the origin, is what admits a socket (decision 0173).
    ...(options.corsOrigins?.length ? { cors: { origin: [...options.corsOrigins], methods: ['GET', 'POST'] } } : {}),
  };
  const io = options.httpServer ? new Server(options.httpServer, serverOptions) : new Server(serverOptions);
  adapterConnections.set(io, copies);
  adapterStreams.set(io, stream);
  return io;
}

/**
 * The adapter's record of `emit(event, payload)` to one room of `nsp`, as its own `encode` writes
 * it, with `data` split around the payload: a Lua script can then add that record to `stream` in
 * the same call that completes the payload (canvas-log.ts adds the seq). Fields are in `XADD`
 * order. Every node delivers it, the writer's included, in stream order.
 */
export interface RoomBroadcastRecord {
  stream: string;
  maxLen: number;
  /** `uid`, `nsp`, `type` and `data` as the adapter names them, `data` without the payload. */
  fields: { uid: string; nsp: string; type: string; dataPrefix: string; dataSuffix: string };
}

/**
 * How to write room broadcasts of `nsp` straight to the adapter's stream (decision 0158). Throws
 * at start-up when the adapter is not the Redis Streams adapter this module set up, or encodes
 * broadcasts in another shape, rather than sending records no node would read.
 */
export function roomBroadcasts(io: Server, nsp: Namespace): (room: string, event: string) => RoomBroadcastRecord {
  const stream = adapterStreams.get(io);
  const adapter = nsp.adapter as unknown as { encode?: (message: unknown) => Record<string, string> };
  const marks = { event: '\u0001event', room: '\u0001room', payload: '\u0001payload' };
  const record =
    stream && typeof adapter.encode === 'function'
      ? adapter.encode({
          uid: EVERY_NODE,
          nsp: nsp.name,
          type: BROADCAST_MESSAGE,
          data: {
            packet: { type: EVENT_PACKET, data: [marks.event, marks.payload] },
            opts: { rooms: [marks.room], except: [], flags: {} },
          },
        })
      : undefined;
  const [template, ...rest] = (record?.data ?? '').split(JSON.stringify(marks.payload));
  const shaped =
    record &&
    Object.keys(record).join() === 'uid,nsp,type,data' &&
    rest.length === 1 &&
    template.includes(JSON.stringify(marks.event)) &&
    rest[0].includes(JSON.stringify(marks.room));
  if (!stream || !record || !shaped)
    throw new Error(`socket server: the ${nsp.name} adapter does not write broadcasts as Redis stream records this server can add to`);
  const [prefix, suffix] = [template, rest[0]];
  return (room, event) => ({
    stream: stream.key,
    maxLen: stream.maxLen,
    fields: {
      uid: record.uid,
      nsp: record.nsp,
      type: record.type,
      dataPrefix: prefix.replace(JSON.stringify(marks.event), () => JSON.stringify(event)),
      dataSuffix: suffix.replace(JSON.stringify(marks.room), () => JSON.stringify(room)),
    },
  });
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

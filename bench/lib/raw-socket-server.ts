import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';

export const RAW_ROOM = 'room';

/** A bare Socket.IO server (in-memory adapter, no auth, no recovery): what fan-out costs at least. */
export interface RawSocketServer {
  /** Namespace URL for the fleet. */
  url: string;
  io: Server;
  /** `io.of('/canvas').to(room).emit(event, payload)` for each payload, in one synchronous loop. */
  emitAll(event: string, payloads: unknown[]): void;
  close(): Promise<void>;
}

export async function startRawSocketServer(): Promise<RawSocketServer> {
  const httpServer = http.createServer();
  const io = new Server(httpServer, { serveClient: false });
  const nsp = io.of('/canvas');
  nsp.on('connection', (socket) => void socket.join(RAW_ROOM));
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve()));
  const { port } = httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/canvas`,
    io,
    emitAll: (event, payloads) => {
      for (const payload of payloads) nsp.to(RAW_ROOM).emit(event, payload);
    },
    close: () => new Promise<void>((resolve) => void io.close(() => resolve())),
  };
}

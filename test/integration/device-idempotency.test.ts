import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { MemoryStore } from '@switchboard/client/testing';

/**
 * The SDK's device helper dedupes writes by `idempotencyKey` (decision 0078): a `tool_call` repeated
 * because the server re-ran a turn is answered from memory, re-addressed to the new call id.
 */
describe('the SDK device helper and idempotency keys', () => {
  let io: Server;
  let url: string;
  let socket: Socket | undefined;
  let device: DeviceConnection | undefined;

  beforeAll(async () => {
    const httpServer = http.createServer();
    io = new Server(httpServer);
    io.of('/device').on('connection', (s) => {
      socket = s;
      s.on('device_hello', (_payload, ack) => ack({ ok: true }));
    });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    device?.close();
    await new Promise<void>((resolve) => void io.close(() => resolve()));
  });

  test('a repeated insert with the same key runs once; another key, or a read, runs again', async () => {
    const store = new MemoryStore();
    device = await connectDevice({ url, token: 'any', deviceId: 'desk-idem', store, reconnection: false });
    const call = (payload: object) => socket!.timeout(5_000).emitWithAck('tool_call', payload) as Promise<Record<string, any>>;
    const insert = { action: 'insert', table: 'tasks', data: { title: 'Buy oat milk' } };

    const first = await call({ id: 'c-1', idempotencyKey: 'turn-1:0.0:1', ...insert });
    const repeated = await call({ id: 'c-2', idempotencyKey: 'turn-1:0.0:1', ...insert });
    expect(repeated).toEqual({ ...first, id: 'c-2' });
    expect(store.rows('tasks')).toHaveLength(1);

    await call({ id: 'c-3', idempotencyKey: 'turn-2:0.0:1', ...insert });
    await call({ id: 'c-4', ...insert });
    expect(store.rows('tasks')).toHaveLength(3);
    const read = await call({ id: 'c-5', idempotencyKey: 'turn-1:0.0:1', action: 'select', table: 'tasks' });
    expect(read.rows).toHaveLength(3);
  });
});

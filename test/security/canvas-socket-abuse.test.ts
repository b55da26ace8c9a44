import { io, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { addMember, createCanvas, registerUser, type TestUser } from '../support/http';
import { connectCanvas, join, record, waitFor, type CanvasClient } from '../support/sockets';
import { eventually } from '../support/wait';

/**
 * Abuse limits on `/canvas`, black box (real server, real sockets, two users): a join flood
 * is refused per socket before any work; a cursor flood is cut down per socket and never enters the
 * adapter's stream (everyone's recovery history); one user holds at most MAX_SOCKETS_PER_USER
 * sockets over `/canvas` and `/device` together.
 */
describe('canvas socket abuse', () => {
  let t: TestApp;
  let redis: RedisClient;
  const opened: Socket[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    redis = createRedis(testRedisTarget('realtime'), 'command');
    await redisReady(redis);
  }, 120_000);

  afterAll(async () => {
    opened.forEach((socket) => socket.close());
    redis.disconnect();
    await t.stop();
  });

  const open = async (user: TestUser): Promise<CanvasClient> => {
    const socket = await connectCanvas(t.url, user.accessToken);
    opened.push(socket);
    return socket;
  };

  /** A room with an attacker (editor) and a watching second user. */
  async function givenRoom() {
    const owner = await registerUser(t.api, 'Watcher');
    const attacker = await registerUser(t.api, 'Flooder');
    const canvasId = await createCanvas(t.api, owner, 'Abused');
    await addMember(t.api, owner, canvasId, attacker, 'editor');
    const watcher = await open(owner);
    expect(await join(watcher, canvasId)).toMatchObject({ ok: true });
    return { owner, attacker, canvasId, watcher };
  }

  test('1,000 canvas:join at once from one socket: the excess is refused with rate_limited and does no work (no presence broadcast)', async () => {
    const room = await givenRoom();
    const flooder = await open(room.attacker);
    const presence = record(room.watcher, 'presence');

    const acks = await Promise.all(Array.from({ length: 1_000 }, () => flooder.timeout(30_000).emitWithAck('canvas:join', room.canvasId)));
    const joined = acks.filter((ack) => ack.ok).length;
    const refused = acks.filter((ack) => !ack.ok && ack.error.code === 'rate_limited').length;
    // The joins that did work announce presence (one at a time per canvas, coalesced): wait for the
    // list that includes the flooder, then count.
    await eventually(
      async () => presence.at(-1)?.users.length,
      (n) => n === 2,
      10_000,
    );

    expect(joined + refused).toBe(1_000);
    expect(refused).toBeGreaterThan(900);
    expect(joined).toBeGreaterThanOrEqual(1);
    expect(presence.length).toBeLessThanOrEqual(joined + 1);
    expect(flooder.connected).toBe(true);
    // The refusal is per socket: another socket of the same user joins at once.
    expect(await join(await open(room.attacker), room.canvasId)).toMatchObject({ ok: true });
  }, 60_000);

  test('3,000 canvas:cursor from one socket: few are relayed, none enters the adapter stream, cursors still reach the room', async () => {
    const room = await givenRoom();
    const flooder = await open(room.attacker);
    expect(await join(flooder, room.canvasId)).toMatchObject({ ok: true });
    const cursors = record(room.watcher, 'cursor');
    const stream = `${t.keyPrefix}:socket.io`;
    const first = waitFor(room.watcher, 'cursor', (p) => p.userId === room.attacker.id);
    const [before] = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;

    for (let i = 0; i < 3_000; i += 1) flooder.emit('canvas:cursor', { canvasId: room.canvasId, x: i, y: i });
    // One socket's events are handled in order: once this ack is back, every cursor was handled.
    await flooder.timeout(30_000).emitWithAck('canvas:sync', { canvasId: room.canvasId, afterSeq: 0 });
    await first;

    // Presence of the flooder's join may enter the stream (it is a room event); no cursor does.
    const added = (await redis.xrange(stream, `(${before[0]}`, '+')) as Array<[string, string[]]>;
    expect(added.filter(([, fields]) => fields.join('\n').includes('cursor'))).toEqual([]);
    expect(cursors.length).toBeGreaterThanOrEqual(1);
    expect(cursors.length).toBeLessThan(300);
    expect(cursors.every((c) => c.userId === room.attacker.id)).toBe(true);
  }, 60_000);

  describe('MAX_SOCKETS_PER_USER (default 20) over /canvas and /device', () => {
    const connectTo = (namespace: '/canvas' | '/device', user: TestUser, deviceId?: string) =>
      new Promise<Socket>((resolve, reject) => {
        const socket = io(`${t.url}${namespace}`, {
          auth: { token: user.accessToken, deviceId },
          transports: ['websocket'],
          reconnection: false,
          forceNew: true,
        });
        opened.push(socket);
        socket.once('connect', () => resolve(socket));
        socket.once('connect_error', (error) => reject(error));
      });

    test('the 21st socket of a user, on either namespace, gets connect_error too_many_sockets; another user is unaffected; closing one frees a place', async () => {
      const user = await registerUser(t.api, 'Hoarder');
      const other = await registerUser(t.api, 'Bystander');
      const held: Socket[] = [];
      for (let i = 0; i < 12; i += 1) held.push(await connectTo('/canvas', user));
      for (let i = 0; i < 8; i += 1) held.push(await connectTo('/device', user, `laptop-${i}`));

      for (const attempt of [() => connectTo('/canvas', user), () => connectTo('/device', user, 'laptop-extra')]) {
        const error = (await attempt().then(
          () => undefined,
          (e: Error & { data?: unknown }) => e,
        ))!;
        expect(error?.message).toBe('too_many_sockets');
        expect(error.data).toEqual({ code: 'too_many_sockets', message: expect.any(String) });
      }
      expect((await connectTo('/canvas', other)).connected).toBe(true);
      expect(held.every((socket) => socket.connected)).toBe(true);

      held[0].close();
      const again = await eventually(
        () =>
          connectTo('/canvas', user).then(
            (socket) => socket,
            () => undefined,
          ),
        (socket) => socket !== undefined,
        10_000,
      );
      expect(again!.connected).toBe(true);
    }, 60_000);

    test('plain WebSocket devices count too: with 19 Socket.IO sockets the first WebSocket opens, the next is refused 429 too_many_sockets', async () => {
      const user = await registerUser(t.api, 'Mixed');
      for (let i = 0; i < 19; i += 1) await (i % 2 ? connectTo('/device', user, `tablet-${i}`) : connectTo('/canvas', user));
      const upgrade = () =>
        new Promise<{ status: number; body?: string; ws?: WebSocket }>((resolve) => {
          const ws = new WebSocket(`${t.url.replace('http', 'ws')}/api/v1/ws/device?token=${user.accessToken}`);
          ws.once('open', () => resolve({ status: 101, ws }));
          ws.once('unexpected-response', (_req, res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          });
        });
      const first = await upgrade();
      expect(first.status).toBe(101);
      const second = await upgrade();
      expect(second.status).toBe(429);
      expect(JSON.parse(second.body!)).toEqual({ error: { code: 'too_many_sockets', message: expect.any(String) } });
      expect(
        await connectTo('/canvas', user).then(
          () => 'connected',
          (e: Error) => e.message,
        ),
      ).toBe('too_many_sockets');
      first.ws!.close();
      await eventually(
        () =>
          connectTo('/canvas', user).then(
            () => 'connected',
            (e: Error) => e.message,
          ),
        (outcome) => outcome === 'connected',
        10_000,
      );
    }, 60_000);
  });
});

import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { io } from 'socket.io-client';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, record, waitFor, type CanvasClient } from '../support/sockets';

/** startTestApp's JWT_SECRET: tokens signed with it are genuine, so only the claim under test is wrong. */
const TEST_SECRET = new TextEncoder().encode('test-secret-test-secret-test-secret-0123456789');

/**
 * The /canvas namespace against clients that misbehave on purpose: broken Socket.IO frames,
 * frames over the 1 MB limit, floods of joins for canvases they may not see, and nonsense
 * arguments. Whatever one client does, it may only lose its own connection: the room's other
 * members keep receiving events and the node stays ready.
 */
describe('/canvas under abuse', () => {
  let t: TestApp;
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await t.stop();
  });

  describe('malformed frames', () => {
    // Socket.IO packets as the client's engine would carry them (it adds the engine.io `4` itself).
    const frames: Array<[string, string[]]> = [
      ['a truncated JSON event', ['2/canvas,["canvas:join",']],
      ['an object instead of the event array', ['2/canvas,{}']],
      ['a reserved event name', ['2/canvas,["disconnect"]']],
      [
        'a binary-event header whose attachment never comes',
        ['51-/canvas,["canvas:join",{"_placeholder":true,"num":0}]', '2/canvas,["canvas:leave","x"]'],
      ],
      ['an illegal attachment count', ['5x-/canvas,["canvas:join"]']],
      ['an unknown packet type', ['9/canvas,["canvas:join"]']],
      ['an event for a namespace it never connected to', ['2/admin,["canvas:join","x"]']],
      ['a second CONNECT for /canvas', ['0/canvas,{}']],
    ];

    test.each(frames)(
      'given a client writing %s, only that client is disconnected and the room keeps its events',
      async (_name, packets) => {
        const room = await givenWatchedCanvas();
        const attacker = await connect(room.owner);
        const dropped = disconnection(attacker);

        for (const packet of packets) attacker.io.engine.write(packet);

        expect(await dropped).toMatch(/transport (close|error)|parse error|io server disconnect/);
        await expectRoomServed(room);
      },
    );

    test('given a client writing an unknown engine.io packet type, only that client is disconnected', async () => {
      const room = await givenWatchedCanvas();
      const attacker = await connect(room.owner);
      const dropped = disconnection(attacker);

      (attacker.io.engine.transport as unknown as { ws: { send(data: string): void } }).ws.send('9nonsense');

      await dropped;
      await expectRoomServed(room);
    });

    test('given a client that emits the "error" event by name, the server neither crashes nor drops the room', async () => {
      const room = await givenWatchedCanvas();
      const client = await connect(room.owner);

      (client as unknown as { emit(event: string, ...args: unknown[]): void }).emit('error', { boom: true });

      expect(await join(client, room.canvasId)).toMatchObject({ ok: true });
      await expectRoomServed(room);
    });
  });

  describe('oversized frames (maxHttpBufferSize is 1 MB)', () => {
    test.each([
      ['a 1.1 MB string', () => 'x'.repeat(1_100_000)],
      ['a 1.1 MB binary attachment', () => Buffer.alloc(1_100_000, 7)],
    ])('given a client emitting %s, that client is disconnected and the others are not', async (_name, payload) => {
      const room = await givenWatchedCanvas();
      const attacker = await connect(room.owner);
      const dropped = disconnection(attacker);

      (attacker as unknown as { emit(event: string, ...args: unknown[]): void }).emit('canvas:cursor', {
        canvasId: room.canvasId,
        x: 1,
        y: 1,
        pad: payload(),
      });

      await dropped;
      await expectRoomServed(room);
    });

    test('given a 900 kB string as canvas id (under the limit), the join is refused and the client stays connected', async () => {
      const room = await givenWatchedCanvas();
      const client = await connect(room.owner);

      const ack = await rawAck(client, 'canvas:join', 'a'.repeat(900_000));

      expect(ack).toEqual({ ok: false, error: expect.objectContaining({ code: 'validation_failed' }) });
      expect(client.connected).toBe(true);
      await expectRoomServed(room);
    });
  });

  describe('a flood of joins for canvases the client may not see', () => {
    test('given 300+ joins for foreign and nonexistent ids, every ack is not_found, nothing is joined, and the room is served during the flood', async () => {
      const room = await givenWatchedCanvas();
      const intruder = await registerUser(t.api, 'Intruder');
      const foreign = await Promise.all([1, 2, 3].map(() => createCanvas(t.api, room.owner, 'Foreign')));
      const foreignWatcher = await connect(room.owner);
      expect(await join(foreignWatcher, foreign[0])).toMatchObject({ ok: true });
      const flooder = await connect(intruder);
      const overheard = [record(flooder, 'block_added'), record(flooder, 'presence'), record(flooder, 'cursor')];
      const idFor = (i: number) => (i % 3 === 0 ? foreign[i % foreign.length] : randomUUID());

      // When: the intruder keeps 50 joins in flight at all times, for at least 300 joins and until
      // the room has been served, so the room's event really competes with the flood
      const acks: unknown[] = [];
      let roomServed = false;
      const flood = (async () => {
        for (let sent = 0; sent < 300 || !roomServed; sent += 50) {
          const batch = Array.from({ length: 50 }, (_, i) => flooder.timeout(20_000).emitWithAck('canvas:join', idFor(sent + i)));
          acks.push(...(await Promise.all(batch)));
        }
      })();
      let latencyMs: number, answeredWhenServed: number, ready: { status: number };
      try {
        const startedAt = Date.now();
        const marker = `during the flood ${randomUUID()}`;
        const arrived = waitFor(room.watcher, 'block_added', (p) => p.block.content.text === marker, 10_000);
        await addBlock(room.owner, room.canvasId, marker);
        await arrived;
        latencyMs = Date.now() - startedAt;
        answeredWhenServed = acks.length;
        ready = await request('GET', `${t.url}/readyz`);
      } finally {
        roomServed = true; // ends the flood even when the room was not served
      }
      await flood;

      // Then: the member got the event promptly, while joins were still being answered
      expect(latencyMs).toBeLessThan(5_000);
      expect(answeredWhenServed).toBeLessThan(acks.length);
      expect(ready.status).toBe(200);
      expect(acks.length).toBeGreaterThanOrEqual(300);
      // not_found, or rate_limited once the socket's join budget is spent: never a join
      for (const ack of acks)
        expect(ack).toEqual({ ok: false, error: expect.objectContaining({ code: expect.stringMatching(/^(not_found|rate_limited)$/) }) });
      // and nothing was joined: events in the foreign rooms do not reach the intruder
      const delivered = waitFor(foreignWatcher, 'block_added', (p) => p.canvasId === foreign[0]);
      await addBlock(room.owner, foreign[0], 'private');
      await delivered;
      await roundTrip(flooder);
      expect(overheard).toEqual([[], [], []]);
      expect(flooder.connected).toBe(true);
      await expectRoomServed(room);
    }, 45_000);
  });

  describe('nonsense arguments', () => {
    test('given canvas:join with non-string, huge or missing ids and no ack, the server answers or ignores each and the client can still join', async () => {
      const room = await givenWatchedCanvas();
      const client = await connect(room.owner);
      const badIds: unknown[] = [
        42,
        Number.NaN,
        null,
        true,
        [],
        [room.canvasId],
        { canvasId: room.canvasId },
        `${room.canvasId} `,
        `${room.canvasId}\u0000`,
        'x'.repeat(100_000),
        nested(500),
      ];

      const acks = await Promise.all(badIds.map((id) => rawAck(client, 'canvas:join', id)));
      rawEmit(client, 'canvas:join');
      rawEmit(client, 'canvas:join', randomUUID());
      rawEmit(client, 'canvas:join', room.canvasId, 'not-a-function');
      rawEmit(client, 'canvas:leave', { nope: true });
      rawEmit(client, 'canvas:leave');
      rawEmit(client, 'no-such-event', 1, 2, 3);

      for (const ack of acks) expect(ack).toEqual({ ok: false, error: expect.objectContaining({ code: 'validation_failed' }) });
      expect(await join(client, room.canvasId)).toMatchObject({ ok: true });
      expect(client.connected).toBe(true);
      await expectRoomServed(room);
    });

    test('given a member joining with the canvas id in upper case, it receives the room’s events', async () => {
      const room = await givenWatchedCanvas();
      const client = await connect(room.owner);

      expect(await join(client, room.canvasId.toUpperCase())).toMatchObject({ ok: true });

      await expectRoomServed({ ...room, watcher: client });
    });

    test('given cursors with NaN, Infinity, strings or missing fields, none is relayed; a valid one is', async () => {
      const room = await givenWatchedCanvas();
      const mover = await connect(room.owner);
      // Cursors are volatile: one relayed while the watcher's transport is still busy sending the
      // presence update for this join may be dropped, so let that update arrive first.
      const settled = waitFor(room.watcher, 'presence', (p) => p.users.length === 2);
      await join(mover, room.canvasId);
      await settled;
      const seen = record(room.watcher, 'cursor');
      const { canvasId } = room;

      for (const payload of [
        { canvasId, x: Number.NaN, y: 1 },
        { canvasId, x: Number.POSITIVE_INFINITY, y: 1 },
        { canvasId, x: '12', y: '40' },
        { canvasId, x: 1 },
        { canvasId: 'not-a-uuid', x: 1, y: 1 },
        { canvasId: randomUUID(), x: 1, y: 1 },
        [canvasId, 1, 1],
        'garbage',
        null,
      ]) {
        rawEmit(mover, 'canvas:cursor', payload);
      }
      // JSON cannot say Infinity, but a number literal too large for a double parses as one.
      mover.io.engine.write(`2/canvas,["canvas:cursor",{"canvasId":"${canvasId}","x":1e999,"y":-1e999}]`);
      mover.emit('canvas:cursor', { canvasId, x: 7, y: 8 });

      await waitFor(room.watcher, 'cursor', (p) => p.x === 7);
      expect(seen).toEqual([{ userId: room.owner.id, x: 7, y: 8 }]);
      expect(mover.connected).toBe(true);
    });

    test('given a bad, forged, expired or missing token, the handshake fails with connect_error "unauthorized"', async () => {
      const user = await registerUser(t.api, 'Forger');
      const claims = { email: user.email, name: user.name, tier: 'free', role: 'user' };
      const signed = (secret: Uint8Array, expiresAt: number, audience = 'switchboard-api') =>
        new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject(user.id)
          .setIssuer('switchboard')
          .setAudience(audience)
          .setIssuedAt()
          .setExpirationTime(expiresAt)
          .sign(secret);
      const inAnHour = Math.floor(Date.now() / 1000) + 3600;
      const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, sub: user.id, iss: 'switchboard', aud: 'switchboard-api', exp: inAnHour })}.`;

      const auths: Array<Record<string, unknown>> = [
        {},
        { token: '' },
        { token: 'not-a-token' },
        { token: 42 },
        { token: { sub: user.id } },
        { token: user.refreshToken },
        { token: unsigned },
        { token: await signed(new TextEncoder().encode('another-secret-another-secret-another-secret'), inAnHour) },
        { token: await signed(TEST_SECRET, Math.floor(Date.now() / 1000) - 60) },
        { token: await signed(TEST_SECRET, inAnHour, 'someone-else') },
      ];

      for (const auth of auths) await expect(handshake(auth)).rejects.toThrow('unauthorized');
      expect((await request('GET', `${t.url}/readyz`)).status).toBe(200);
      await expect(handshake({ token: await signed(TEST_SECRET, inAnHour) })).resolves.toBeUndefined();
    });
  });

  /** An owner's canvas with a watcher socket (a second member) joined to its room. */
  async function givenWatchedCanvas() {
    const [owner, member] = await Promise.all([registerUser(t.api, 'Owner'), registerUser(t.api, 'Member')]);
    const canvasId = await createCanvas(t.api, owner);
    await addMember(t.api, owner, canvasId, member, 'viewer');
    const watcher = await connect(member);
    expect(await join(watcher, canvasId)).toMatchObject({ ok: true });
    return { owner, member, canvasId, watcher };
  }

  /** A block posted now reaches the watcher, and the node says it is ready. */
  async function expectRoomServed(room: { owner: TestUser; canvasId: string; watcher: CanvasClient }) {
    const marker = `still served ${randomUUID()}`;
    const arrived = waitFor(room.watcher, 'block_added', (p) => p.block.content.text === marker);
    await addBlock(room.owner, room.canvasId, marker);
    expect((await arrived).canvasId).toBe(room.canvasId);
    expect(room.watcher.connected).toBe(true);
    expect((await request('GET', `${t.url}/readyz`)).status).toBe(200);
  }

  async function addBlock(user: TestUser, canvasId: string, text: string) {
    const res = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text } },
    });
    expect(res.status).toBe(201);
    return res.body.block;
  }

  async function connect(user: TestUser): Promise<CanvasClient> {
    const socket = await connectCanvas(t.url, user.accessToken);
    sockets.push(socket);
    return socket;
  }

  /** Connects with any `auth`; resolves (and disconnects) on success, rejects with the connect_error. */
  function handshake(auth: Record<string, unknown>): Promise<void> {
    const socket = io(`${t.url}/canvas`, { auth, transports: ['websocket'], reconnection: false, forceNew: true });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (socket.close(), reject(new Error('handshake timed out'))), 10_000);
      socket.once('connect', () => (clearTimeout(timer), socket.close(), resolve()));
      socket.once('connect_error', (error) => (clearTimeout(timer), socket.close(), reject(error)));
    });
  }
});

/** Resolves with the disconnect reason; rejects if the client is still connected after the timeout. */
function disconnection(socket: CanvasClient, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the client was not disconnected')), timeoutMs);
    socket.once('disconnect', (reason) => (clearTimeout(timer), resolve(reason)));
  });
}

/** Emits outside the typed event map, as a hostile client would. */
function rawEmit(socket: CanvasClient, event: string, ...args: unknown[]) {
  (socket as unknown as { emit(event: string, ...args: unknown[]): void }).emit(event, ...args);
}

function rawAck(socket: CanvasClient, event: string, ...args: unknown[]): Promise<unknown> {
  return (socket as unknown as { timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<unknown> } })
    .timeout(10_000)
    .emitWithAck(event, ...args);
}

/** An ack on the same connection: everything the server sent before it has arrived. */
async function roundTrip(socket: CanvasClient) {
  await rawAck(socket, 'canvas:join', 'round-trip');
}

function nested(depth: number): unknown {
  let value: unknown = 'deep';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

import { io, type Socket } from 'socket.io-client';
import { useCluster } from '../support/cluster';
import { addMember, createCanvas, registerUser, type TestUser } from '../support/http';
import { join, waitFor, type CanvasClient } from '../support/sockets';
import { eventually } from '../support/wait';

/**
 * The socket cap across API nodes: MAX_SOCKETS_PER_USER counts a user's sockets on every node
 * and both namespaces; the sockets of a node killed with SIGKILL stop counting once their leases
 * (SOCKET_LEASE_SECONDS) run out. Cursors, no longer carried by the adapter, still cross nodes.
 */
describe('socket cap and cursors over two API nodes', () => {
  const cluster = useCluster('cap', { MAX_SOCKETS_PER_USER: '6', SOCKET_LEASE_SECONDS: '3' });
  const opened: Socket[] = [];

  afterAll(() => opened.forEach((socket) => socket.close()));

  const connectTo = (url: string, namespace: '/canvas' | '/device', user: TestUser, deviceId?: string) =>
    new Promise<Socket>((resolve, reject) => {
      const socket = io(`${url}${namespace}`, {
        auth: { token: user.accessToken, deviceId },
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
      });
      opened.push(socket);
      socket.once('connect', () => resolve(socket));
      socket.once('connect_error', (error) => reject(error));
    });
  const refusal = (attempt: Promise<Socket>) =>
    attempt.then(
      () => 'connected',
      (error: Error) => error.message,
    );

  test("the cap holds across nodes and namespaces, a killed node's sockets age out, and cursors cross nodes", async () => {
    const [a, b] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
    ]);
    const user = await registerUser(`${a.url}/api/v1`, 'TwoNodes');
    const other = await registerUser(`${a.url}/api/v1`, 'Other');
    const canvasId = await createCanvas(`${a.url}/api/v1`, other, 'Shared');
    await addMember(`${a.url}/api/v1`, other, canvasId, user, 'editor');

    // Cursors: the user's socket on node A, the other user's on node B.
    const mover = (await connectTo(a.url!, '/canvas', user)) as CanvasClient;
    const watcher = (await connectTo(b.url!, '/canvas', other)) as CanvasClient;
    expect(await join(mover, canvasId)).toMatchObject({ ok: true });
    expect(await join(watcher, canvasId)).toMatchObject({ ok: true });
    const seen = waitFor(watcher, 'cursor', (p) => p.userId === user.id && p.x === 7);
    mover.emit('canvas:cursor', { canvasId, x: 7, y: 9 });
    expect(await seen).toEqual({ userId: user.id, x: 7, y: 9 });

    // The user holds 1 (mover) + 2 on A + 3 on B = 6, the cap.
    await connectTo(a.url!, '/canvas', user);
    await connectTo(a.url!, '/device', user, 'desk-1');
    for (const deviceId of ['desk-2', 'desk-3']) await connectTo(b.url!, '/device', user, deviceId);
    await connectTo(b.url!, '/canvas', user);
    expect(await refusal(connectTo(a.url!, '/canvas', user))).toBe('too_many_sockets');
    expect(await refusal(connectTo(b.url!, '/device', user, 'desk-4'))).toBe('too_many_sockets');
    expect(await refusal(connectTo(a.url!, '/canvas', other))).toBe('connected');

    // Node B dies without closing anything: its 3 sockets free their places once their leases end.
    await b.stop('SIGKILL');
    // (each lease ends on its own: take the three places back one by one)
    for (const deviceId of ['desk-5', 'desk-6'])
      await eventually(
        () => refusal(connectTo(a.url!, '/device', user, deviceId)),
        (outcome) => outcome === 'connected',
        20_000,
      );
    await eventually(
      () => refusal(connectTo(a.url!, '/canvas', user)),
      (outcome) => outcome === 'connected',
      20_000,
    );
    expect(await refusal(connectTo(a.url!, '/canvas', user))).toBe('too_many_sockets');
  }, 120_000);
});

import { randomUUID } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import type { CanvasClientEvents, CanvasServerEvents } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, record, waitFor, type CanvasClient } from '../support/sockets';

/** `DELETE /canvases/:id/members/:userId`: an owner removes a member, a member leaves; the room follows at once. */
describe('removing canvas members', () => {
  let t: TestApp;
  let owner: TestUser;
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    owner = await registerUser(t.api, 'Owner');
  });

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await t.stop();
  });

  const memberUrl = (canvasId: string, userId: string) => `${t.api}/canvases/${canvasId}/members/${userId}`;
  const memberIds = async (canvasId: string) =>
    (await request('GET', `${t.api}/canvases/${canvasId}/members`, { token: owner.accessToken })).body.members.map(
      (member: { userId: string }) => member.userId,
    );
  const watch = async (user: TestUser, canvasId: string) => {
    const socket = await connectCanvas(t.url, user.accessToken);
    sockets.push(socket);
    expect((await join(socket, canvasId)).ok).toBe(true);
    return socket;
  };

  test('given an editor in the room, the owner removes them: 204, audited, the canvas is gone for them and its room goes quiet', async () => {
    const editor = await registerUser(t.api, 'Editor');
    const canvasId = await createCanvas(t.api, owner, 'Shared');
    await addMember(t.api, owner, canvasId, editor, 'editor');
    const [ownerSocket, editorSocket] = await Promise.all([watch(owner, canvasId), watch(editor, canvasId)]);
    const editorHeard = record(editorSocket, 'block_added');

    const removed = await request('DELETE', memberUrl(canvasId, editor.id), { token: owner.accessToken });

    expect(removed.status).toBe(204);
    expect(await memberIds(canvasId)).toEqual([owner.id]);
    expect((await request('GET', `${t.api}/canvases/${canvasId}`, { token: editor.accessToken })).status).toBe(404);
    const list = await request('GET', `${t.api}/canvases`, { token: editor.accessToken });
    expect(list.body.canvases).toEqual([]);
    const write = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: editor.accessToken,
      body: { type: 'text', content: { text: 'after removal' } },
    });
    expect(write.status).toBe(404);
    const audit = await request('GET', `${t.api}/canvases/${canvasId}/audit`, { token: owner.accessToken });
    expect(audit.body.audit[0]).toMatchObject({
      action: 'canvas.member.removed',
      actorId: owner.id,
      targetId: editor.id,
      details: { left: false },
    });

    // A block added now reaches the owner's socket and not the removed editor's.
    const ownerHears = waitFor(ownerSocket, 'block_added', (p) => p.canvasId === canvasId);
    const added = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'owners only now' } },
    });
    expect(added.status).toBe(201);
    await ownerHears;
    // One round trip on the editor's own connection: anything sent to it before is in by now.
    const sync = await editorSocket.timeout(5_000).emitWithAck('canvas:sync', { canvasId, afterSeq: 0 });
    expect(sync).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(editorHeard).toEqual([]);
    // Joining again is refused.
    expect((await join(editorSocket, canvasId)).ok).toBe(false);
  });

  test('a viewer leaves by naming themselves; an editor cannot remove others (403); an outsider sees 404', async () => {
    const [viewer, editor, outsider] = await Promise.all([
      registerUser(t.api, 'Viewer'),
      registerUser(t.api, 'Editor'),
      registerUser(t.api, 'Outsider'),
    ]);
    const canvasId = await createCanvas(t.api, owner);
    await addMember(t.api, owner, canvasId, viewer, 'viewer');
    await addMember(t.api, owner, canvasId, editor, 'editor');

    const byEditor = await request('DELETE', memberUrl(canvasId, viewer.id), { token: editor.accessToken });
    expect(byEditor.status).toBe(403);
    const byOutsider = await request('DELETE', memberUrl(canvasId, viewer.id), { token: outsider.accessToken });
    expect(byOutsider.status).toBe(404);
    expect(await memberIds(canvasId)).toEqual([owner.id, viewer.id, editor.id]);

    const left = await request('DELETE', memberUrl(canvasId, viewer.id), { token: viewer.accessToken });
    expect(left.status).toBe(204);
    expect(await memberIds(canvasId)).toEqual([owner.id, editor.id]);
    const audit = await request('GET', `${t.api}/canvases/${canvasId}/audit`, { token: owner.accessToken });
    expect(audit.body.audit[0]).toMatchObject({ action: 'canvas.member.removed', actorId: viewer.id, details: { left: true } });
    // Leaving twice: no longer a member of the canvas at all.
    expect((await request('DELETE', memberUrl(canvasId, viewer.id), { token: viewer.accessToken })).status).toBe(404);
  });

  test("the canvas's creator cannot be removed, not even by a co-owner, nor leave; unknown and malformed members are 404", async () => {
    const coOwner = await registerUser(t.api, 'CoOwner');
    const canvasId = await createCanvas(t.api, owner);
    await addMember(t.api, owner, canvasId, coOwner, 'owner');

    const byCoOwner = await request('DELETE', memberUrl(canvasId, owner.id), { token: coOwner.accessToken });
    expect(byCoOwner.status).toBe(409);
    expect(byCoOwner.body.error.code).toBe('owner_cannot_be_removed');
    const self = await request('DELETE', memberUrl(canvasId, owner.id), { token: owner.accessToken });
    expect(self.status).toBe(409);

    const unknown = await request('DELETE', memberUrl(canvasId, randomUUID()), { token: owner.accessToken });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('member_not_found');
    const malformed = await request('DELETE', memberUrl(canvasId, 'not-a-uuid'), { token: owner.accessToken });
    expect(malformed.status).toBe(404);
    expect(await memberIds(canvasId)).toEqual([owner.id, coOwner.id]);

    // A co-owner can be removed by the creator.
    expect((await request('DELETE', memberUrl(canvasId, coOwner.id), { token: owner.accessToken })).status).toBe(204);
    expect(await memberIds(canvasId)).toEqual([owner.id]);
  });

  test('a member removed while their socket was away is not put back into the room when the connection is recovered', async () => {
    const member = await registerUser(t.api, 'Away');
    const canvasId = await createCanvas(t.api, owner);
    await addMember(t.api, owner, canvasId, member, 'editor');
    const ownerSocket = await watch(owner, canvasId);
    const away: Socket<CanvasServerEvents, CanvasClientEvents> = io(`${t.url}/canvas`, {
      auth: { token: member.accessToken },
      transports: ['websocket'],
      reconnectionDelay: 1_000,
      reconnectionDelayMax: 1_000,
      randomizationFactor: 0,
    });
    sockets.push(away as unknown as CanvasClient);
    await new Promise<void>((resolve) => away.once('connect', () => resolve()));
    expect((await away.timeout(5_000).emitWithAck('canvas:join', canvasId)).ok).toBe(true);
    const heard = record(away as unknown as CanvasClient, 'block_added');
    // One room event first: the client recovers from the offset of the last one it received.
    const first = waitFor(away as unknown as CanvasClient, 'block_added', (p) => p.canvasId === canvasId);
    await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'before the drop' } },
    });
    await first;

    // The transport drops; while it is away, the owner removes the member.
    const reconnected = new Promise<void>((resolve) => away.once('connect', () => resolve()));
    const gone = waitFor(ownerSocket, 'presence', (p) => p.canvasId === canvasId && !p.users.some((u) => u.userId === member.id));
    away.io.engine.close();
    await gone; // the server has seen the drop (and kept the session, with its rooms)
    expect((await request('DELETE', memberUrl(canvasId, member.id), { token: owner.accessToken })).status).toBe(204);
    await reconnected;
    expect(away.recovered).toBe(true);

    // Once the membership check after the recovery is done (its sync answers not_found), live events stay away.
    const sync = await away.timeout(5_000).emitWithAck('canvas:sync', { canvasId, afterSeq: 0 });
    expect(sync).toMatchObject({ ok: false, error: { code: 'not_found' } });
    const ownerHears = waitFor(ownerSocket, 'block_added', (p) => p.canvasId === canvasId);
    await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'after the recovery' } },
    });
    await ownerHears;
    await away.timeout(5_000).emitWithAck('canvas:sync', { canvasId, afterSeq: 0 });
    expect(heard.map((p) => p.block.content.text)).toEqual(['before the drop']);
  });
});

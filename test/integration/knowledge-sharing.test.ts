import { demoResponder } from '../../src/demo-model/responder';
import { startTestApp, type TestApp } from '../support/app';
import { multipart } from '../support/documents';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

/**
 * A knowledge base shared with a canvas follows the canvas's roles: its owner shares it with a
 * canvas they own or edit; every member reads and searches it; only its owner changes it; a
 * removed member, a non-member, and every member once its owner can no longer edit the canvas
 * read nothing of it. Real server, database, Redis and worker.
 */
describe('knowledge sharing with canvases: retrieval never returns a chunk the caller may not read', () => {
  let t: TestApp;
  let owner: TestUser;
  let editor: TestUser;
  let viewer: TestUser;
  let outsider: TestUser;
  let canvasId: string;
  let baseId: string;
  let documentId: string;
  const SECRET = 'The quarterly offsite is at the lighthouse in Brighton.';

  const as = (user: TestUser) => ({ token: user.accessToken });
  const search = (user: TestUser, body: Record<string, unknown>) => request('POST', `${t.api}/knowledge/search`, { ...as(user), body });
  const found = async (user: TestUser, body: Record<string, unknown> = {}) => {
    const res = await search(user, { query: 'quarterly offsite lighthouse Brighton', ...body });
    expect(res.status).toBe(200);
    return (res.body.hits as { documentId: string; text: string }[]).filter((hit) => hit.documentId === documentId);
  };
  const upload = async (user: TestUser, id: string, text: string) => {
    const { body, contentType } = multipart([{ name: 'note.txt', type: 'text/plain', bytes: Buffer.from(text) }]);
    const res = await fetch(`${t.api}/knowledge/bases/${id}/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': contentType },
      body: new Uint8Array(body),
    });
    return { status: res.status, body: (await res.json()) as { documents?: { id: string }[]; error?: { code: string } } };
  };

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder });
    [owner, editor, viewer, outsider] = await Promise.all(
      ['Keeper', 'Editor', 'Viewer', 'Outsider'].map((name) => registerUser(t.api, name)),
    );
    canvasId = await createCanvas(t.api, owner, 'Team');
    await addMember(t.api, owner, canvasId, editor, 'editor');
    await addMember(t.api, owner, canvasId, viewer, 'viewer');
    baseId = (await request('POST', `${t.api}/knowledge/bases`, { ...as(owner), body: { name: 'Team notes' } })).body.base.id;
    const uploaded = await upload(owner, baseId, SECRET);
    documentId = uploaded.body.documents![0].id;
    await eventually(
      () => request('GET', `${t.api}/knowledge/documents/${documentId}`, as(owner)),
      (res) => res.body.document?.status === 'ready',
      30_000,
    );
  });

  afterAll(() => t.stop());

  test('before it is shared, no member reads or finds it', async () => {
    for (const user of [editor, viewer, outsider]) {
      expect(await found(user)).toEqual([]);
      expect(await found(user, { baseIds: [baseId], documentIds: [documentId] })).toEqual([]);
      expect((await request('GET', `${t.api}/knowledge/bases/${baseId}`, as(user))).status).toBe(404);
    }
  });

  test('only an owner or editor of the canvas shares it; a viewer is 403, a stranger’s canvas 404, nothing shared', async () => {
    const viewersBase = (await request('POST', `${t.api}/knowledge/bases`, { ...as(viewer), body: { name: 'Mine' } })).body.base.id;
    const asViewer = await request('PUT', `${t.api}/knowledge/bases/${viewersBase}/canvases/${canvasId}`, as(viewer));
    expect(asViewer.status).toBe(403);
    const outsidersCanvas = await createCanvas(t.api, outsider, 'Elsewhere');
    const foreign = await request('PUT', `${t.api}/knowledge/bases/${baseId}/canvases/${outsidersCanvas}`, as(owner));
    expect(foreign.status).toBe(404);
    // Someone else's base cannot be shared by a member of the canvas either.
    expect((await request('PUT', `${t.api}/knowledge/bases/${baseId}/canvases/${canvasId}`, as(editor))).status).toBe(404);
    const listed = await request('GET', `${t.api}/knowledge/bases`, as(owner));
    expect(listed.body.bases.find((base: { id: string }) => base.id === baseId).canvasIds).toEqual([]);
  });

  test('shared, every member reads and searches it; the outsider still finds nothing; only the owner changes it', async () => {
    const shared = await request('PUT', `${t.api}/knowledge/bases/${baseId}/canvases/${canvasId}`, as(owner));
    expect(shared.status).toBe(200);
    expect(shared.body.base).toMatchObject({ access: 'owner', canvasIds: [canvasId] });

    for (const user of [editor, viewer]) {
      expect((await found(user))[0]?.text).toContain('lighthouse');
      const base = await request('GET', `${t.api}/knowledge/bases/${baseId}`, as(user));
      expect(base.status).toBe(200);
      expect(base.body.base).toMatchObject({ access: 'shared', canvasIds: [], ownerId: owner.id });
      expect((await request('GET', `${t.api}/knowledge/documents/${documentId}/chunks`, as(user))).status).toBe(200);
      const listed = await request('GET', `${t.api}/knowledge/bases`, as(user));
      expect(listed.body.bases.map((row: { id: string }) => row.id)).toContain(baseId);
    }
    expect(await found(outsider)).toEqual([]);
    expect(await found(outsider, { baseIds: [baseId] })).toEqual([]);
    expect((await request('GET', `${t.api}/knowledge/documents/${documentId}/chunks`, as(outsider))).status).toBe(404);

    // Read only: an editor of the canvas neither adds, deletes, re-ingests nor re-shares.
    const added = await upload(editor, baseId, 'Planted by the editor.');
    expect(added.status).toBe(403);
    expect((await request('DELETE', `${t.api}/knowledge/documents/${documentId}`, as(editor))).status).toBe(403);
    expect((await request('POST', `${t.api}/knowledge/documents/${documentId}/reingest`, as(viewer))).status).toBe(403);
    expect((await request('DELETE', `${t.api}/knowledge/bases/${baseId}`, as(editor))).status).toBe(403);
    expect((await request('DELETE', `${t.api}/knowledge/bases/${baseId}/canvases/${canvasId}`, as(editor))).status).toBe(403);
    expect((await request('GET', `${t.api}/knowledge/bases/${baseId}`, as(owner))).body.documents).toHaveLength(1);
  });

  test('a member’s chatflow (which answers anyone, embeds included) does not reach a base shared with them', async () => {
    const flow = await request('POST', `${t.api}/flows`, {
      ...as(editor),
      body: { type: 'chatflow', name: 'Leaky bot', definition: { systemPrompt: 'Hi.', knowledge: { baseIds: [baseId] } } },
    });
    expect(flow.status).toBe(201);
    const sse = await readSse(`${t.api}/flows/${flow.body.flow.id}/chat/stream`, {
      method: 'POST',
      ...as(editor),
      body: { message: 'Where is the quarterly offsite?' },
      timeoutMs: 30_000,
    });
    expect(sse.messages.filter((message) => message.event === 'citations')).toEqual([]);
    expect(JSON.stringify(sse.messages)).not.toContain('lighthouse');
  });

  test('a removed member reads nothing from the next search on; the others still do', async () => {
    const removed = await request('DELETE', `${t.api}/canvases/${canvasId}/members/${viewer.id}`, as(owner));
    expect(removed.status).toBe(204);

    expect(await found(viewer)).toEqual([]);
    expect(await found(viewer, { baseIds: [baseId] })).toEqual([]);
    expect((await request('GET', `${t.api}/knowledge/bases/${baseId}`, as(viewer))).status).toBe(404);
    expect((await request('GET', `${t.api}/knowledge/documents/${documentId}`, as(viewer))).status).toBe(404);
    expect((await found(editor))[0]?.text).toContain('lighthouse');
  });

  test('the share holds only while its owner may edit the canvas, and unsharing ends it for everyone', async () => {
    const other = await registerUser(t.api, 'Lead');
    const leadCanvas = await createCanvas(t.api, other, 'Lead’s canvas');
    await addMember(t.api, other, leadCanvas, owner, 'editor');
    await addMember(t.api, other, leadCanvas, outsider, 'viewer');
    expect((await request('PUT', `${t.api}/knowledge/bases/${baseId}/canvases/${leadCanvas}`, as(owner))).status).toBe(200);
    expect((await found(outsider))[0]?.text).toContain('lighthouse');

    // The base's owner is made a viewer of that canvas: the share no longer reaches its members.
    await addMember(t.api, other, leadCanvas, owner, 'viewer');
    expect(await found(outsider)).toEqual([]);
    expect(await found(other)).toEqual([]);

    expect((await request('DELETE', `${t.api}/knowledge/bases/${baseId}/canvases/${canvasId}`, as(owner))).status).toBe(204);
    expect(await found(editor)).toEqual([]);
    expect((await request('DELETE', `${t.api}/knowledge/bases/${baseId}/canvases/${canvasId}`, as(owner))).status).toBe(404);
    expect((await found(owner))[0]?.text).toContain('lighthouse');
  });
});

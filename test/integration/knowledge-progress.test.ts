import { startTestApp, type TestApp } from '../support/app';
import { multipart } from '../support/documents';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';

/**
 * A document's ingestion progress over SSE (`GET /knowledge/documents/:id/events`): where it stands,
 * each step its worker reports, to `ready` or `failed`; only its owner may watch it.
 * Real server, real Redis stream log, real database and model server over HTTP.
 */
describe('knowledge ingestion progress on SSE', () => {
  let t: TestApp;
  let owner: TestUser;
  let stranger: TestUser;
  let baseId: string;

  beforeAll(async () => {
    // One ingestion at a time: the second document of an upload waits queued while the first is ingested.
    t = await startTestApp({ env: { KNOWLEDGE_CONCURRENCY: '1' } });
    [owner, stranger] = await Promise.all([registerUser(t.api, 'Watcher'), registerUser(t.api, 'Peeker')]);
    baseId = (await request('POST', `${t.api}/knowledge/bases`, { token: owner.accessToken, body: { name: 'Manuals' } })).body.base.id;
  });
  afterAll(() => t.stop());

  /** Several rounds of chunks. */
  const text = Array.from(
    { length: 80 },
    (_, section) =>
      `Section ${section}. ` +
      Array.from({ length: 60 }, (_, n) => `Part ${section}-${n} explains step ${(section * 53 + n) % 991}.`).join(' '),
  ).join('\n\n');

  const upload = async (files: { name: string; type?: string; bytes: Buffer }[]) => {
    const { body, contentType } = multipart(files);
    const response = await fetch(`${t.api}/knowledge/bases/${baseId}/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner.accessToken}`, 'content-type': contentType },
      body: new Uint8Array(body),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { documents: { id: string; status: string }[] }).documents;
  };
  const events = (user: TestUser, id: string) =>
    readSse(`${t.api}/knowledge/documents/${id}/events`, { token: user.accessToken, timeoutMs: 60_000 });

  test('a queued document streams parsing, embedding round by round with chunks stored of the total, then ready, and the stream ends', async () => {
    const [, waiting] = await upload([
      { name: 'first.txt', type: 'text/plain', bytes: Buffer.from(text) },
      { name: 'second.txt', type: 'text/plain', bytes: Buffer.from(`${text}\n\nThe end.`) },
    ]);

    const sse = await events(owner, waiting.id);

    expect(sse.status).toBe(200);
    expect(sse.messages.every((message) => message.event === 'progress')).toBe(true);
    const progress = sse.messages.map(
      (message) => message.data as { status: string; chunksStored?: number; chunksTotal?: number; revision: number },
    );
    expect(progress[0]).toMatchObject({ documentId: waiting.id, revision: 1, status: 'queued' });
    expect(progress.map((event) => event.status)).toEqual(expect.arrayContaining(['parsing', 'embedding', 'ready']));
    const embedding = progress.filter((event) => event.status === 'embedding');
    const total = embedding[0].chunksTotal!;
    expect(total).toBeGreaterThan(64);
    expect(embedding.map((event) => event.chunksStored)).toEqual([
      0,
      ...Array.from({ length: Math.ceil(total / 32) }, (_, n) => Math.min(32 * (n + 1), total)),
    ]);
    expect(progress.at(-1)).toEqual({ documentId: waiting.id, revision: 1, status: 'ready', chunksStored: total, chunksTotal: total });
    const document = await request('GET', `${t.api}/knowledge/documents/${waiting.id}`, { token: owner.accessToken });
    expect(document.body.document.chunkCount).toBe(total);
  });

  test('a settled document streams its state once and ends: ready with its count, failed with its reason', async () => {
    const [ready] = await upload([{ name: 'short.md', type: 'text/markdown', bytes: Buffer.from('# Hello\n\nA short note.') }]);
    await events(owner, ready.id);
    const again = await events(owner, ready.id);
    expect(again.messages.map((message) => message.data)).toEqual([
      { documentId: ready.id, revision: 1, status: 'ready', chunksStored: 1, chunksTotal: 1 },
    ]);

    const [empty] = await upload([{ name: 'empty.txt', type: 'text/plain', bytes: Buffer.alloc(0) }]);
    const failed = await events(owner, empty.id);
    expect(failed.messages.map((message) => message.data)).toEqual([
      { documentId: empty.id, revision: 1, status: 'failed', error: 'The file is empty (0 bytes)' },
    ]);
  });

  test("another user's document is 404, a malformed id 404 too, in the error shape and with no stream", async () => {
    const [mine] = await upload([{ name: 'private.md', type: 'text/markdown', bytes: Buffer.from('# Private\n\nOnly mine.') }]);
    const peek = await events(stranger, mine.id);
    expect(peek.status).toBe(404);
    expect(peek.body.error.code).toBe('not_found');
    expect(peek.messages).toEqual([]);
    const malformed = await events(owner, 'not-a-uuid');
    expect(malformed.status).toBe(404);
    expect(malformed.body.error.code).toBe('not_found');
    const anonymous = await readSse(`${t.api}/knowledge/documents/${mine.id}/events`);
    expect(anonymous.status).toBe(401);
  });
});

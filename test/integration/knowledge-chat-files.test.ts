import { demoResponder } from '../../src/demo-model/responder';
import { startTestApp, type TestApp } from '../support/app';
import { makePdf } from '../support/documents';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';

const MAX_FILE_BYTES = 200_000;

/**
 * Files in chat: a message carries the AI SDK's `file` part (a base64 data: URL), on the native
 * routes and on the AI SDK edge; the file goes into the session's own knowledge base, the turn waits
 * for its ingestion and answers from it with citations, offline with the demo model. Bad files are
 * refused before anything is written, and no other user reads the session's files.
 * Real server, Redis, database, knowledge worker and the demo model over HTTP.
 */
describe('file parts in chat: ingested into the session’s knowledge, answered with citations', () => {
  let t: TestApp;
  let alice: TestUser;
  let mallory: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { KNOWLEDGE_MAX_FILE_BYTES: String(MAX_FILE_BYTES) } });
    [alice, mallory] = await Promise.all([registerUser(t.api, 'Alice'), registerUser(t.api, 'Mallory')]);
  });

  afterAll(() => t.stop());

  const filePart = (filename: string, mediaType: string, bytes: Buffer) => ({
    type: 'file',
    mediaType,
    filename,
    url: `data:${mediaType};base64,${bytes.toString('base64')}`,
  });
  const eventsOf = (messages: SseMessage[], type: string) => messages.filter((message) => message.event === type).map((m) => m.data);
  const sessionBases = async (user: TestUser) =>
    ((await request('GET', `${t.api}/knowledge/bases`, { token: user.accessToken })).body.bases as { sessionId: string | null }[]).filter(
      (base) => base.sessionId,
    );

  test('POST /chat/stream with a PDF part waits for its ingestion, then answers from it citing the page', async () => {
    const pdf = makePdf([['Cover page of the warranty.'], ['The warranty on a copper kettle lasts seven years from purchase.']]);

    const sse = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: alice.accessToken,
      body: {
        message: 'How long does the warranty on a copper kettle last?',
        files: [filePart('warranty.pdf', 'application/pdf', pdf)],
      },
      timeoutMs: 60_000,
    });

    expect(sse.status).toBe(200);
    const [citations] = eventsOf(sse.messages, 'citations');
    const cited = citations.sources.find((source: { title: string }) => source.title === 'warranty.pdf');
    expect(cited).toMatchObject({ mediaType: 'application/pdf', page: 2 });
    const [final] = eventsOf(sse.messages, 'final');
    expect(final.response).toContain('seven years');
    expect(final.response).toContain(`[${cited.index}]`);

    // The file sits in the session's own base, ready; another user neither lists nor finds it.
    const [base] = (await sessionBases(alice)).filter((row) => row.sessionId === final.sessionId);
    expect(base).toMatchObject({ access: 'owner', documentCount: 1 });
    expect(await sessionBases(mallory)).toEqual([]);
    const stolen = await request('POST', `${t.api}/knowledge/search`, {
      token: mallory.accessToken,
      body: { query: 'warranty copper kettle seven years' },
    });
    expect(stolen.body.hits).toEqual([]);
    // Mallory cannot post into Alice's session either.
    const intruding = await request('POST', `${t.api}/chat`, {
      token: mallory.accessToken,
      body: { message: 'What does it say?', sessionId: final.sessionId, files: [filePart('x.txt', 'text/plain', Buffer.from('planted'))] },
    });
    expect(intruding.status).toBe(404);
  });

  test('the AI SDK edge takes the UI message’s file part and streams source-document parts before the text', async () => {
    const notes = Buffer.from('# Parking\n\nVisitors park on level minus two, behind the blue door.\n');
    const res = await fetch(`${t.api}/chat/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.accessToken}`, 'x-vercel-ai-ui-message-stream': 'v1', 'content-type': 'application/json' },
      body: JSON.stringify({
        id: `files-${Math.random().toString(36).slice(2)}`,
        messages: [
          {
            id: 'u1',
            role: 'user',
            parts: [filePart('visitors.md', 'text/markdown', notes), { type: 'text', text: 'Where do visitors park?' }],
          },
        ],
      }),
    });
    expect(res.status).toBe(200);
    const chunks = (await res.text())
      .split('\n')
      .filter((line) => line.startsWith('data: ') && line !== 'data: [DONE]')
      .map((line) => JSON.parse(line.slice(6)) as { type: string; [key: string]: unknown });
    const source = chunks.find((chunk) => chunk.type === 'source-document');
    expect(source).toMatchObject({ title: 'visitors.md', mediaType: 'text/markdown' });
    const text = chunks
      .filter((chunk) => chunk.type === 'text-delta')
      .map((chunk) => chunk.delta)
      .join('');
    expect(text).toContain('level minus two');
    expect(chunks.indexOf(source!)).toBeLessThan(chunks.findIndex((chunk) => chunk.type === 'text-delta'));
  });

  test('bad files are refused before anything is written: over the cap 413, unsupported or empty 415, not a data URL 400', async () => {
    const sessionsBefore = (await request('GET', `${t.api}/chat/sessions`, { token: mallory.accessToken })).body.sessions.length;
    const send = (files: unknown[]) =>
      request('POST', `${t.api}/chat`, { token: mallory.accessToken, body: { message: 'Read this', files } });

    const big = await send([filePart('big.txt', 'text/plain', Buffer.alloc(MAX_FILE_BYTES + 1, 'a'))]);
    expect(big.status).toBe(413);
    expect(big.body.error).toMatchObject({ code: 'file_too_large', details: { limit: MAX_FILE_BYTES } });

    const picture = await send([
      filePart('cat.pdf', 'application/pdf', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0])),
    ]);
    expect(picture.status).toBe(415);
    expect(picture.body.error.code).toBe('unsupported_file');
    const empty = await send([filePart('empty.txt', 'text/plain', Buffer.alloc(0))]);
    expect(empty.status).toBe(415);

    const remote = await send([{ type: 'file', mediaType: 'text/plain', url: 'http://169.254.169.254/latest/meta-data/' }]);
    expect(remote.status).toBe(400);
    const garbled = await send([{ type: 'file', mediaType: 'text/plain', url: 'data:text/plain;base64,@@not base64@@' }]);
    expect(garbled.status).toBe(400);
    const tooMany = await send(Array.from({ length: 5 }, (_, i) => filePart(`f${i}.txt`, 'text/plain', Buffer.from('x'))));
    expect(tooMany.status).toBe(400);

    expect((await request('GET', `${t.api}/chat/sessions`, { token: mallory.accessToken })).body.sessions).toHaveLength(sessionsBefore);
    expect(await sessionBases(mallory)).toEqual([]);
  });

  test('a chatflow takes no files: 400, nothing written', async () => {
    const flow = await request('POST', `${t.api}/flows`, {
      token: alice.accessToken,
      body: { type: 'chatflow', name: 'No files', definition: { systemPrompt: 'Hi.' } },
    });
    const res = await fetch(`${t.api}/flows/${flow.body.flow.id}/chat/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.accessToken}`, 'x-vercel-ai-ui-message-stream': 'v1', 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'flow-files',
        messages: [
          { id: 'u1', role: 'user', parts: [filePart('a.txt', 'text/plain', Buffer.from('hello')), { type: 'text', text: 'Hi' }] },
        ],
      }),
    });
    expect(res.status).toBe(400);
  });
});

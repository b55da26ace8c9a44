import { startTestApp, type TestApp } from '../support/app';
import { makeDocx, makePdf, multipart } from '../support/documents';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/** Small caps so an over-cap file is cheap to send. */
const MAX_FILE_BYTES = 300_000;

describe('knowledge bases: upload, ingestion on the knowledge queue, hybrid search, access, bad input', () => {
  let t: TestApp;
  let owner: TestUser;
  let stranger: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ env: { KNOWLEDGE_MAX_FILE_BYTES: String(MAX_FILE_BYTES) } });
    [owner, stranger] = await Promise.all([registerUser(t.api, 'Librarian'), registerUser(t.api, 'Stranger')]);
  });

  afterAll(async () => {
    await t.stop();
  });

  const createBase = async (user: TestUser, name: string): Promise<string> => {
    const created = await request('POST', `${t.api}/knowledge/bases`, { token: user.accessToken, body: { name } });
    expect(created.status).toBe(201);
    return created.body.base.id as string;
  };

  const upload = async (user: TestUser, baseId: string, files: { name: string; type?: string; bytes: Buffer }[]) => {
    const { body, contentType } = multipart(files);
    const response = await fetch(`${t.api}/knowledge/bases/${baseId}/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': contentType },
      body: new Uint8Array(body),
    });
    return {
      status: response.status,
      body: (await response.json()) as {
        documents: { id: string; status: string; error: string | null }[];
        error?: { code: string; message: string; details?: unknown };
      },
    };
  };

  const settledDocument = (user: TestUser, id: string) =>
    eventually(
      () => request('GET', `${t.api}/knowledge/documents/${id}`, { token: user.accessToken }),
      (response) => ['ready', 'failed'].includes(response.body.document?.status),
      30_000,
    ).then((response) => response.body.document);

  const search = (user: TestUser, body: Record<string, unknown>) =>
    request('POST', `${t.api}/knowledge/search`, { token: user.accessToken, body });

  test('given a PDF, a DOCX and a Markdown file, each is ingested and a search cites the right document, page and section', async () => {
    const baseId = await createBase(owner, 'Handbook');
    const pdf = makePdf([
      ['Welcome to the Acme handbook.', 'Office hours are nine to five.'],
      ['Refund policy: customers may return a zebra lamp within 30 days for a full refund.'],
    ]);
    const docx = await makeDocx('Shipping', ['Parcels to Norway travel by sea freight and take twelve days.']);
    const markdown = Buffer.from(
      '# Security\n\nRotate the vault passphrase every quarter.\n\n# Holidays\n\nThe office closes on midsummer.\n',
    );

    const uploaded = await upload(owner, baseId, [
      { name: 'handbook.pdf', type: 'application/pdf', bytes: pdf },
      { name: 'shipping.docx', bytes: docx },
      { name: 'notes.md', type: 'text/markdown', bytes: markdown },
    ]);

    expect(uploaded.status).toBe(201);
    expect(uploaded.body.documents.map((document) => document.status)).toEqual(['queued', 'queued', 'queued']);
    const [pdfDoc, docxDoc, mdDoc] = await Promise.all(uploaded.body.documents.map((document) => settledDocument(owner, document.id)));
    expect(pdfDoc).toMatchObject({ status: 'ready', mediaType: 'application/pdf', error: null });
    expect(docxDoc).toMatchObject({
      status: 'ready',
      mediaType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    });
    expect(mdDoc).toMatchObject({ status: 'ready', mediaType: 'text/markdown' });
    const pdfChunks = await request('GET', `${t.api}/knowledge/documents/${pdfDoc.id}/chunks`, { token: owner.accessToken });
    expect(pdfChunks.body.chunks.map((chunk: { page: number }) => chunk.page)).toEqual([1, 2]);
    expect(pdfDoc.chunkCount).toBe(2);

    const refund = await search(owner, { query: 'How many days to return a zebra lamp for a refund?' });
    expect(refund.status).toBe(200);
    expect(refund.body.hits[0]).toMatchObject({ documentId: pdfDoc.id, documentName: 'handbook.pdf', page: 2 });
    expect(refund.body.hits[0].text).toContain('zebra lamp');

    const shipping = await search(owner, { query: 'sea freight to Norway', limit: 3 });
    expect(shipping.body.hits[0]).toMatchObject({ documentId: docxDoc.id, section: 'Shipping' });

    const vault = await search(owner, { query: 'vault passphrase rotation', mediaTypes: ['text/markdown'] });
    expect(vault.body.hits.every((hit: { documentId: string }) => hit.documentId === mdDoc.id)).toBe(true);
    expect(vault.body.hits[0]).toMatchObject({ section: 'Security' });
  });

  test("given another user's base and documents, the stranger can neither read, change nor retrieve them", async () => {
    const baseId = await createBase(owner, 'Secrets');
    const uploaded = await upload(owner, baseId, [
      { name: 'secret.txt', type: 'text/plain', bytes: Buffer.from('The launch code for project heliotrope is amber falcon.') },
    ]);
    const document = await settledDocument(owner, uploaded.body.documents[0].id);
    expect(document.status).toBe('ready');

    const asStranger = { token: stranger.accessToken };
    expect((await request('GET', `${t.api}/knowledge/bases/${baseId}`, asStranger)).status).toBe(404);
    expect((await request('GET', `${t.api}/knowledge/documents/${document.id}`, asStranger)).status).toBe(404);
    expect((await request('GET', `${t.api}/knowledge/documents/${document.id}/chunks`, asStranger)).status).toBe(404);
    expect((await request('DELETE', `${t.api}/knowledge/documents/${document.id}`, asStranger)).status).toBe(404);
    expect((await upload(stranger, baseId, [{ name: 'x.txt', bytes: Buffer.from('intruder text') }])).status).toBe(404);
    // Naming the owner's base or document in the filters does not widen the search.
    const stolen = await search(stranger, { query: 'launch code heliotrope amber falcon', baseIds: [baseId], documentIds: [document.id] });
    expect(stolen.status).toBe(200);
    expect(stolen.body.hits).toEqual([]);
    const unfiltered = await search(stranger, { query: 'launch code heliotrope amber falcon' });
    expect(unfiltered.body.hits).toEqual([]);
    // The owner still finds it.
    expect((await search(owner, { query: 'launch code heliotrope' })).body.hits[0]).toMatchObject({ documentId: document.id });
  });

  test('given bad files, each document fails with its reason and stores no chunk', async () => {
    const baseId = await createBase(owner, 'Bad input');
    const bomb = await makeDocx('Bomb', ['tiny'], { 'word/media/zeros.bin': Buffer.alloc(30 * 1024 * 1024) });
    const files = [
      { name: 'empty.txt', bytes: Buffer.alloc(0) },
      { name: 'picture.pdf', type: 'application/pdf', bytes: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]) },
      { name: 'locked.pdf', bytes: makePdf([['top secret']], { encrypted: true }) },
      { name: 'broken.pdf', bytes: Buffer.from('%PDF-1.4\nthis is not a pdf at all\n%%EOF') },
      { name: 'bomb.docx', bytes: bomb },
    ];

    const uploaded = await upload(owner, baseId, files);

    expect(uploaded.status).toBe(201);
    const documents = await Promise.all(uploaded.body.documents.map((document) => settledDocument(owner, document.id)));
    const reasons = Object.fromEntries(documents.map((document) => [document.name, document.error]));
    expect(documents.every((document) => document.status === 'failed' && document.chunkCount === 0)).toBe(true);
    expect(reasons['empty.txt']).toMatch(/empty/);
    expect(reasons['picture.pdf']).toMatch(/Unsupported file type/);
    expect(reasons['locked.pdf']).toMatch(/encrypted/);
    expect(reasons['broken.pdf']).toMatch(/cannot be read/);
    expect(reasons['bomb.docx']).toMatch(/zip bomb/);
    for (const document of documents) expect(await t.app.repos.knowledge.countChunks(document.id)).toBe(0);
  });

  test('given a file over the size cap among good ones, the upload is 413 naming it and nothing of it is stored', async () => {
    const baseId = await createBase(owner, 'Too big');

    const uploaded = await upload(owner, baseId, [
      { name: 'fine.txt', bytes: Buffer.from('A small file that would be fine alone.') },
      { name: 'big.txt', bytes: Buffer.alloc(MAX_FILE_BYTES + 1, 'a') },
    ]);

    expect(uploaded.status).toBe(413);
    expect(uploaded.body.error).toMatchObject({
      code: 'file_too_large',
      message: expect.stringContaining('big.txt'),
      details: { limit: MAX_FILE_BYTES, files: [{ name: 'big.txt', size: MAX_FILE_BYTES + 1 }] },
    });
    const base = await request('GET', `${t.api}/knowledge/bases/${baseId}`, { token: owner.accessToken });
    expect(base.body.documents).toEqual([]);
    expect(base.body.base.documentCount).toBe(0);
  });

  test('given a URL to a private address, the document fails with the reason and nothing is fetched', async () => {
    const baseId = await createBase(owner, 'Web');
    for (const url of ['http://127.0.0.1:6379/', 'http://169.254.169.254/latest/meta-data/', 'http://localhost/', 'file:///etc/passwd']) {
      const added = await request('POST', `${t.api}/knowledge/bases/${baseId}/urls`, { token: owner.accessToken, body: { url } });
      expect(added.status).toBe(201);
      expect(added.body.document).toMatchObject({ status: 'failed', error: expect.stringMatching(/may not be fetched/) });
    }
  });

  test('given a re-ingestion and a deletion, no chunk of an old revision or a deleted document is left', async () => {
    const baseId = await createBase(owner, 'Lifecycle');
    const uploaded = await upload(owner, baseId, [
      { name: 'a.md', type: 'text/markdown', bytes: Buffer.from('# One\n\nfirst section text\n\n# Two\n\nsecond section text\n') },
    ]);
    const id = uploaded.body.documents[0].id;
    expect(await settledDocument(owner, id)).toMatchObject({ status: 'ready', chunkCount: 2 });

    // An upload keeps its bytes only until it is ingested: a re-ingestion is refused with the reason.
    const again = await request('POST', `${t.api}/knowledge/documents/${id}/reingest`, { token: owner.accessToken });
    expect(again.status).toBe(409);

    const removed = await request('DELETE', `${t.api}/knowledge/documents/${id}`, { token: owner.accessToken });
    expect(removed.status).toBe(204);
    expect(await t.app.repos.knowledge.countChunks(id)).toBe(0);
    expect((await request('GET', `${t.api}/knowledge/documents/${id}`, { token: owner.accessToken })).status).toBe(404);
  });
});

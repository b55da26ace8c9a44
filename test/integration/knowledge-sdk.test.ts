import { randomUUID } from 'node:crypto';
import { createSwitchboardClient, type KnowledgeProgress } from '@switchboard/client';
import { startTestApp, type TestApp } from '../support/app';
import { makePdf } from '../support/documents';

/**
 * The TypeScript SDK's knowledge methods against a real server: a base, an upload (multipart
 * through the SDK's transport), the progress stream to `ready`, chunks, search, re-ingest refused
 * for an upload, deletes; another user's base is the API's 404 error.
 */
describe('SDK: knowledge bases', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  const signedIn = async (name: string) => {
    const client = createSwitchboardClient({ baseUrl: t.url });
    await client.auth.register({ email: `${name}-${randomUUID().slice(0, 8)}@example.test`, password: 'correct horse battery', name });
    return client;
  };

  test('create, upload, follow progress to ready, read chunks, search, delete', async () => {
    const client = await signedIn('kbsdk');
    const { base } = await client.knowledge.bases.create({ name: 'Handbook', description: 'Policies' });
    const pdf = makePdf([['Office hours are nine to five.'], ['Refunds take fourteen days after the return arrives.']]);

    const { documents } = await client.knowledge.upload(base.id, [
      { name: 'handbook.pdf', type: 'application/pdf', data: new Uint8Array(pdf) },
    ]);
    expect(documents).toEqual([expect.objectContaining({ name: 'handbook.pdf', status: 'queued', mediaType: 'application/pdf' })]);
    const seen: KnowledgeProgress[] = [];
    const last = await client.knowledge.progress(documents[0].id).finished((event) => void seen.push(event));
    expect(last).toMatchObject({ documentId: documents[0].id, status: 'ready', chunksStored: 2, chunksTotal: 2 });
    expect(seen.length).toBeGreaterThanOrEqual(1);

    const { chunks } = await client.knowledge.chunks(documents[0].id);
    expect(chunks.map((chunk) => chunk.page)).toEqual([1, 2]);
    const { hits } = await client.knowledge.search({ query: 'How long do refunds take?', baseIds: [base.id], limit: 1 });
    expect(hits[0]).toMatchObject({ documentId: documents[0].id, documentName: 'handbook.pdf', mediaType: 'application/pdf', page: 2 });
    expect((await client.knowledge.bases.get(base.id)).documents).toHaveLength(1);
    expect((await client.knowledge.bases.list()).bases.map((row) => row.id)).toContain(base.id);
    await expect(client.knowledge.reingest(documents[0].id)).rejects.toMatchObject({ status: 409, code: 'document_bytes_gone' });

    await client.knowledge.deleteDocument(documents[0].id);
    await expect(client.knowledge.document(documents[0].id)).rejects.toMatchObject({ status: 404, code: 'not_found' });
    await client.knowledge.bases.delete(base.id);
    expect((await client.knowledge.bases.list()).bases).toEqual([]);
  });

  test("a URL to a private address is failed on the document; another user's base is 404", async () => {
    const owner = await signedIn('kbowner');
    const other = await signedIn('kbother');
    const { base } = await owner.knowledge.bases.create({ name: 'Private' });
    const { document } = await owner.knowledge.addUrl(base.id, { url: 'http://127.0.0.1:1/secret' });
    expect(document).toMatchObject({ status: 'failed', error: expect.stringMatching(/^The URL may not be fetched/) });
    await expect(other.knowledge.bases.get(base.id)).rejects.toMatchObject({ status: 404, code: 'not_found' });
    await expect(other.knowledge.upload(base.id, [{ name: 'x.txt', data: new Uint8Array([104, 105]) }])).rejects.toMatchObject({
      status: 404,
    });
  });
});

import { startTestApp, type TestApp } from '../support/app';
import { multipart } from '../support/documents';
import { registerUser, request, type TestUser } from '../support/http';

/** Small plan caps, so every limit is cheap to reach: free is tight, pro roomier, the deployment's cap above both. */
const FREE = { maxKnowledgeFileBytes: 2_000, maxKnowledgeDocuments: 3, maxKnowledgeBases: 2 };
const PRO = { maxKnowledgeFileBytes: 8_000, maxKnowledgeDocuments: 6, maxKnowledgeBases: 4 };
const DEPLOYMENT_FILE_BYTES = 6_000;

/**
 * The knowledge caps of each tier (file size, documents per base, bases per user) under the
 * deployment's own: each refusal is a clear 4xx in the error shape and stores nothing, and a flood
 * of concurrent requests never passes a limit together. Real server, database and Redis.
 */
describe('knowledge caps per tier: file size, documents per base, bases per user', () => {
  let t: TestApp;
  let free: TestUser;
  let pro: TestUser;

  beforeAll(async () => {
    t = await startTestApp({
      env: { TIER_LIMITS: JSON.stringify({ free: FREE, pro: PRO }), KNOWLEDGE_MAX_FILE_BYTES: String(DEPLOYMENT_FILE_BYTES) },
    });
    [free, pro] = await Promise.all([registerUser(t.api, 'Freeloader'), registerUser(t.api, 'Payer')]);
    await t.app.repos.users.changePlan(pro.id, { tier: 'pro' }, { actorId: pro.id });
  });

  afterAll(() => t.stop());

  const createBase = (user: TestUser, name: string) =>
    request('POST', `${t.api}/knowledge/bases`, { token: user.accessToken, body: { name } });
  const upload = async (user: TestUser, baseId: string, files: { name: string; bytes: Buffer }[]) => {
    const { body, contentType } = multipart(files.map((file) => ({ ...file, type: 'text/plain' })));
    const res = await fetch(`${t.api}/knowledge/bases/${baseId}/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': contentType },
      body: new Uint8Array(body),
    });
    return {
      status: res.status,
      body: (await res.json()) as { documents?: unknown[]; error?: { code: string; message: string; details?: Record<string, unknown> } },
    };
  };
  const documentsIn = async (user: TestUser, baseId: string) =>
    (await request('GET', `${t.api}/knowledge/bases/${baseId}`, { token: user.accessToken })).body.documents as unknown[];
  const text = (bytes: number) => Buffer.alloc(bytes, 'word ');

  test('a file over the plan’s cap is 413 file_too_large with the limit; the deployment’s cap bounds a roomier plan', async () => {
    const freeBase = (await createBase(free, 'Sizes')).body.base.id;
    const refused = await upload(free, freeBase, [{ name: 'over.txt', bytes: text(FREE.maxKnowledgeFileBytes + 1) }]);
    expect(refused.status).toBe(413);
    expect(refused.body.error).toMatchObject({ code: 'file_too_large', details: { limit: FREE.maxKnowledgeFileBytes } });
    expect(await documentsIn(free, freeBase)).toEqual([]);
    expect((await upload(free, freeBase, [{ name: 'fits.txt', bytes: text(FREE.maxKnowledgeFileBytes) }])).status).toBe(201);

    // Pro allows 8,000 bytes, the deployment 6,000: the smaller wins.
    const proBase = (await createBase(pro, 'Sizes')).body.base.id;
    expect((await upload(pro, proBase, [{ name: 'mid.txt', bytes: text(5_000) }])).status).toBe(201);
    const overDeployment = await upload(pro, proBase, [{ name: 'big.txt', bytes: text(7_000) }]);
    expect(overDeployment.status).toBe(413);
    expect(overDeployment.body.error?.details).toMatchObject({ limit: DEPLOYMENT_FILE_BYTES });
    expect(await documentsIn(pro, proBase)).toHaveLength(1);
  });

  test('documents past the plan’s per-base cap are 409 knowledge_base_full and none of the request is stored', async () => {
    const baseId = (await createBase(free, 'Counted')).body.base.id;
    expect(
      (
        await upload(free, baseId, [
          { name: 'a.txt', bytes: text(10) },
          { name: 'b.txt', bytes: text(10) },
        ])
      ).status,
    ).toBe(201);

    const over = await upload(free, baseId, [
      { name: 'c.txt', bytes: text(10) },
      { name: 'd.txt', bytes: text(10) },
    ]);
    expect(over.status).toBe(409);
    expect(over.body.error).toMatchObject({ code: 'knowledge_base_full', details: { limit: FREE.maxKnowledgeDocuments, documents: 2 } });
    expect(await documentsIn(free, baseId)).toHaveLength(2);
    const url = await request('POST', `${t.api}/knowledge/bases/${baseId}/urls`, {
      token: free.accessToken,
      body: { url: 'https://example.com/a' },
    });
    expect(url.status).toBe(201);
    const full = await request('POST', `${t.api}/knowledge/bases/${baseId}/urls`, {
      token: free.accessToken,
      body: { url: 'https://example.com/b' },
    });
    expect(full.status).toBe(409);
    expect(await documentsIn(free, baseId)).toHaveLength(3);
  });

  test('a flood of concurrent uploads to one base never passes the cap together', async () => {
    const baseId = (await createBase(pro, 'Flood')).body.base.id;
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => upload(pro, baseId, [{ name: `f${i}.txt`, bytes: text(20) }])));
    expect(results.filter((result) => result.status === 201)).toHaveLength(PRO.maxKnowledgeDocuments);
    expect(results.filter((result) => result.status === 409)).toHaveLength(10 - PRO.maxKnowledgeDocuments);
    expect(await documentsIn(pro, baseId)).toHaveLength(PRO.maxKnowledgeDocuments);
  });

  test('bases past the plan’s cap are 403 tier_limit, also under concurrent creates; deleting one makes room', async () => {
    const user = await registerUser(t.api, 'Hoarder');
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => createBase(user, `Base ${i}`)));
    expect(results.filter((res) => res.status === 201)).toHaveLength(FREE.maxKnowledgeBases);
    const refused = results.filter((res) => res.status === 403);
    expect(refused).toHaveLength(6 - FREE.maxKnowledgeBases);
    expect(refused[0].body.error).toMatchObject({ code: 'tier_limit', details: { limit: FREE.maxKnowledgeBases } });
    const listed = await request('GET', `${t.api}/knowledge/bases`, { token: user.accessToken });
    expect(listed.body.bases).toHaveLength(FREE.maxKnowledgeBases);

    const first = results.find((res) => res.status === 201)!.body.base.id;
    expect((await request('DELETE', `${t.api}/knowledge/bases/${first}`, { token: user.accessToken })).status).toBe(204);
    expect((await createBase(user, 'Again')).status).toBe(201);
  });

  test('the caps in effect are shown to the user by GET /me', async () => {
    const res = await request('GET', `${t.api}/me`, { token: pro.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.user.limits).toMatchObject({ maxKnowledgeBases: PRO.maxKnowledgeBases });
  });
});

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { LEASE_RECOVERY_MS, LONG_JOB_LOCKS, useCluster } from '../support/cluster';
import { multipart } from '../support/documents';
import { registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { eventually, waitUntil } from '../support/wait';

/**
 * kill -9 of the worker that is ingesting a document, between two rounds of stored chunks: its
 * worker lease lapses, another worker takes the `knowledge` job, embeds only the chunks not yet
 * stored and finishes; the document is `ready` with exactly the chunks an uninterrupted ingestion
 * of the same text gives, each ordinal once. The model server is real (over HTTP); a proxy in
 * front of it holds the embeddings requests once the first round is stored, so the kill lands
 * mid-ingestion whatever the machine's speed.
 */
describe('a worker killed in the middle of a knowledge ingestion', () => {
  const cluster = useCluster('kbcrash', { ...LONG_JOB_LOCKS, LOG_LEVEL: 'info' });
  let llm: ScriptedLLM;
  let proxy: http.Server;
  /** Texts the model server has embedded; past `holdAfter` every embeddings request waits (until the kill). */
  let embedded = 0;
  let holdAfter = Infinity;
  const held: http.ServerResponse[] = [];

  beforeAll(async () => {
    llm = await startScriptedLLM();
    const upstream = new URL(llm.baseURL).origin;
    proxy = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (part: Buffer) => parts.push(part));
      req.on('end', () => {
        if (req.url?.endsWith('/embeddings')) {
          if (embedded >= holdAfter) {
            held.push(res);
            return;
          }
          const input = (JSON.parse(Buffer.concat(parts).toString()) as { input: string | string[] }).input;
          embedded += Array.isArray(input) ? input.length : 1;
        }
        void fetch(`${upstream}${req.url}`, {
          method: req.method,
          headers: { 'content-type': req.headers['content-type'] ?? 'application/json', authorization: req.headers.authorization ?? '' },
          body: req.method === 'GET' ? undefined : Buffer.concat(parts),
        }).then(
          async (answer) =>
            res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? '' }).end(await answer.text()),
          () => res.writeHead(502).end(),
        );
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    held.forEach((res) => res.destroy());
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
    await llm.close();
  });

  /** About a hundred chunks of distinct text: several rounds of 32. */
  const text = Array.from(
    { length: 90 },
    (_, section) =>
      `Section ${section}. ` +
      Array.from({ length: 60 }, (_, n) => `Item ${section}-${n} covers topic ${(section * 61 + n * 7) % 997} in detail.`).join(' '),
  ).join('\n\n');

  test('another worker finishes it: the document is ready with the exact chunk count, each ordinal once', async () => {
    const modelEnv = {
      OPENAI_BASE_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/v1`,
      OPENAI_API_KEY: 'test',
      LLM_MODEL: 'scripted-model',
    };
    const api = await cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0', ...modelEnv });
    const first = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Ingester');
    const db = new Client({ connectionString: cluster.databaseUrl() });
    await db.connect();
    try {
      const stored = async (documentId: string) => {
        const result = await db.query<{ rows: number; ordinals: number; top: number | null }>(
          'select count(*)::int as rows, count(distinct (revision, ordinal))::int as ordinals, max(ordinal) as top from knowledge_chunks where document_id = $1',
          [documentId],
        );
        return result.rows[0];
      };

      // The first round (32 chunks) is embedded; every later embeddings request waits: the worker stops mid-ingestion.
      holdAfter = 32;
      const crashed = await uploadText(base, user, 'manual.txt', text);
      await eventually(
        () => stored(crashed),
        (now) => now.rows >= 32,
        60_000,
      );
      await waitUntil(() => held.length > 0, 30_000);
      const atKill = await stored(crashed);
      await first.stop('SIGKILL');
      expect((await documentOf(base, user, crashed)).status).not.toBe('ready');

      holdAfter = Infinity;
      await cluster.spawn({ SWITCHBOARD_ROLES: 'worker', ...modelEnv });
      const done = await eventually(
        () => documentOf(base, user, crashed),
        (document) => document.status === 'ready' || document.status === 'failed',
        LEASE_RECOVERY_MS + 60_000,
      );
      expect(done).toMatchObject({ status: 'ready', error: null });

      // The same text ingested without a crash gives the count to match.
      const control = await uploadText(base, user, 'manual-control.txt', text);
      const reference = await eventually(
        () => documentOf(base, user, control),
        (document) => document.status === 'ready',
        60_000,
      );
      expect(atKill.rows).toBeGreaterThanOrEqual(32);
      expect(atKill.rows).toBeLessThan(reference.chunkCount);
      expect(done.chunkCount).toBe(reference.chunkCount);
      expect(await stored(crashed)).toEqual({ rows: reference.chunkCount, ordinals: reference.chunkCount, top: reference.chunkCount - 1 });
      // What retrieval sees: every chunk once, in order, the text whole to its last words.
      const chunks = await request('GET', `${base}/knowledge/documents/${crashed}/chunks`, { token: user.accessToken });
      const rows = chunks.body.chunks as Array<{ ordinal: number; text: string }>;
      expect(rows.map((chunk) => chunk.ordinal)).toEqual(Array.from({ length: reference.chunkCount }, (_, n) => n));
      expect(rows[0].text).toContain('Section 0. Item 0-0');
      expect(rows.at(-1)!.text).toContain('Item 89-59 covers topic');
    } finally {
      await db.end();
    }
  }, 240_000);
});

async function uploadText(base: string, user: TestUser, name: string, text: string): Promise<string> {
  const created = await request('POST', `${base}/knowledge/bases`, { token: user.accessToken, body: { name: `Base for ${name}` } });
  const { body, contentType } = multipart([{ name, type: 'text/plain', bytes: Buffer.from(text) }]);
  const uploaded = await fetch(`${base}/knowledge/bases/${created.body.base.id}/documents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': contentType },
    body: new Uint8Array(body),
  });
  expect(uploaded.status).toBe(201);
  return ((await uploaded.json()) as { documents: { id: string }[] }).documents[0].id;
}

async function documentOf(base: string, user: TestUser, id: string) {
  const response = await request('GET', `${base}/knowledge/documents/${id}`, { token: user.accessToken });
  return response.body.document as { status: string; error: string | null; chunkCount: number };
}

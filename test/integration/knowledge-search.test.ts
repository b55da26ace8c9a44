import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { openDatabase, type Database } from '../../src/models/database';
import { createRepositories, type Repositories } from '../../src/models';
import { KnowledgeRepository, type KnowledgeDocumentRow } from '../../src/models/knowledge-repository';
import { TEXT_MATCHES_PER_TERM, TEXT_MATCHES_SCANNED } from '../../src/models/knowledge-search';
import { createTestDatabase, type TestDatabase } from '../support/database';

/**
 * Hybrid search at the repository, on every backend we can reach (in-memory PGlite, which has
 * pgvector, always; the PostgreSQL server when DATABASE_URL is set, with its HNSW index or its
 * exact scan). The exact-scan threshold is lowered so that small sets take the index path.
 */
const backends: Array<{ name: string; create(): Promise<TestDatabase> }> = [
  { name: 'PGlite (in memory)', create: async () => ({ url: 'memory://', drop: async () => undefined }) },
];
if (process.env.DATABASE_URL) backends.push({ name: 'PostgreSQL server', create: () => createTestDatabase({ migrated: true }) });

const DIMS = 16;

/** Mulberry32: the same vectors on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
const randomUnit = (random: () => number): number[] => {
  const vector = Array.from({ length: DIMS }, () => random() * 2 - 1);
  const norm = Math.hypot(...vector);
  return vector.map((value) => value / norm);
};
const dot = (a: readonly number[], b: readonly number[]) => a.reduce((sum, value, i) => sum + value * b[i], 0);

describe.each(backends)('knowledge search on $name', (backend) => {
  let testDb: TestDatabase;
  let database: Database;
  let repos: Repositories;
  /** Vectors go through the HNSW index past 50 chunks in scope. */
  let knowledge: KnowledgeRepository;

  beforeAll(async () => {
    testDb = await backend.create();
    database = await openDatabase({ url: testDb.url, dataDir: path.join(os.tmpdir(), 'switchboard-knowledge-search-test') });
    repos = createRepositories(database.db);
    knowledge = new KnowledgeRepository(database.db, { exactScopeChunks: 50 });
  });

  afterAll(async () => {
    await database.close();
    await testDb.drop();
  });

  const reader = async (name: string) => {
    const user = await repos.users.create({ email: `${name}-${Date.now()}-${Math.random()}@example.com`, name, passwordHash: 'h' });
    const base = await knowledge.createBase(user!.id, `${name}'s library`, '');
    return { userId: user!.id, baseId: base.id };
  };

  /** A ready document of `owner` holding one chunk per text, with its vector. */
  const documentOf = async (
    owner: { userId: string; baseId: string },
    name: string,
    chunks: Array<{ text: string; vector: number[] }>,
    mediaType = 'text/plain',
  ): Promise<KnowledgeDocumentRow> => {
    const document = await knowledge.createDocument({ baseId: owner.baseId, ownerId: owner.userId, name, source: 'upload', mediaType });
    await knowledge.storeChunks(
      document,
      1,
      chunks.map((chunk, ordinal) => ({ ordinal, text: chunk.text, page: null, section: null, tokens: 5, embedding: chunk.vector })),
    );
    await knowledge.markReady(document.id, 1);
    return document;
  };

  test('given a reader whose chunks are a tenth of the table, through the index they get their own ten nearest, as an exact scan ranks them', async () => {
    const random = seeded(7);
    const crowd = await reader('Crowd');
    const few = await reader('Few');
    for (let d = 0; d < 20; d += 1)
      await documentOf(
        crowd,
        `crowd-${d}.txt`,
        Array.from({ length: 100 }, (_, i) => ({ text: `crowd passage ${d} ${i}`, vector: randomUnit(random) })),
      );
    const mine = Array.from({ length: 200 }, (_, i) => ({ text: `own passage ${i}`, vector: randomUnit(random) }));
    await documentOf(few, 'own-a.txt', mine.slice(0, 100));
    await documentOf(few, 'own-b.txt', mine.slice(100));

    let found = 0;
    for (let q = 0; q < 10; q += 1) {
      const query = randomUnit(random);
      const hits = await knowledge.search({ readerId: few.userId }, { text: '', vector: query, limit: 10 });
      const exact = mine
        .map((chunk) => ({ text: chunk.text, similarity: dot(chunk.vector, query) }))
        .sort((a, b) => b.similarity - a.similarity)
        .slice(0, 10)
        .map((chunk) => chunk.text);

      expect(hits).toHaveLength(10);
      expect(hits.every((hit) => hit.baseId === few.baseId)).toBe(true);
      found += hits.filter((hit) => exact.includes(hit.text)).length;
    }
    expect(found / 100).toBeGreaterThanOrEqual(0.95);
  });

  test('given a common word in more chunks than a word brings, the chunk with a rare word stored after them is still found; stop words take no word’s place', async () => {
    const owner = await reader('Words');
    const flat = randomUnit(seeded(11));
    const common = Array.from({ length: 3 * TEXT_MATCHES_PER_TERM }, (_, i) => ({ text: `the lamp manual, part ${i}`, vector: flat }));
    await documentOf(owner, 'manual.txt', common);
    // Every vector is the same, so the vectors rank by age and this chunk, the newest, only by its words.
    await documentOf(owner, 'zebra.txt', [{ text: 'how to return a zebra lamp for a refund', vector: flat }]);

    // Eight distinct stop words first: the full text still looks for "zebra" and "lamp".
    const hits = await knowledge.search(
      { readerId: owner.userId },
      { text: 'how do I do that if it is the zebra lamp', vector: flat, limit: 50 },
    );

    expect(hits.map((hit) => hit.documentName)).toContain('zebra.txt');
  });

  test('given another reader whose chunks come first in a common word’s matches, a later small scope gets none of its chunks through that word, but does through a rare one', async () => {
    const flat = randomUnit(seeded(31));
    const near = randomUnit(seeded(32));
    const far = near.map((value) => -value);
    const crowd = await reader('Earlier');
    const late = await reader('Later');
    // More chunks with the common word than a term's matches are read, all stored before the later reader's.
    for (let part = 0; part * 300 < TEXT_MATCHES_SCANNED + 200; part += 1)
      await documentOf(
        crowd,
        `crowd-${part}.txt`,
        Array.from({ length: 300 }, (_, i) => ({ text: `the gadget handbook, section ${part}.${i}`, vector: flat })),
      );
    await documentOf(late, 'mine.txt', [
      { text: 'gadget gadget gadget', vector: far },
      { text: 'a note on quokka care', vector: near },
    ]);

    const common = await knowledge.search({ readerId: late.userId }, { text: 'gadget', vector: near, limit: 10 });
    const rare = await knowledge.search({ readerId: late.userId }, { text: 'quokka', vector: far, limit: 10 });

    // "gadget" brings nothing: its first matches are all another reader's, so the vectors alone rank.
    expect(common.map((hit) => hit.text)).toEqual(['a note on quokka care', 'gadget gadget gadget']);
    // "quokka" has few matches: the full text finds it and lifts it over the nearer vector.
    expect(rare.map((hit) => hit.text)).toEqual(['a note on quokka care', 'gadget gadget gadget']);
  });

  test('given filters on the index path, a search keeps to the named documents, media types and metadata, never another reader’s', async () => {
    const random = seeded(21);
    const owner = await reader('Filters');
    const stranger = await reader('Stranger');
    const chunks = () => Array.from({ length: 40 }, (_, i) => ({ text: `filter passage ${i}`, vector: randomUnit(random) }));
    const pdf = await documentOf(owner, 'guide.pdf', chunks(), 'application/pdf');
    const markdown = await documentOf(owner, 'notes.md', chunks(), 'text/markdown');
    await documentOf(stranger, 'secret.txt', chunks());
    await repos.db.execute(sql`update knowledge_documents set metadata = '{"team": "support"}'::jsonb where id = ${markdown.id}`);
    const query = { text: 'filter passage', vector: randomUnit(random), limit: 50 };

    const named = await knowledge.search({ readerId: owner.userId, documentIds: [pdf.id] }, query);
    const typed = await knowledge.search({ readerId: owner.userId, mediaTypes: ['text/markdown'] }, query);
    const tagged = await knowledge.search({ readerId: owner.userId, metadata: { team: 'support' } }, query);
    const everything = await knowledge.search({ readerId: owner.userId }, query);
    const notAnId = await knowledge.search({ readerId: owner.userId, documentIds: ['not-a-uuid'] }, query);
    const othersBase = await knowledge.search({ readerId: owner.userId, baseIds: [stranger.baseId] }, query);

    expect(named.length).toBeGreaterThan(10);
    expect(named.every((hit) => hit.documentId === pdf.id)).toBe(true);
    expect(typed.length).toBeGreaterThan(10);
    expect(typed.every((hit) => hit.documentId === markdown.id)).toBe(true);
    expect(tagged.every((hit) => hit.documentId === markdown.id)).toBe(true);
    expect(everything.length).toBeGreaterThan(10);
    expect(everything.every((hit) => hit.baseId === owner.baseId)).toBe(true);
    expect(notAnId).toEqual([]);
    expect(othersBase).toEqual([]);
  });
});

import { openDatabase, type Database } from '../../src/models/database';
import { createRepositories, type Repositories } from '../../src/models';
import { KnowledgeRepository } from '../../src/models/knowledge-repository';
import { KnowledgeCorpus, seeded, type Place } from './knowledge-corpus';

/** Chunks per document: a 50-page PDF of ~500 words a page makes about 100 chunks of 400 tokens. */
export const CHUNKS_PER_DOCUMENT = 100;
/** Words per stored chunk (about 330 tokens). */
const CHUNK_WORDS = 250;

/** One reader's part of the loaded set: their base and every chunk's place and vector, in insertion order. */
export interface LoadedTenant {
  userId: string;
  baseId: string;
  chunks: number;
  places: Place[];
  vectors: Float32Array[];
}

export interface LoadedSet {
  database: Database;
  repos: Repositories;
  /** Seconds: storing the chunks (documents, rows, full-text vectors), then the HNSW index in one pass. */
  loadSeconds: number;
  indexSeconds: number;
  tenants: LoadedTenant[];
}

/**
 * A database holding `chunkCounts[i]` chunks for reader i (each in one base of theirs), written
 * through the repository as ingestion writes them (documents of 100 chunks, one insert per
 * document, each document then made ready), with the HNSW index made once at the end rather than
 * grown row by row. The corpus is seeded: the same chunks on every run.
 */
export async function loadKnowledgeSet(options: {
  url: string;
  dataDir: string;
  chunkCounts: readonly number[];
  corpus: KnowledgeCorpus;
  exactScopeChunks?: number;
  log: (line: string) => void;
}): Promise<LoadedSet> {
  const database = await openDatabase({ url: options.url, dataDir: options.dataDir });
  const repos = createRepositories(database.db);
  repos.knowledge = new KnowledgeRepository(database.db, { exactScopeChunks: options.exactScopeChunks });
  const loader = new KnowledgeRepository(database.db, { vectorIndexOnWrite: false });
  const { corpus } = options;
  const random = seeded(corpus.shape.seed + 1);
  const tenants: LoadedTenant[] = [];
  const started = Date.now();
  for (const [index, count] of options.chunkCounts.entries()) {
    const user = await repos.users.create({
      email: `reader${index}-${Date.now()}@bench.local`,
      name: `Reader ${index}`,
      passwordHash: 'x',
    });
    if (!user) throw new Error('knowledge: the bench user could not be made');
    const base = await repos.knowledge.createBase(user.id, `Library ${index}`, '');
    const tenant: LoadedTenant = { userId: user.id, baseId: base.id, chunks: count, places: [], vectors: [] };
    for (let start = 0; start < count; start += CHUNKS_PER_DOCUMENT) {
      const size = Math.min(CHUNKS_PER_DOCUMENT, count - start);
      const document = await repos.knowledge.createDocument({
        baseId: base.id,
        ownerId: user.id,
        name: `manual-${index}-${start / CHUNKS_PER_DOCUMENT}.pdf`,
        source: 'upload',
        mediaType: 'application/pdf',
        bytes: Buffer.from('%PDF-1.4'),
      });
      const chunks = Array.from({ length: size }, (_, ordinal) => {
        const place = corpus.place(random);
        const embedding = corpus.vector(place, random);
        tenant.places.push(place);
        tenant.vectors.push(Float32Array.from(embedding));
        const text = corpus.words(place, CHUNK_WORDS, random).join(' ');
        return { ordinal, text, page: Math.floor(ordinal / 2) + 1, section: null, tokens: 330, embedding };
      });
      await loader.storeChunks(document, 1, chunks);
      await repos.knowledge.markReady(document.id, 1);
      const done = tenants.reduce((sum, t) => sum + t.chunks, 0) + start + size;
      if (done % 10_000 === 0)
        options.log(`knowledge: ${done.toLocaleString('en-US')} chunks stored (${Math.round((Date.now() - started) / 1000)} s)`);
    }
    tenants.push(tenant);
  }
  const loadSeconds = (Date.now() - started) / 1000;
  const indexed = Date.now();
  await loader.buildVectorIndex(corpus.shape.dimensions);
  return { database, repos, loadSeconds, indexSeconds: (Date.now() - indexed) / 1000, tenants };
}

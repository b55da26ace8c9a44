import { createTestDatabase } from '../../test/support/database';
import type { BenchContext } from '../lib/context';
import { measureIngestion } from '../lib/knowledge-ingest';
import { KnowledgeCorpus } from '../lib/knowledge-corpus';
import { measureRetrieval } from '../lib/knowledge-retrieval';
import { loadKnowledgeSet } from '../lib/knowledge-store';

export interface KnowledgeOptions {
  /** PDFs ingested through the queues, and pages in each. */
  documents: number;
  pages: number;
  /** Chunks in the reader's scope; `otherChunks` more in the same table, another user's. */
  chunks: number;
  otherChunks: number;
  /** Measured queries per reader through a vector index, and by an exact scan (a PostgreSQL server without pgvector: seconds each at 100,000 chunks). */
  queries: number;
  exactScanQueries: number;
  warmups: number;
  /** The scope size past which vectors go through the index (the product's unless a smoke run lowers it to reach the index path). */
  exactScopeChunks?: number;
}

/**
 * Knowledge bases, measured: documents ingested per second per worker core (PDFs through the
 * `knowledge` and `embeddings` queues), then retrieval at `chunks` chunks on the embedded default
 * (PGlite with pgvector: the HNSW index) and on the PostgreSQL server (pgvector's HNSW when it has
 * the extension, else the exact scan): hybrid search latency, and recall@10 of the vector ranking
 * against an exact scan. Each reader's searches see only their own chunks; the other user's share
 * the table, so the index path is also measured for a scope that is a small part of the table.
 */
export async function knowledgeScenario(ctx: BenchContext, options: KnowledgeOptions) {
  const corpus = new KnowledgeCorpus();
  ctx.log(`knowledge: ingesting ${options.documents} PDF(s) of ${options.pages} pages`);
  const ingestion = await measureIngestion(ctx, corpus, { documents: options.documents, pages: options.pages });
  ctx.log(`knowledge: ${ingestion.documentsPerWorkerCoreSecond} documents/s per worker core`);

  const retrievalOn = async (label: 'embedded' | 'postgres', url: string) => {
    ctx.log(`knowledge: storing ${(options.chunks + options.otherChunks).toLocaleString('en-US')} chunks on ${label}`);
    const set = await loadKnowledgeSet({
      url,
      dataDir: ctx.dataDir,
      chunkCounts: [options.chunks, options.otherChunks],
      corpus,
      exactScopeChunks: options.exactScopeChunks,
      log: ctx.log,
    });
    try {
      ctx.log(`knowledge: stored in ${set.loadSeconds.toFixed(0)} s, HNSW index in ${set.indexSeconds.toFixed(0)} s`);
      const index = await set.repos.knowledge.vectorIndex();
      // An exact scan is exact: its recall is 1 by construction and its queries take seconds, so only the hybrid search is timed.
      const exact = index === 'exact-scan';
      const [reader, other] = await measureRetrieval(set, corpus, {
        queries: exact ? options.exactScanQueries : options.queries,
        warmups: options.warmups,
        seed: 1_000,
        recall: !exact,
        log: ctx.log,
      });
      return {
        index,
        loadSeconds: Math.round(set.loadSeconds),
        indexSeconds: Math.round(set.indexSeconds),
        reader,
        other,
      };
    } finally {
      await set.database.close();
    }
  };

  const embedded = await retrievalOn('embedded', 'memory://');
  const server = await createTestDatabase({ server: ctx.postgresUrl, migrated: true });
  let postgres: Awaited<ReturnType<typeof retrievalOn>>;
  try {
    postgres = await retrievalOn('postgres', server.url);
  } finally {
    await server.drop();
  }
  return {
    corpus: { ...corpus.shape, weights: KnowledgeCorpus.WEIGHTS, axes: KnowledgeCorpus.AXES, queryNoise: KnowledgeCorpus.QUERY_NOISE },
    ingestion,
    embedded,
    postgres,
  };
}

import { performance } from 'node:perf_hooks';
import { intrinsicDimension, KnowledgeCorpus, seeded, type Place } from './knowledge-corpus';
import { CHUNKS_PER_DOCUMENT, type LoadedSet, type LoadedTenant } from './knowledge-store';
import { percentile, round } from './stats';

/** Words of a query: a question's worth. */
const QUERY_WORDS = 12;
/** The k of recall@k, and the neighbours the intrinsic dimension is estimated from. */
const K = 10;
const LID_K = 20;

interface Query {
  place: Place;
  text: string;
  vector: number[];
}

/** What one reader's searches measured. */
export interface TenantRetrieval {
  scopeChunks: number;
  queries: number;
  /** recall@10 of the vector ranking as searches run it, against an exact scan of the reader's chunks (not measured when the search is an exact scan). */
  recallAt10?: number;
  /** The worst query's recall@10. */
  worstRecallAt10?: number;
  /** The local intrinsic dimension of the set around the queries (see knowledge-corpus.ts). */
  intrinsicDimension?: number;
  /** Hybrid search (full text + vectors, fused): the call every retrieval makes. */
  hybridMs: { p50: number; p95: number; p99: number };
  /** The vector ranking alone (a query without words). */
  vectorMs?: { p50: number; p95: number };
}

/** The exact k nearest of `query` among `vectors` (unit vectors: the highest dot products), best first. */
function exactNearest(vectors: readonly Float32Array[], query: Float32Array, k: number): Array<{ index: number; similarity: number }> {
  const best: Array<{ index: number; similarity: number }> = [];
  for (let index = 0; index < vectors.length; index += 1) {
    const vector = vectors[index];
    let similarity = 0;
    for (let i = 0; i < vector.length; i += 1) similarity += vector[i] * query[i];
    if (best.length < k || similarity > best[best.length - 1].similarity) {
      let at = best.length < k ? best.length : k - 1;
      best[at] = { index, similarity };
      while (at > 0 && best[at].similarity > best[at - 1].similarity) {
        [best[at], best[at - 1]] = [best[at - 1], best[at]];
        at -= 1;
      }
    }
  }
  return best;
}

/** A stored chunk's key as a search returns it: its document's name and its ordinal. */
const chunkKey = (tenantIndex: number, position: number) =>
  `manual-${tenantIndex}-${Math.floor(position / CHUNKS_PER_DOCUMENT)}.pdf#${position % CHUNKS_PER_DOCUMENT}`;

const normalise = (vector: readonly number[]) => {
  const norm = Math.hypot(...vector) || 1;
  return vector.map((value) => value / norm);
};

/**
 * Each reader's searches over a loaded set: `queries` seeded queries (a dozen words and a vector
 * at a place of the corpus), every one run twice through the repository as retrieval runs it — as a
 * hybrid search (timed), and with no words (the vector ranking alone, timed, and compared with an
 * exact scan of the reader's chunks for recall@10). `warmups` queries run first, unmeasured.
 */
export async function measureRetrieval(
  set: LoadedSet,
  corpus: KnowledgeCorpus,
  options: { queries: number; warmups: number; seed: number; recall: boolean; log: (line: string) => void },
): Promise<TenantRetrieval[]> {
  const results: TenantRetrieval[] = [];
  for (const [tenantIndex, tenant] of set.tenants.entries()) {
    const random = seeded(options.seed + tenantIndex);
    const queries: Query[] = Array.from({ length: options.warmups + options.queries }, () => {
      const place = corpus.place(random);
      return { place, text: corpus.words(place, QUERY_WORDS, random).join(' '), vector: corpus.query(place, random) };
    });
    results.push(await measureTenant(set, tenant, tenantIndex, queries, options.warmups, options.recall));
    options.log(
      `knowledge: reader ${tenantIndex} (${tenant.chunks.toLocaleString('en-US')} chunks): recall@10 ${results.at(-1)!.recallAt10 ?? 'not measured'}, hybrid p95 ${results.at(-1)!.hybridMs.p95} ms`,
    );
  }
  return results;
}

async function measureTenant(
  set: LoadedSet,
  tenant: LoadedTenant,
  tenantIndex: number,
  queries: readonly Query[],
  warmups: number,
  recall: boolean,
): Promise<TenantRetrieval> {
  const scope = { readerId: tenant.userId };
  const hybridMs: number[] = [];
  const vectorMs: number[] = [];
  const recalls: number[] = [];
  const neighbourDistances: number[][] = [];
  for (const [n, query] of queries.entries()) {
    const measured = n >= warmups;
    let t0 = performance.now();
    await set.repos.knowledge.search(scope, { text: query.text, vector: query.vector, limit: K });
    if (measured) hybridMs.push(performance.now() - t0);
    if (!recall) continue;
    t0 = performance.now();
    const hits = await set.repos.knowledge.search(scope, { text: '', vector: query.vector, limit: K });
    if (!measured) continue;
    vectorMs.push(performance.now() - t0);
    const exact = exactNearest(tenant.vectors, Float32Array.from(normalise(query.vector)), LID_K);
    const truth = new Set(exact.slice(0, K).map((hit) => chunkKey(tenantIndex, hit.index)));
    recalls.push(hits.filter((hit) => truth.has(`${hit.documentName}#${hit.ordinal}`)).length / K);
    neighbourDistances.push(exact.map((hit) => Math.sqrt(Math.max(0, 2 - 2 * hit.similarity))));
  }
  const hybrid = { p50: round(percentile(hybridMs, 50)), p95: round(percentile(hybridMs, 95)), p99: round(percentile(hybridMs, 99)) };
  if (!recall) return { scopeChunks: tenant.chunks, queries: hybridMs.length, hybridMs: hybrid };
  return {
    scopeChunks: tenant.chunks,
    queries: recalls.length,
    recallAt10: round(recalls.reduce((sum, value) => sum + value, 0) / recalls.length, 3),
    worstRecallAt10: round(Math.min(...recalls), 2),
    intrinsicDimension: round(intrinsicDimension(neighbourDistances), 1),
    hybridMs: hybrid,
    vectorMs: { p50: round(percentile(vectorMs, 50)), p95: round(percentile(vectorMs, 95)) },
  };
}

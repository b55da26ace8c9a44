import { sql, type SQL } from 'drizzle-orm';
import type { Db } from './database';
import { rowsOf } from './migrate';

/** A chunk a search found, with its document and its fused score. */
export interface KnowledgeHit {
  chunkId: string;
  documentId: string;
  documentName: string;
  /** The document's type as sniffed from its bytes. */
  mediaType: string | null;
  baseId: string;
  ordinal: number;
  text: string;
  page: number | null;
  section: string | null;
  score: number;
}

/**
 * Which chunks a search may look at: always the bases the reader may read (their own and those
 * shared with a canvas they are a member of), narrowed by bases, documents, media types or
 * document metadata. Without `baseIds`, a session's own base is searched only in that session.
 */
export interface KnowledgeScope {
  readerId: string;
  /** The chat session searching: its own base joins the default scope. */
  sessionId?: string;
  /** Only the reader's own bases, none shared with them. */
  ownOnly?: boolean;
  baseIds?: readonly string[];
  documentIds?: readonly string[];
  mediaTypes?: readonly string[];
  /** Every key/value must be in the document's metadata (JSON containment). */
  metadata?: Record<string, unknown>;
}

/** How the server stores vectors: pgvector (HNSW per dimension) or `real[]` searched by an exact scan. */
export type VectorIndexKind = 'pgvector-hnsw' | 'exact-scan';

/** Candidates each ranking contributes before fusion, and reciprocal rank fusion's constant. */
const CANDIDATES = 40;
const RRF_K = 60;

/**
 * The HNSW search's candidate list (pgvector's `hnsw.ef_search`, 40 unless set): the wider, the
 * more of the true nearest it finds, at some cost per query. Well above the candidates taken.
 */
export const HNSW_EF_SEARCH = 100;

/**
 * A scope of at most this many chunks is ranked exactly (every chunk's distance, through the
 * scope's documents), past it through the HNSW index: exact is then both cheaper and exact, and an
 * index scan filtered down to a small scope would walk far for few rows.
 */
export const EXACT_SCOPE_CHUNKS = 5_000;

/** The query's full-text terms looked for, its first ones (the rest of a long query is left to the vectors). */
export const MAX_TEXT_TERMS = 8;

/**
 * Full text: each query term brings at most this many chunks of the scope to be ranked, and so do
 * all the terms together, so a query ranks at most (terms + 1) × this many chunks, whatever the
 * size of the scope.
 */
export const TEXT_MATCHES_PER_TERM = 50;

/**
 * Full text: the matches in the whole table each term's chunks are taken from, in the index's
 * order. A term with fewer matches gives every one of its scope's; a commoner one gives those among
 * its first this many (none, when the scope is a small part of the table and its chunks come later),
 * so no term makes a search visit more rows than this.
 */
export const TEXT_MATCHES_SCANNED = 1_000;

/**
 * The ids of the bases `readerId` may read: their own (a session's own base only in that session,
 * or every one of them when `allOwn`), and each base shared with a canvas the reader is a member of,
 * for as long as the base's owner may still edit that canvas. Membership is read by every query
 * that uses this (a search reads it as it starts), so a removed member reads nothing from the next
 * query on.
 */
export function readableBaseIds(readerId: string, options: { sessionId?: string; allOwn?: boolean; ownOnly?: boolean } = {}): SQL {
  const own = options.allOwn
    ? sql``
    : options.sessionId
      ? sql` and (b.session_id is null or b.session_id = ${options.sessionId})`
      : sql` and b.session_id is null`;
  if (options.ownOnly) return sql`(select b.id from knowledge_bases b where b.owner_id = ${readerId}${own})`;
  return sql`(select b.id from knowledge_bases b where b.owner_id = ${readerId}${own}
    union select s.base_id from knowledge_base_shares s
      join knowledge_bases b on b.id = s.base_id
      join canvas_members m on m.canvas_id = s.canvas_id and m.user_id = ${readerId}
      join canvas_members o on o.canvas_id = s.canvas_id and o.user_id = b.owner_id and o.role in ('owner', 'editor'))`;
}

/**
 * Numbers only: a vector literal is built from them, never from text a caller sent. Nine
 * significant digits are what a `real` (float4) holds, so the literal is half as long to send and
 * parse as the shortest text of a double, and stores the same values.
 */
export const finite = (vector: readonly number[]) => vector.map((value) => (Number.isFinite(value) ? Number(value.toPrecision(9)) : 0));

/** A dimension count an index may be made for (it is written into the statement, so an integer in range only). */
const indexableDimensions = (dims: number) => Number.isInteger(dims) && dims > 0 && dims <= 16_000;

/**
 * Hybrid search over knowledge chunks, and the vector index behind it. Every query is scoped to
 * the documents the reader may read (the scope is a condition on the documents, checked in the
 * statement that ranks), and every half does bounded work: the vectors through the HNSW index (or
 * exactly, for a small scope or a server without pgvector), the full text over a capped number of
 * matches per word.
 */
export class KnowledgeSearch {
  private kind?: Promise<{ kind: VectorIndexKind; iterative: boolean }>;
  /** Dimensions whose HNSW index this process has made sure of. */
  private readonly indexed = new Set<number>();

  /** `exactScopeChunks`: the scope size past which the vectors are searched through the index (tests and benchmarks lower it). */
  constructor(
    private readonly db: Db,
    private readonly exactScopeChunks = EXACT_SCOPE_CHUNKS,
  ) {}

  /** pgvector when the chunks' embedding column is a `vector` (the server had the extension at migration), else an exact scan. */
  async vectorIndex(): Promise<VectorIndexKind> {
    return (await this.index()).kind;
  }

  /**
   * The column's type, and whether pgvector is 0.8 or later: its index scans go on past the
   * candidate list until enough rows pass the scope's filter (`hnsw.iterative_scan`).
   */
  private index(): Promise<{ kind: VectorIndexKind; iterative: boolean }> {
    this.kind ??= this.db
      .execute(
        sql`select (select udt_name from information_schema.columns where table_name = 'knowledge_chunks' and column_name = 'embedding' limit 1) as "type",
          (select extversion from pg_extension where extname = 'vector') as "version"`,
      )
      .then((result) => {
        const row = rowsOf<{ type: string | null; version: string | null }>(result)[0];
        const [major = 0, minor = 0] = (row?.version ?? '0.0').split('.').map(Number);
        return { kind: row?.type === 'vector' ? 'pgvector-hnsw' : 'exact-scan', iterative: major > 0 || minor >= 8 };
      });
    return this.kind;
  }

  /** The HNSW index of one dimension (cosine), partial on that dimension: made once, on first use. */
  async ensureHnsw(dims: number): Promise<void> {
    if (this.indexed.has(dims) || !indexableDimensions(dims)) return;
    await this.db.execute(sql`create index if not exists ${hnswName(dims)} on knowledge_chunks using hnsw ${hnswKey(dims)}`);
    this.indexed.add(dims);
  }

  /**
   * Makes the HNSW index of one dimension over the chunks already stored, in one pass: much faster
   * than growing it row by row during a bulk load. Nothing to do without pgvector or when it exists.
   */
  async buildHnsw(dims: number, memory = '512MB'): Promise<void> {
    if ((await this.vectorIndex()) !== 'pgvector-hnsw' || !indexableDimensions(dims) || !/^\d+[MG]B$/.test(memory)) return;
    await this.db.transaction(async (tx) => {
      // The graph is built in memory while it fits, else on disk and far slower.
      await tx.execute(sql`select set_config('maintenance_work_mem', ${memory}, true)`);
      await tx.execute(sql`create index if not exists ${hnswName(dims)} on knowledge_chunks using hnsw ${hnswKey(dims)}`);
    });
    this.indexed.add(dims);
  }

  /**
   * Hybrid search over the scope's ready chunks: the nearest vectors and PostgreSQL full text,
   * fused by reciprocal rank.
   */
  async search(scope: KnowledgeScope, query: { text: string; vector: number[]; limit: number }): Promise<KnowledgeHit[]> {
    const { kind, iterative } = await this.index();
    const dims = query.vector.length;
    const hnsw = kind === 'pgvector-hnsw' && indexableDimensions(dims);
    if (hnsw) await this.ensureHnsw(dims);
    const plan = await this.plan(scope, query.text);
    if (!plan.bases.length) return [];
    const documents = documentFilters(scope, plan.bases);
    const viaIndex = hnsw && plan.chunks > this.exactScopeChunks;
    const nearest = viaIndex ? nearestByIndex(documents, query.vector) : nearestExactly(documents, query.vector, hnsw);
    const statement = sql`with vec as (select id, row_number() over (order by distance, id) as r from (${nearest}) n),
        txt as (select id, row_number() over (order by rank desc, id) as r from (${textual(documents, plan.bases, plan.terms)}) t),
        fused as (select coalesce(vec.id, txt.id) as id,
          coalesce(1.0 / (${RRF_K} + vec.r), 0) + coalesce(1.0 / (${RRF_K} + txt.r), 0) as score
          from vec full outer join txt on vec.id = txt.id)
      select c.id::text as "chunkId", c.document_id as "documentId", d.name as "documentName", d.media_type as "mediaType", c.base_id as "baseId", c.ordinal, c.text,
        c.page, c.section, f.score::float8 as score
      from fused f join knowledge_chunks c on c.id = f.id join knowledge_documents d on d.id = c.document_id
      order by f.score desc, c.id limit ${query.limit}`;
    // For this statement only: no sequential scans (the indexes lead whatever the planner guesses:
    // PGlite never gathers statistics), and through HNSW a wider candidate list and (pgvector 0.8+)
    // a scan that goes on until enough rows pass the scope's filter, in nearly sorted order (ranked again above).
    const settings = [sql`set_config('enable_seqscan', 'off', true)`];
    if (viaIndex) settings.push(sql`set_config('hnsw.ef_search', ${String(HNSW_EF_SEARCH)}, true)`);
    if (viaIndex && iterative) settings.push(sql`set_config('hnsw.iterative_scan', 'relaxed_order', true)`);
    const result = await this.db.transaction(async (tx) => {
      await tx.execute(sql`select ${sql.join(settings, sql`, `)}`);
      return tx.execute(statement);
    });
    return rowsOf<KnowledgeHit>(result).map((row) => ({ ...row, ordinal: Number(row.ordinal), score: Number(row.score) }));
  }

  /**
   * What the search statement is built from, in one read as the search starts: the bases the
   * reader may read within the scope, how many chunks the scope's ready documents hold (their
   * stored counts, no chunk read), and the query's full-text terms (the English configuration's
   * lexemes in the order the words came, stop words dropped).
   */
  private async plan(scope: KnowledgeScope, text: string): Promise<{ bases: string[]; chunks: number; terms: string[] }> {
    // Named bases may include any of the reader's own (a session's too); the default leaves other sessions' out.
    const readable = readableBaseIds(scope.readerId, {
      sessionId: scope.sessionId,
      allOwn: Boolean(scope.baseIds),
      ownOnly: scope.ownOnly,
    });
    const named = scope.baseIds ? sql` and b.id = any(${uuidArray(scope.baseIds)})` : sql``;
    const result = await this.db.execute(sql`with bases as (select b.id from knowledge_bases b where b.id in ${readable}${named})
      select array_to_string(array(select id::text from bases order by id), ' ') as "bases",
        (select coalesce(sum(d.chunk_count), 0)::int from knowledge_documents d where d.base_id in (select id from bases) and ${documentConditions(scope)}) as "chunks",
        array_to_string(array(select lexeme from unnest(to_tsvector('english', ${text})) order by positions[1], lexeme limit ${MAX_TEXT_TERMS}), ' ') as "terms"`);
    const row = rowsOf<{ bases: string | null; chunks: number; terms: string | null }>(result)[0];
    const words = (value: string | null | undefined) => (value ?? '').split(' ').filter(Boolean);
    return { bases: words(row?.bases), chunks: Number(row?.chunks ?? 0), terms: words(row?.terms) };
  }
}

const hnswName = (dims: number) => sql.raw(`knowledge_chunks_hnsw_${dims}`);
const hnswKey = (dims: number) => sql.raw(`((embedding::vector(${dims})) vector_cosine_ops) where dimensions = ${dims}`);

/** Ids as one `uuid[]` parameter (the statement's text stays the same whatever their number); one that is no uuid matches nothing. */
const uuidArray = (ids: readonly string[]) => sql`${`{${ids.filter((id) => UUID.test(id)).join(',')}}`}::uuid[]`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether chunk `c` is in the scope: its document is in one of the bases and matches the filters,
 * and `c` is of the document's searched revision. Written as a subquery of one value, evaluated for
 * each chunk an index yields, so that the planner never turns it into a join that reads the whole
 * scope before ranking: the HNSW and full-text indexes lead, the scope filters what they find.
 */
function inScope(documents: SQL): SQL {
  return sql`c.revision = (select d.ready_revision from knowledge_documents d where d.id = c.document_id and ${documents})`;
}

/**
 * The nearest chunks through the HNSW index: the index scan yields chunks by distance, and each is
 * kept when it is in the scope (with pgvector 0.8+, the scan goes on until enough are kept).
 */
function nearestByIndex(documents: SQL, vector: readonly number[]): SQL {
  const dims = sql.raw(String(vector.length));
  const distance = sql`c.embedding::vector(${dims}) <=> ${`[${finite(vector).join(',')}]`}::vector(${dims})`;
  return sql`select c.id, ${distance} as distance from knowledge_chunks c
    where c.dimensions = ${vector.length} and ${inScope(documents)}
    order by ${distance} limit ${CANDIDATES}`;
}

/**
 * The nearest chunks by an exact scan of the scope: through the scope's documents, every chunk's
 * distance. With pgvector, its distance operator; without it, cosine over the `real[]` column.
 */
function nearestExactly(documents: SQL, vector: readonly number[], pgvector: boolean): SQL {
  const values = finite(vector).join(',');
  let distance: SQL;
  if (pgvector) {
    const dims = sql.raw(String(vector.length));
    distance = sql`c.embedding::vector(${dims}) <=> ${`[${values}]`}::vector(${dims})`;
  } else {
    const target = sql`${`{${values}}`}::real[]`;
    distance = sql`1 - (select sum(a * b) / nullif(sqrt(sum(a * a)) * sqrt(sum(b * b)), 0) from unnest(c.embedding, ${target}) as t(a, b))`;
  }
  return sql`select c.id, ${distance} as distance from knowledge_documents d
    join knowledge_chunks c on c.document_id = d.id and c.base_id = d.base_id and c.revision = d.ready_revision
    where ${documents} and c.dimensions = ${vector.length} order by distance limit ${CANDIDATES}`;
}

/**
 * The best full-text matches: for each term, and for all of them together, the chunks of the scope
 * among its first `TEXT_MATCHES_SCANNED` matches, at most `TEXT_MATCHES_PER_TERM`, ranked together
 * by `ts_rank` (how often and where the terms occur) against the terms as an OR. A term found in more chunks than that is too
 * common to choose by: the chunks it brings are any of its matches, and the rarer terms, the AND
 * of all of them and the vectors decide.
 */
function textual(documents: SQL, bases: readonly string[], terms: readonly string[]): SQL {
  if (!terms.length) return sql`select null::bigint as id, 0::real as rank where false`;
  // The terms are lexemes already: the simple configuration takes them as they are.
  const lexeme = (term: string) => sql`plainto_tsquery('simple', ${term})`;
  // The GIN index leads: the matches come from an inner query of their own (its limit keeps the
  // planner from reading the scope's chunks through their base instead: every chunk of a large
  // scope, for a rare term). Each match's base is compared first: another reader's costs a
  // comparison, not the subquery.
  const matches = (query: SQL) =>
    sql`(select c.id from (select id, base_id, document_id, revision from knowledge_chunks where tsv @@ ${query} limit ${TEXT_MATCHES_SCANNED}) c
      where c.base_id = any(${uuidArray(bases)}) and ${inScope(documents)} limit ${TEXT_MATCHES_PER_TERM})`;
  const branches = terms.map((term) => matches(lexeme(term)));
  if (terms.length > 1) branches.push(matches(sql`plainto_tsquery('simple', ${terms.join(' ')})`));
  const any = sql.join(
    terms.map((term) => lexeme(term)),
    sql` || `,
  );
  return sql`select c.id, ts_rank(c.tsv, ${any}) as rank
    from (${sql.join(branches, sql` union `)}) m join knowledge_chunks c on c.id = m.id
    order by rank desc, c.id limit ${CANDIDATES}`;
}

/** The scope's documents (`d`): in one of `bases` (the readable ones the plan found), ready, matching the filters. */
function documentFilters(scope: KnowledgeScope, bases: readonly string[]): SQL {
  return sql`d.base_id = any(${uuidArray(bases)}) and ${documentConditions(scope)}`;
}

/** The scope's conditions on a document (`d`) besides its base: ready, and in the named documents, of the media types, with the metadata. */
function documentConditions(scope: KnowledgeScope): SQL {
  const parts: SQL[] = [sql`d.ready_revision is not null`];
  if (scope.documentIds) parts.push(scope.documentIds.length ? sql`d.id = any(${uuidArray(scope.documentIds)})` : sql`false`);
  if (scope.mediaTypes)
    parts.push(
      scope.mediaTypes.length
        ? sql`d.media_type in (${sql.join(
            scope.mediaTypes.map((type) => sql`${type}`),
            sql`, `,
          )})`
        : sql`false`,
    );
  if (scope.metadata && Object.keys(scope.metadata).length) parts.push(sql`d.metadata @> ${JSON.stringify(scope.metadata)}::jsonb`);
  return sql.join(parts, sql` and `);
}

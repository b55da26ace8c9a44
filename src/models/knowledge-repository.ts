import { sql, type SQL } from 'drizzle-orm';
import type { Db } from './database';
import { rowsOf } from './migrate';

/** Where a document is in its ingestion. */
export type KnowledgeDocumentStatus = 'queued' | 'parsing' | 'embedding' | 'ready' | 'failed';

export interface KnowledgeBaseRow {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  createdAt: Date;
  documentCount: number;
  /** The chat session whose files the base holds (made on demand for it), else null. */
  sessionId: string | null;
  /** How the reader reaches it: their own, or shared with a canvas they are a member of. */
  access: 'owner' | 'shared';
  /** The canvases it is shared with (listed to its owner only; empty for a reader). */
  canvasIds: string[];
}

/** The base already holds as many documents as the plan allows. */
export class KnowledgeBaseFullError extends Error {
  constructor(
    readonly limit: number,
    readonly count: number,
  ) {
    super(`A knowledge base holds at most ${limit} documents on your plan; it has ${count}`);
  }
}

/** The user owns as many knowledge bases as the plan allows. */
export class KnowledgeBasesLimitError extends Error {
  constructor(readonly limit: number) {
    super(`Your plan allows ${limit} knowledge base(s); delete one first`);
  }
}

export interface KnowledgeDocumentRow {
  id: string;
  baseId: string;
  ownerId: string;
  name: string;
  source: 'upload' | 'url';
  url: string | null;
  mediaType: string | null;
  sizeBytes: number;
  status: KnowledgeDocumentStatus;
  error: string | null;
  revision: number;
  readyRevision: number | null;
  chunkCount: number;
  metadata: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

/** One chunk to store: its place in the document, its text and its vector. */
export interface NewKnowledgeChunk {
  ordinal: number;
  text: string;
  page: number | null;
  section: string | null;
  tokens: number;
  embedding: number[];
}

/** A document to add: `queued` with its bytes when uploaded, or `failed` at once with `error` (nothing stored but the row that says why). */
export interface NewKnowledgeDocument {
  baseId: string;
  ownerId: string;
  name: string;
  source: 'upload' | 'url';
  url?: string;
  mediaType: string | null;
  bytes?: Buffer;
  error?: string;
}

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

const baseColumns = (readerId: string) => sql`b.id, b.owner_id as "ownerId", b.name, b.description, b.created_at as "createdAt",
  b.session_id as "sessionId",
  (select count(*)::int from knowledge_documents d where d.base_id = b.id) as "documentCount",
  case when b.owner_id = ${readerId} then 'owner' else 'shared' end as "access",
  case when b.owner_id = ${readerId} then coalesce((select array_agg(s.canvas_id::text order by s.created_at) from knowledge_base_shares s where s.base_id = b.id), '{}')
    else '{}' end as "canvasIds"`;

/**
 * The ids of the bases `readerId` may read: their own (a session's own base only in that session,
 * or every one of them when `allOwn`), and each base shared with a canvas the reader is a member of,
 * for as long as the base's owner may still edit that canvas. Membership is read in the same
 * statement as the search, so a removed member reads nothing from the next query on.
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

/** A text array as PGlite may return it (`{a,b}`). */
const parsePgArray = (value: string | null | undefined): string[] =>
  value && value !== '{}' ? value.replace(/^\{|\}$/g, '').split(',') : [];

const baseOf = (row: KnowledgeBaseRow): KnowledgeBaseRow => ({
  ...row,
  createdAt: toDate(row.createdAt),
  canvasIds: Array.isArray(row.canvasIds) ? row.canvasIds : parsePgArray(row.canvasIds as unknown as string),
});

const documentColumns = sql`d.id, d.base_id as "baseId", d.owner_id as "ownerId", d.name, d.source, d.url, d.media_type as "mediaType",
  d.size_bytes as "sizeBytes", d.status, d.error, d.revision, d.ready_revision as "readyRevision", d.chunk_count as "chunkCount",
  d.metadata, d.created_at as "createdAt", d.updated_at as "updatedAt"`;

const toDate = (value: unknown) => (value instanceof Date ? value : new Date(String(value)));
const documentOf = (row: KnowledgeDocumentRow): KnowledgeDocumentRow => ({
  ...row,
  createdAt: toDate(row.createdAt),
  updatedAt: toDate(row.updatedAt),
  metadata: typeof row.metadata === 'string' ? (JSON.parse(row.metadata) as Record<string, unknown>) : row.metadata,
});

/** Numbers only: a vector literal is built from them, never from text a caller sent. */
const finite = (vector: readonly number[]) => vector.map((value) => (Number.isFinite(value) ? value : 0));

/**
 * `knowledge_bases`, `knowledge_documents`, `knowledge_files`, `knowledge_chunks` and
 * `knowledge_base_shares`. Every read names the reader: a base, document or chunk they may not
 * read (not their own, not shared with a canvas of theirs) is never found.
 */
export class KnowledgeRepository {
  private kind?: Promise<VectorIndexKind>;
  /** Dimensions whose HNSW index this process has made sure of. */
  private readonly indexed = new Set<number>();

  constructor(private readonly db: Db) {}

  /** pgvector when the chunks' embedding column is a `vector` (the server had the extension at migration), else an exact scan. */
  vectorIndex(): Promise<VectorIndexKind> {
    this.kind ??= this.db
      .execute(
        sql`select udt_name as "type" from information_schema.columns where table_name = 'knowledge_chunks' and column_name = 'embedding' limit 1`,
      )
      .then((result) => (rowsOf<{ type: string }>(result)[0]?.type === 'vector' ? 'pgvector-hnsw' : 'exact-scan'));
    return this.kind;
  }

  /**
   * A new base of `ownerId`, unless they own `maxBases` already (sessions' own bases not counted):
   * the owner's row is locked while counting, so concurrent creates never pass the limit together.
   */
  async createBase(ownerId: string, name: string, description: string, maxBases = Infinity): Promise<KnowledgeBaseRow> {
    return this.db.transaction(async (tx) => {
      if (Number.isFinite(maxBases)) {
        await tx.execute(sql`select id from users where id = ${ownerId} for update`);
        const counted = await tx.execute(
          sql`select count(*)::int as n from knowledge_bases where owner_id = ${ownerId} and session_id is null`,
        );
        if (Number(rowsOf<{ n: number }>(counted)[0].n) >= maxBases) throw new KnowledgeBasesLimitError(maxBases);
      }
      const result =
        await tx.execute(sql`insert into knowledge_bases (owner_id, name, description) values (${ownerId}, ${name}, ${description})
        returning id, owner_id as "ownerId", name, description, created_at as "createdAt", session_id as "sessionId"`);
      const row = rowsOf<KnowledgeBaseRow>(result)[0];
      return { ...row, createdAt: toDate(row.createdAt), documentCount: 0, access: 'owner' as const, canvasIds: [] };
    });
  }

  /** The base of a chat session's files: made on first use, one per session (its owner's), deleted with the session. */
  async sessionBase(ownerId: string, sessionId: string, name: string): Promise<KnowledgeBaseRow> {
    await this.db.execute(sql`insert into knowledge_bases (owner_id, name, description, session_id)
      select ${ownerId}, ${name}, 'Files sent in a chat session', s.id from chat_sessions s where s.id = ${sessionId} and s.user_id = ${ownerId}
      on conflict (session_id) do nothing`);
    const row = await this.findSessionBase(ownerId, sessionId);
    if (!row) throw new Error(`Chat session ${sessionId} of ${ownerId} does not exist`);
    return row;
  }

  /** The base of a chat session's files, when one was made. */
  async findSessionBase(ownerId: string, sessionId: string): Promise<KnowledgeBaseRow | undefined> {
    const result = await this.db.execute(
      sql`select ${baseColumns(ownerId)} from knowledge_bases b where b.session_id = ${sessionId} and b.owner_id = ${ownerId}`,
    );
    const row = rowsOf<KnowledgeBaseRow>(result)[0];
    return row && baseOf(row);
  }

  /** The bases `readerId` may read, their own and shared ones, newest first. */
  async listBases(readerId: string): Promise<KnowledgeBaseRow[]> {
    const result = await this.db.execute(sql`select ${baseColumns(readerId)}
      from knowledge_bases b where b.id in ${readableBaseIds(readerId, { allOwn: true })} order by b.created_at desc limit 500`);
    return rowsOf<KnowledgeBaseRow>(result).map(baseOf);
  }

  /**
   * Whether a search by `readerId` (in `sessionId`) has a document to read: one lookup a turn makes
   * before it offers the knowledge search.
   */
  async hasSearchable(readerId: string, sessionId?: string): Promise<boolean> {
    const result = await this.db.execute(
      sql`select exists (select 1 from knowledge_documents d
        where d.base_id in ${readableBaseIds(readerId, { sessionId })} and d.ready_revision is not null) as "found"`,
    );
    return Boolean(rowsOf<{ found: boolean }>(result)[0]?.found);
  }

  /** A base `readerId` owns (`owned`), or may read. */
  async findBase(readerId: string, baseId: string, reach: 'owned' | 'readable' = 'owned'): Promise<KnowledgeBaseRow | undefined> {
    const where = reach === 'owned' ? sql`b.owner_id = ${readerId}` : sql`b.id in ${readableBaseIds(readerId, { allOwn: true })}`;
    const result = await this.db.execute(sql`select ${baseColumns(readerId)} from knowledge_bases b where b.id = ${baseId} and ${where}`);
    const row = rowsOf<KnowledgeBaseRow>(result)[0];
    return row && baseOf(row);
  }

  /** Shares a base with a canvas (again: nothing changes). */
  async share(baseId: string, canvasId: string): Promise<void> {
    await this.db.execute(
      sql`insert into knowledge_base_shares (base_id, canvas_id) values (${baseId}, ${canvasId}) on conflict do nothing`,
    );
  }

  /** Stops sharing a base with a canvas; false when it was not shared with it. */
  async unshare(baseId: string, canvasId: string): Promise<boolean> {
    const result = await this.db.execute(
      sql`delete from knowledge_base_shares where base_id = ${baseId} and canvas_id = ${canvasId} returning base_id`,
    );
    return rowsOf(result).length > 0;
  }

  /** Deletes a base with its documents, files and chunks (the foreign keys cascade). */
  async deleteBase(ownerId: string, baseId: string): Promise<boolean> {
    const result = await this.db.execute(sql`delete from knowledge_bases where id = ${baseId} and owner_id = ${ownerId} returning id`);
    return rowsOf(result).length > 0;
  }

  /**
   * A new document, `queued`, with its bytes when uploaded; or `failed` at once with `error`
   * (nothing stored but the row that says why).
   */
  async createDocument(input: NewKnowledgeDocument, maxDocuments = Infinity): Promise<KnowledgeDocumentRow> {
    return (await this.createDocuments(input.baseId, [input], maxDocuments))[0];
  }

  /**
   * New documents of one base in one transaction, or none (`KnowledgeBaseFullError`) when the base
   * would hold more than `maxDocuments`: the base's row is locked while counting, so concurrent
   * uploads never pass the limit together.
   */
  async createDocuments(baseId: string, inputs: readonly NewKnowledgeDocument[], maxDocuments = Infinity): Promise<KnowledgeDocumentRow[]> {
    return this.db.transaction(async (tx) => {
      if (Number.isFinite(maxDocuments)) {
        await tx.execute(sql`select id from knowledge_bases where id = ${baseId} for update`);
        const counted = await tx.execute(sql`select count(*)::int as n from knowledge_documents where base_id = ${baseId}`);
        const count = Number(rowsOf<{ n: number }>(counted)[0].n);
        if (count + inputs.length > maxDocuments) throw new KnowledgeBaseFullError(maxDocuments, count);
      }
      const rows: KnowledgeDocumentRow[] = [];
      for (const input of inputs) {
        const status: KnowledgeDocumentStatus = input.error ? 'failed' : 'queued';
        const result =
          await tx.execute(sql`insert into knowledge_documents as d (base_id, owner_id, name, source, url, media_type, size_bytes, status, error)
          values (${baseId}, ${input.ownerId}, ${input.name}, ${input.source}, ${input.url ?? null}, ${input.mediaType},
            ${input.bytes?.length ?? 0}, ${status}, ${input.error ?? null})
          returning ${documentColumns}`);
        const row = documentOf(rowsOf<KnowledgeDocumentRow>(result)[0]);
        if (input.bytes && !input.error)
          await tx.execute(sql`insert into knowledge_files (document_id, bytes) values (${row.id}, ${input.bytes})`);
        rows.push(row);
      }
      return rows;
    });
  }

  /** The documents of a base (the caller checked that the reader may read it). */
  async listDocuments(baseId: string): Promise<KnowledgeDocumentRow[]> {
    const result = await this.db.execute(
      sql`select ${documentColumns} from knowledge_documents d where d.base_id = ${baseId} order by d.created_at desc limit 1000`,
    );
    return rowsOf<KnowledgeDocumentRow>(result).map(documentOf);
  }

  /**
   * A document of `ownerId` (or, with `reach` `readable`, of a base `ownerId` may read); without a
   * user (the worker, which was handed the id by the owner's request) any document.
   */
  async findDocument(
    documentId: string,
    ownerId?: string,
    reach: 'owned' | 'readable' = 'owned',
  ): Promise<KnowledgeDocumentRow | undefined> {
    const owner =
      ownerId === undefined
        ? sql``
        : reach === 'owned'
          ? sql` and d.owner_id = ${ownerId}`
          : sql` and d.base_id in ${readableBaseIds(ownerId, { allOwn: true })}`;
    const result = await this.db.execute(sql`select ${documentColumns} from knowledge_documents d where d.id = ${documentId}${owner}`);
    const row = rowsOf<KnowledgeDocumentRow>(result)[0];
    return row && documentOf(row);
  }

  /** Where some documents stand (any owner: the turn that attached them asks). */
  async documentStatuses(documentIds: readonly string[]): Promise<Pick<KnowledgeDocumentRow, 'id' | 'name' | 'status' | 'error'>[]> {
    if (!documentIds.length) return [];
    const result = await this.db.execute(sql`select d.id, d.name, d.status, d.error from knowledge_documents d
      where d.id in (${sql.join(
        documentIds.map((id) => sql`${id}::uuid`),
        sql`, `,
      )})`);
    return rowsOf(result);
  }

  async deleteDocument(ownerId: string, documentId: string): Promise<boolean> {
    const result = await this.db.execute(
      sql`delete from knowledge_documents where id = ${documentId} and owner_id = ${ownerId} returning id`,
    );
    return rowsOf(result).length > 0;
  }

  /** An uploaded document's bytes (gone once it was ingested, or for a URL). */
  async documentBytes(documentId: string): Promise<Buffer | undefined> {
    const result = await this.db.execute(sql`select bytes from knowledge_files where document_id = ${documentId}`);
    const row = rowsOf<{ bytes: Uint8Array | string }>(result)[0];
    if (!row) return undefined;
    return typeof row.bytes === 'string' ? Buffer.from(row.bytes.replace(/^\\x/, ''), 'hex') : Buffer.from(row.bytes);
  }

  /**
   * Starts another ingestion of a document: its revision goes up and it is `queued` again; the
   * chunks of the revision being searched stay until the new one is ready. Undefined when the
   * document is not the owner's, or is being ingested now.
   */
  async bumpRevision(ownerId: string, documentId: string): Promise<KnowledgeDocumentRow | undefined> {
    const result = await this.db
      .execute(sql`update knowledge_documents d set revision = revision + 1, status = 'queued', error = null, updated_at = now()
      where d.id = ${documentId} and d.owner_id = ${ownerId} and d.status in ('ready', 'failed') returning ${documentColumns}`);
    const row = rowsOf<KnowledgeDocumentRow>(result)[0];
    return row && documentOf(row);
  }

  /** Moves a document of `revision` to `status` (a stale revision's job changes nothing); false when it is gone or moved on. */
  async setStatus(
    documentId: string,
    revision: number,
    status: KnowledgeDocumentStatus,
    fields: { mediaType?: string } = {},
  ): Promise<boolean> {
    const media = fields.mediaType === undefined ? sql`` : sql`, media_type = ${fields.mediaType}`;
    const result = await this.db.execute(sql`update knowledge_documents set status = ${status}, updated_at = now()${media}
      where id = ${documentId} and revision = ${revision} and status not in ('ready', 'failed') returning id`);
    return rowsOf(result).length > 0;
  }

  /** Fails a document's `revision` with the reason; its chunks of that revision and its bytes go (nothing half-stored). */
  async fail(documentId: string, revision: number, error: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const result =
        await tx.execute(sql`update knowledge_documents set status = 'failed', error = ${error.slice(0, 1_000)}, updated_at = now()
        where id = ${documentId} and revision = ${revision} and status not in ('ready', 'failed') returning id`);
      if (rowsOf(result).length === 0) return false;
      await tx.execute(sql`delete from knowledge_chunks where document_id = ${documentId} and revision = ${revision}`);
      await tx.execute(sql`delete from knowledge_files where document_id = ${documentId}`);
      return true;
    });
  }

  /** The ordinals already stored for a revision: a resumed ingestion embeds only the others. */
  async storedOrdinals(documentId: string, revision: number): Promise<Set<number>> {
    const result = await this.db.execute(
      sql`select ordinal from knowledge_chunks where document_id = ${documentId} and revision = ${revision}`,
    );
    return new Set(rowsOf<{ ordinal: number }>(result).map((row) => Number(row.ordinal)));
  }

  /** Stores chunks of a revision in one statement; a chunk stored before (a resumed job) is kept, not duplicated. */
  async storeChunks(
    document: Pick<KnowledgeDocumentRow, 'id' | 'baseId' | 'ownerId'>,
    revision: number,
    chunks: readonly NewKnowledgeChunk[],
  ) {
    if (chunks.length === 0) return;
    const kind = await this.vectorIndex();
    const rows = chunks.map((chunk) => {
      const values = finite(chunk.embedding).join(',');
      const embedding = kind === 'pgvector-hnsw' ? sql`${`[${values}]`}::vector` : sql`${`{${values}}`}::real[]`;
      return sql`(${document.id}, ${document.baseId}, ${document.ownerId}, ${revision}, ${chunk.ordinal}, ${chunk.text}, ${chunk.page}, ${chunk.section},
        ${chunk.tokens}, ${chunk.embedding.length}, ${embedding})`;
    });
    await this.db
      .execute(sql`insert into knowledge_chunks (document_id, base_id, owner_id, revision, ordinal, text, page, section, tokens, dimensions, embedding)
      values ${sql.join(rows, sql`, `)} on conflict (document_id, revision, ordinal) do nothing`);
    if (kind === 'pgvector-hnsw') await this.ensureHnsw(chunks[0].embedding.length);
  }

  /**
   * Makes `revision` the searched one, when it is still the document's current revision: the
   * count is that revision's stored chunks, every other revision's chunks and the bytes go.
   */
  async markReady(documentId: string, revision: number): Promise<KnowledgeDocumentRow | undefined> {
    return this.db.transaction(async (tx) => {
      const result =
        await tx.execute(sql`update knowledge_documents d set status = 'ready', error = null, ready_revision = ${revision}, updated_at = now(),
          chunk_count = (select count(*)::int from knowledge_chunks c where c.document_id = ${documentId} and c.revision = ${revision})
        where d.id = ${documentId} and d.revision = ${revision} and d.status not in ('ready', 'failed') returning ${documentColumns}`);
      const row = rowsOf<KnowledgeDocumentRow>(result)[0];
      if (!row) return undefined;
      await tx.execute(sql`delete from knowledge_chunks where document_id = ${documentId} and revision <> ${revision}`);
      await tx.execute(sql`delete from knowledge_files where document_id = ${documentId}`);
      return documentOf(row);
    });
  }

  /** Every chunk row of a document, all revisions, when `readerId` may read its base (tests and the chunk preview). */
  async chunks(
    readerId: string,
    documentId: string,
  ): Promise<{ ordinal: number; revision: number; text: string; page: number | null; section: string | null; tokens: number }[]> {
    const result = await this.db.execute(sql`select ordinal, revision, text, page, section, tokens from knowledge_chunks
      where document_id = ${documentId} and base_id in ${readableBaseIds(readerId, { allOwn: true })} order by revision, ordinal limit 5000`);
    return rowsOf(result);
  }

  /** How many chunk rows a document has in all (any revision), owner or not: orphans count too. */
  async countChunks(documentId: string): Promise<number> {
    const result = await this.db.execute(sql`select count(*)::int as n from knowledge_chunks where document_id = ${documentId}`);
    return Number(rowsOf<{ n: number }>(result)[0].n);
  }

  /**
   * Hybrid search over the scope's ready chunks: the nearest vectors (HNSW where pgvector is,
   * else an exact cosine scan) and PostgreSQL full text, fused by reciprocal rank.
   */
  async search(scope: KnowledgeScope, query: { text: string; vector: number[]; limit: number }): Promise<KnowledgeHit[]> {
    const kind = await this.vectorIndex();
    const dims = query.vector.length;
    const filters = scopeFilters(scope);
    const values = finite(query.vector).join(',');
    let nearest: SQL;
    if (kind === 'pgvector-hnsw') {
      await this.ensureHnsw(dims);
      const target = sql`${`[${values}]`}::vector(${sql.raw(String(dims))})`;
      const distance = sql`c.embedding::vector(${sql.raw(String(dims))}) <=> ${target}`;
      nearest = sql`select c.id, ${distance} as distance from knowledge_chunks c join knowledge_documents d on d.id = c.document_id and d.ready_revision = c.revision
        where c.dimensions = ${dims} and ${filters} order by ${distance} limit ${CANDIDATES}`;
    } else {
      const target = sql`${`{${values}}`}::real[]`;
      const distance = sql`1 - (select sum(a * b) / nullif(sqrt(sum(a * a)) * sqrt(sum(b * b)), 0) from unnest(c.embedding, ${target}) as t(a, b))`;
      nearest = sql`select c.id, ${distance} as distance from knowledge_chunks c join knowledge_documents d on d.id = c.document_id and d.ready_revision = c.revision
        where c.dimensions = ${dims} and ${filters} order by distance limit ${CANDIDATES}`;
    }
    const terms = tsTerms(query.text);
    const textual = terms
      ? sql`select c.id, ts_rank_cd(c.tsv, q) as rank from knowledge_chunks c join knowledge_documents d on d.id = c.document_id and d.ready_revision = c.revision,
          to_tsquery('english', ${terms}) q where c.tsv @@ q and ${filters} order by rank desc limit ${CANDIDATES}`
      : sql`select null::bigint as id, 0::real as rank where false`;
    const result = await this.db.execute(sql`with vec as (select id, row_number() over (order by distance) as r from (${nearest}) n),
        txt as (select id, row_number() over (order by rank desc) as r from (${textual}) t),
        fused as (select coalesce(vec.id, txt.id) as id,
          coalesce(1.0 / (${RRF_K} + vec.r), 0) + coalesce(1.0 / (${RRF_K} + txt.r), 0) as score
          from vec full outer join txt on vec.id = txt.id)
      select c.id::text as "chunkId", c.document_id as "documentId", d.name as "documentName", d.media_type as "mediaType", c.base_id as "baseId", c.ordinal, c.text,
        c.page, c.section, f.score::float8 as score
      from fused f join knowledge_chunks c on c.id = f.id join knowledge_documents d on d.id = c.document_id
      order by f.score desc, c.id limit ${query.limit}`);
    return rowsOf<KnowledgeHit>(result).map((row) => ({ ...row, ordinal: Number(row.ordinal), score: Number(row.score) }));
  }

  /** The HNSW index of one dimension (cosine), partial on that dimension: made once, on first use. */
  private async ensureHnsw(dims: number): Promise<void> {
    if (this.indexed.has(dims) || !Number.isInteger(dims) || dims <= 0 || dims > 16_000) return;
    const n = sql.raw(String(dims));
    await this.db.execute(
      sql`create index if not exists ${sql.raw(`knowledge_chunks_hnsw_${dims}`)} on knowledge_chunks using hnsw ((embedding::vector(${n})) vector_cosine_ops) where dimensions = ${n}`,
    );
    this.indexed.add(dims);
  }
}

/** The scope as a condition on `c` (chunks) and `d` (their documents). */
function scopeFilters(scope: KnowledgeScope): SQL {
  // Named bases may include any of the reader's own (a session's too); the default leaves other sessions' out.
  const readable = readableBaseIds(scope.readerId, { sessionId: scope.sessionId, allOwn: Boolean(scope.baseIds), ownOnly: scope.ownOnly });
  const parts: SQL[] = [sql`c.base_id in ${readable}`, sql`d.base_id = c.base_id`];
  if (scope.baseIds)
    parts.push(
      scope.baseIds.length
        ? sql`c.base_id in (${sql.join(
            scope.baseIds.map((id) => sql`${id}::uuid`),
            sql`, `,
          )})`
        : sql`false`,
    );
  if (scope.documentIds)
    parts.push(
      scope.documentIds.length
        ? sql`c.document_id in (${sql.join(
            scope.documentIds.map((id) => sql`${id}::uuid`),
            sql`, `,
          )})`
        : sql`false`,
    );
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

/** The query's words as an OR of full-text terms (letters and digits only), or undefined when it has none. */
function tsTerms(text: string): string | undefined {
  const words = [...new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])].slice(0, 32);
  return words.length ? words.join(' | ') : undefined;
}

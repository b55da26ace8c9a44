import { sql } from 'drizzle-orm';
import type { Db } from './database';
import { KnowledgeSearch, finite, readableBaseIds, type KnowledgeHit, type KnowledgeScope, type VectorIndexKind } from './knowledge-search';
import { rowsOf } from './migrate';

export { readableBaseIds, type KnowledgeHit, type KnowledgeScope, type VectorIndexKind } from './knowledge-search';

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

const baseColumns = (readerId: string) => sql`b.id, b.owner_id as "ownerId", b.name, b.description, b.created_at as "createdAt",
  b.session_id as "sessionId",
  (select count(*)::int from knowledge_documents d where d.base_id = b.id) as "documentCount",
  case when b.owner_id = ${readerId} then 'owner' else 'shared' end as "access",
  case when b.owner_id = ${readerId} then coalesce((select array_agg(s.canvas_id::text order by s.created_at) from knowledge_base_shares s where s.base_id = b.id), '{}')
    else '{}' end as "canvasIds"`;

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

/**
 * `knowledge_bases`, `knowledge_documents`, `knowledge_files`, `knowledge_chunks` and
 * `knowledge_base_shares`. Every read names the reader: a base, document or chunk they may not
 * read (not their own, not shared with a canvas of theirs) is never found.
 */
export class KnowledgeRepository {
  private readonly searcher: KnowledgeSearch;

  /**
   * `vectorIndexOnWrite: false` is for a bulk load: chunks are stored without making their HNSW
   * index, which `buildVectorIndex` then makes in one pass (much faster than row by row).
   * `exactScopeChunks` moves the point past which vectors are searched through the index.
   */
  constructor(
    private readonly db: Db,
    private readonly options: { vectorIndexOnWrite?: boolean; exactScopeChunks?: number } = {},
  ) {
    this.searcher = new KnowledgeSearch(db, options.exactScopeChunks);
  }

  /** pgvector when the chunks' embedding column is a `vector` (the server had the extension at migration), else an exact scan. */
  vectorIndex(): Promise<VectorIndexKind> {
    return this.searcher.vectorIndex();
  }

  /** Makes the HNSW index of one dimension over the stored chunks, in one pass (nothing to do without pgvector or when it exists). */
  buildVectorIndex(dims: number): Promise<void> {
    return this.searcher.buildHnsw(dims);
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
    if (kind === 'pgvector-hnsw' && this.options.vectorIndexOnWrite !== false) await this.searcher.ensureHnsw(chunks[0].embedding.length);
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
   * Hybrid search over the scope's ready chunks: the nearest vectors (through the HNSW index where
   * pgvector is and the scope is large, else exactly) and PostgreSQL full text, fused by reciprocal rank.
   */
  search(scope: KnowledgeScope, query: { text: string; vector: number[]; limit: number }): Promise<KnowledgeHit[]> {
    return this.searcher.search(scope, query);
  }
}

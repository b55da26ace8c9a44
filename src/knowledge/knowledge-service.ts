import type { Config } from '../../config';
import { resolveLimits } from '../auth/limits';
import { AppError, conflict, forbidden, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import {
  KnowledgeBaseFullError,
  KnowledgeBasesLimitError,
  type KnowledgeBaseRow,
  type KnowledgeDocumentRow,
  type KnowledgeHit,
  type KnowledgeScope,
  type NewKnowledgeDocument,
} from '../models/knowledge-repository';
import type { QueueRegistry } from '../producers/registry';
import { embedTexts } from './embed';
import { refuseUrl } from './fetch-url';
import { sniffMediaType, UnsupportedDocumentError } from './sniff';
import { ZipRefusedError } from './zip-guard';

/** One file of an upload: its name, its declared type and its bytes (or only its size, when it was over the cap). */
export interface UploadedFile {
  name: string;
  declaredType?: string;
  bytes: Buffer;
  /** True when the file was larger than the cap: its bytes were not kept. */
  overCap?: boolean;
  size: number;
}

/** What a search may narrow to, and how many chunks it returns. */
export interface KnowledgeQuery {
  query: string;
  /** The chat session searching: its own base (the files sent in it) joins the default scope. */
  sessionId?: string;
  /** Only the caller's own bases, not those shared with their canvases (a chatflow, which answers anyone). */
  ownOnly?: boolean;
  baseIds?: string[];
  documentIds?: string[];
  mediaTypes?: string[];
  metadata?: Record<string, unknown>;
  limit?: number;
}

/** What a user's plan lets their knowledge hold, each never above the deployment's cap. */
export interface KnowledgeCaps {
  maxFileBytes: number;
  maxDocuments: number;
  maxBases: number;
}

/** 413 `file_too_large`: files over the plan's cap, named; nothing of the request is stored. */
const fileTooLarge = (limit: number, files: readonly { name: string; size: number }[]) =>
  new AppError(
    413,
    'file_too_large',
    `${files.map((file) => `${file.name} (${file.size} bytes)`).join(', ')}: over the limit of ${limit} bytes per file`,
    { limit, files: files.map((file) => ({ name: file.name, size: file.size })) },
  );

/**
 * Knowledge bases, each its owner's: documents in (uploads and URLs, checked here against the
 * owner's plan, ingested on the `knowledge` queue) and hybrid search out. A base may be shared with
 * canvases: their members read and search it while its owner may still edit the canvas, and only
 * the owner writes to it. A base the caller may not read is 404; one they read but do not own is
 * 403 to every change. A search never looks past the bases the caller may read.
 */
export class KnowledgeService {
  constructor(
    private readonly deps: {
      config: Pick<Config, 'knowledge' | 'tiers'>;
      repos: Pick<Repositories, 'knowledge' | 'users' | 'canvases'>;
      queues: QueueRegistry;
      logger: Logger;
    },
  ) {}

  /** The user's caps: their plan's (with an operator's overrides), each at most the deployment's. */
  async caps(userId: string): Promise<KnowledgeCaps> {
    const user = await this.deps.repos.users.findById(userId);
    if (!user) throw notFound('User');
    const limits = resolveLimits(user, this.deps.config.tiers);
    const { maxFileBytes, maxDocuments } = this.deps.config.knowledge;
    return {
      maxFileBytes: Math.min(limits.maxKnowledgeFileBytes, maxFileBytes),
      maxDocuments: Math.min(limits.maxKnowledgeDocuments, maxDocuments),
      maxBases: limits.maxKnowledgeBases,
    };
  }

  /** A new base, unless the owner's plan holds no more: 403 `tier_limit`, nothing written. */
  async createBase(ownerId: string, input: { name: string; description?: string }): Promise<KnowledgeBaseRow> {
    const { maxBases } = await this.caps(ownerId);
    try {
      return await this.deps.repos.knowledge.createBase(ownerId, input.name, input.description ?? '', maxBases);
    } catch (error) {
      if (error instanceof KnowledgeBasesLimitError) throw new AppError(403, 'tier_limit', error.message, { limit: error.limit });
      throw error;
    }
  }

  /** The bases the caller may read: their own (sessions' included) and those shared with their canvases. */
  listBases(readerId: string): Promise<KnowledgeBaseRow[]> {
    return this.deps.repos.knowledge.listBases(readerId);
  }

  async base(readerId: string, baseId: string): Promise<{ base: KnowledgeBaseRow; documents: KnowledgeDocumentRow[] }> {
    const base = await this.deps.repos.knowledge.findBase(readerId, baseId, 'readable');
    if (!base) throw notFound('Knowledge base');
    return { base, documents: await this.deps.repos.knowledge.listDocuments(baseId) };
  }

  async deleteBase(ownerId: string, baseId: string): Promise<void> {
    await this.ownedBase(ownerId, baseId);
    if (!(await this.deps.repos.knowledge.deleteBase(ownerId, baseId))) throw notFound('Knowledge base');
  }

  /**
   * Shares the caller's base with a canvas on which they are an owner or editor: its members read
   * and search it from then on. A canvas the caller is not a member of is 404, a viewer's 403, a
   * chat session's own base 409.
   */
  async share(ownerId: string, baseId: string, canvasId: string): Promise<KnowledgeBaseRow> {
    const base = await this.ownedBase(ownerId, baseId);
    if (base.sessionId) throw conflict('session_base', "A chat session's own base is not shared; add its files to a base of yours instead");
    const role = await this.deps.repos.canvases.roleOf(canvasId, ownerId);
    if (!role) throw notFound('Canvas');
    if (role === 'viewer') throw forbidden('Only an owner or editor of the canvas shares a knowledge base with it');
    await this.deps.repos.knowledge.share(baseId, canvasId);
    return (await this.deps.repos.knowledge.findBase(ownerId, baseId))!;
  }

  /** Stops sharing the caller's base with a canvas (404 when it was not shared with it). */
  async unshare(ownerId: string, baseId: string, canvasId: string): Promise<void> {
    await this.ownedBase(ownerId, baseId);
    if (!(await this.deps.repos.knowledge.unshare(baseId, canvasId))) throw notFound('Share');
  }

  /** A document of a base the caller may read (`readable`), or owns. */
  async document(userId: string, documentId: string, reach: 'owned' | 'readable' = 'readable'): Promise<KnowledgeDocumentRow> {
    const document = await this.deps.repos.knowledge.findDocument(documentId, userId, reach);
    if (!document) throw notFound('Document');
    return document;
  }

  async chunks(readerId: string, documentId: string) {
    const document = await this.document(readerId, documentId);
    const rows = await this.deps.repos.knowledge.chunks(readerId, documentId);
    return rows.filter((row) => row.revision === document.readyRevision);
  }

  /**
   * Adds uploaded files to the caller's base. A file over the plan's size cap refuses the whole
   * request (413 `file_too_large`, nothing stored); more documents than the base may hold is 409
   * `knowledge_base_full` (nothing stored). Else each file becomes a document: `queued` (its bytes
   * stored, its ingestion queued) when its bytes are a supported type, else `failed` at once with
   * the reason and nothing else stored.
   */
  async upload(ownerId: string, baseId: string, files: readonly UploadedFile[]): Promise<KnowledgeDocumentRow[]> {
    await this.ownedBase(ownerId, baseId);
    const { maxFiles } = this.deps.config.knowledge;
    if (files.length > maxFiles) throw new AppError(413, 'too_many_files', `At most ${maxFiles} files per upload`);
    const caps = await this.caps(ownerId);
    const documents = this.checkedFiles(ownerId, baseId, files, caps);
    const created = await this.createDocuments(baseId, documents, caps);
    for (const document of created) if (document.status === 'queued') await this.enqueue(document);
    return created;
  }

  /**
   * Files sent with a chat message, checked before anything of the turn is written: a file over the
   * plan's cap is 413 `file_too_large`, an empty or unsupported one 415 `unsupported_file`, more
   * than the session's base has room for 409 `knowledge_base_full`.
   */
  async checkChatFiles(userId: string, files: readonly UploadedFile[], sessionId?: string): Promise<void> {
    const caps = await this.caps(userId);
    const documents = this.checkedFiles(userId, '', files, caps);
    const base = sessionId ? await this.deps.repos.knowledge.findSessionBase(userId, sessionId) : undefined;
    if (base && base.documentCount + files.length > caps.maxDocuments)
      throw new AppError(
        409,
        'knowledge_base_full',
        `A knowledge base holds at most ${caps.maxDocuments} documents on your plan; this session's has ${base.documentCount}`,
        { limit: caps.maxDocuments, documents: base.documentCount },
      );
    const refused = documents.filter((document) => document.error);
    if (refused.length)
      throw new AppError(415, 'unsupported_file', refused.map((document) => `${document.name}: ${document.error}`).join('; '), {
        files: refused.map((document) => ({ name: document.name, reason: document.error })),
      });
  }

  /**
   * Adds a chat message's files (checked by `checkChatFiles`) to the session's own base, made on
   * first use, and queues their ingestion; the documents' ids, for the turn to wait on.
   */
  async attachToSession(userId: string, sessionId: string, files: readonly UploadedFile[]): Promise<string[]> {
    if (!files.length) return [];
    const base = await this.deps.repos.knowledge.sessionBase(userId, sessionId, `Chat ${sessionId.slice(0, 8)}`);
    const caps = await this.caps(userId);
    const created = await this.createDocuments(base.id, this.checkedFiles(userId, base.id, files, caps), caps);
    for (const document of created) if (document.status === 'queued') await this.enqueue(document);
    return created.map((document) => document.id);
  }

  /** Adds a web page or a file on the web: `failed` at once when the URL may not be fetched, else queued (the worker fetches under the same rules). */
  async addUrl(ownerId: string, baseId: string, url: string, name?: string): Promise<KnowledgeDocumentRow> {
    await this.ownedBase(ownerId, baseId);
    const caps = await this.caps(ownerId);
    const refusal = refuseUrl(url, this.deps.config.knowledge);
    const [document] = await this.createDocuments(
      baseId,
      [
        {
          baseId,
          ownerId,
          name: (name ?? url).slice(0, 300),
          source: 'url',
          url,
          mediaType: null,
          error: refusal ? `The URL may not be fetched: ${refusal}` : undefined,
        },
      ],
      caps,
    );
    if (!refusal) await this.enqueue(document);
    return document;
  }

  /** Ingests a ready or failed document again (a URL is fetched again); its current chunks stay searchable until the new ones are ready. */
  async reingest(ownerId: string, documentId: string): Promise<KnowledgeDocumentRow> {
    const current = await this.ownedDocument(ownerId, documentId);
    if (current.source === 'upload' && !(await this.deps.repos.knowledge.documentBytes(documentId)) && current.status === 'ready')
      throw conflict('document_bytes_gone', 'An uploaded document keeps its bytes only until it is ingested: upload it again instead');
    const document = await this.deps.repos.knowledge.bumpRevision(ownerId, documentId);
    if (!document) throw conflict('document_busy', 'The document is being ingested; wait for it to be ready or failed');
    await this.enqueue(document);
    return document;
  }

  /** Deletes a document with its chunks and bytes; an ingestion still running finds it gone and stores nothing. */
  async deleteDocument(ownerId: string, documentId: string): Promise<void> {
    await this.ownedDocument(ownerId, documentId);
    if (!(await this.deps.repos.knowledge.deleteDocument(ownerId, documentId))) throw notFound('Document');
  }

  /** Hybrid search over the ready chunks the caller may read (the query embedded through the `embeddings` queue). */
  async search(readerId: string, query: KnowledgeQuery): Promise<KnowledgeHit[]> {
    const user = await this.deps.repos.users.findById(readerId);
    if (!user) throw notFound('User');
    const [vector] = await embedTexts(this.deps.queues, { userId: readerId, tier: user.tier }, [query.query]);
    const scope: KnowledgeScope = {
      readerId,
      sessionId: query.sessionId,
      ownOnly: query.ownOnly,
      baseIds: query.baseIds,
      documentIds: query.documentIds,
      mediaTypes: query.mediaTypes,
      metadata: query.metadata,
    };
    return this.deps.repos.knowledge.search(scope, { text: query.query, vector, limit: Math.min(Math.max(query.limit ?? 8, 1), 50) });
  }

  /** The caller's own base: 404 when they may not read it, 403 when it is shared with them (only its owner changes it). */
  private async ownedBase(userId: string, baseId: string): Promise<KnowledgeBaseRow> {
    const base = await this.deps.repos.knowledge.findBase(userId, baseId, 'readable');
    if (!base) throw notFound('Knowledge base');
    if (base.access !== 'owner') throw forbidden('Only the owner of a shared knowledge base changes it');
    return base;
  }

  /** The caller's own document: 404 when they may not read it, 403 when its base is shared with them. */
  private async ownedDocument(userId: string, documentId: string): Promise<KnowledgeDocumentRow> {
    const document = await this.document(userId, documentId, 'readable');
    if (document.ownerId !== userId) throw forbidden('Only the owner of a shared knowledge base changes it');
    return document;
  }

  /** Each file as a document to add: 413 for any over the cap (before anything is stored), else queued or failed with the reason. */
  private checkedFiles(ownerId: string, baseId: string, files: readonly UploadedFile[], caps: KnowledgeCaps): NewKnowledgeDocument[] {
    const named = files.map((file) => ({ ...file, name: file.name.slice(0, 300) || 'untitled' }));
    const over = named.filter((file) => file.overCap || file.size > caps.maxFileBytes);
    if (over.length) throw fileTooLarge(caps.maxFileBytes, over);
    return named.map((file) => {
      let mediaType: string | null = null;
      let error: string | undefined;
      try {
        mediaType = sniffMediaType(file.bytes, file.name, file.declaredType);
      } catch (refusal) {
        if (!(refusal instanceof UnsupportedDocumentError || refusal instanceof ZipRefusedError)) throw refusal;
        error = refusal.message;
      }
      return { baseId, ownerId, name: file.name, source: 'upload' as const, mediaType, bytes: error ? undefined : file.bytes, error };
    });
  }

  /** The documents in one transaction, or 409 `knowledge_base_full` (nothing stored) past the plan's documents per base. */
  private async createDocuments(baseId: string, documents: readonly NewKnowledgeDocument[], caps: KnowledgeCaps) {
    try {
      return await this.deps.repos.knowledge.createDocuments(baseId, documents, caps.maxDocuments);
    } catch (error) {
      if (error instanceof KnowledgeBaseFullError)
        throw new AppError(409, 'knowledge_base_full', error.message, { limit: error.limit, documents: error.count });
      throw error;
    }
  }

  private async enqueue(document: KnowledgeDocumentRow): Promise<void> {
    await this.deps.queues.enqueue('knowledge', 'ingest', { documentId: document.id, revision: document.revision });
  }
}

import type { Tier } from '../../config';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { KnowledgeDocumentRow } from '../models/knowledge-repository';
import { fetchDocument, UrlRefusedError, type UrlRules } from './fetch-url';
import { htmlToParts, parseDocument, UnreadableDocumentError, type DocumentPart } from './parse';
import { sniffMediaType, UnsupportedDocumentError } from './sniff';
import { ZipRefusedError } from './zip-guard';

/** Chunks embedded and stored per round: one insert each, and what a crash can cost at most. */
const EMBED_ROUND = 32;

/** How one ingestion ended. */
export type IngestOutcome = { status: 'ready'; chunks: number } | { status: 'failed'; error: string } | { status: 'stale' };

/** Where an ingestion stands, for its listeners (the document's progress events). */
export interface IngestProgress {
  documentId: string;
  /** The revision being ingested (a re-ingestion counts up). */
  revision: number;
  status: KnowledgeDocumentRow['status'];
  chunksStored?: number;
  chunksTotal?: number;
  error?: string;
}

/** Errors that fail a document for good, with their message as the reason: retrying cannot help. */
const PERMANENT = [UnsupportedDocumentError, UnreadableDocumentError, ZipRefusedError, UrlRefusedError];
export const isPermanentIngestError = (error: unknown): error is Error => PERMANENT.some((kind) => error instanceof kind);

/**
 * Ingests one revision of one document: bytes (stored upload, or the URL fetched under the SSRF
 * rules), type sniffed from them, parsed, chunked by tokens, embedded and stored in rounds, then
 * made the searched revision in one step. Crash-safe: the chunking is deterministic and each
 * chunk is unique by (document, revision, ordinal), so a rerun after a kill embeds only the
 * chunks not yet stored and the count at the end is exact. A document deleted or re-ingested
 * meanwhile is left alone (`stale`).
 */
export class KnowledgeIngester {
  constructor(
    private readonly deps: {
      repos: Pick<Repositories, 'knowledge' | 'users'>;
      embed: (who: { userId: string; tier: Tier }, texts: readonly string[]) => Promise<number[][]>;
      urlRules: UrlRules;
      logger: Logger;
      progress?: (event: IngestProgress) => void;
    },
  ) {}

  async ingest(documentId: string, revision: number, lastAttempt: boolean): Promise<IngestOutcome> {
    const { knowledge } = this.deps.repos;
    const document = await knowledge.findDocument(documentId);
    if (!document || document.revision !== revision || document.status === 'ready' || document.status === 'failed')
      return { status: 'stale' };
    try {
      return await this.run(document);
    } catch (error) {
      if (isPermanentIngestError(error) || lastAttempt) {
        const reason = isPermanentIngestError(error) ? error.message : `Ingestion failed: ${(error as Error).message}`;
        await knowledge.fail(documentId, revision, reason);
        this.emit({ documentId, revision, status: 'failed', error: reason });
        return { status: 'failed', error: reason };
      }
      throw error;
    }
  }

  private async run(document: KnowledgeDocumentRow): Promise<IngestOutcome> {
    const { knowledge, users } = this.deps.repos;
    const { id, revision } = document;
    if (!(await knowledge.setStatus(id, revision, 'parsing'))) return { status: 'stale' };
    this.emit({ documentId: id, revision, status: 'parsing' });
    const { parts, mediaType } = await this.read(document);
    // Loaded on first use: the splitter brings LangChain, which only workers load.
    const { chunkParts } = await import('../ai/text-chunks');
    const chunks = await chunkParts(parts);
    if (chunks.length === 0) throw new UnreadableDocumentError('The document has no text to index');
    if (!(await knowledge.setStatus(id, revision, 'embedding', { mediaType }))) return { status: 'stale' };
    const user = await users.findById(document.ownerId);
    if (!user) return { status: 'stale' };
    const stored = await knowledge.storedOrdinals(id, revision);
    const missing = chunks.filter((chunk) => !stored.has(chunk.ordinal));
    let done = chunks.length - missing.length;
    this.emit({ documentId: id, revision, status: 'embedding', chunksStored: done, chunksTotal: chunks.length });
    for (let at = 0; at < missing.length; at += EMBED_ROUND) {
      const round = missing.slice(at, at + EMBED_ROUND);
      const vectors = await this.deps.embed(
        { userId: user.id, tier: user.tier },
        round.map((chunk) => chunk.text),
      );
      // Deleted meanwhile: the chunks' foreign key refuses them, so nothing is left behind.
      if (!(await knowledge.findDocument(id))) return { status: 'stale' };
      await knowledge.storeChunks(
        document,
        revision,
        round.map((chunk, i) => ({ ...chunk, embedding: vectors[i] })),
      );
      done += round.length;
      this.emit({ documentId: id, revision, status: 'embedding', chunksStored: done, chunksTotal: chunks.length });
    }
    const ready = await knowledge.markReady(id, revision);
    if (!ready) return { status: 'stale' };
    this.emit({ documentId: id, revision, status: 'ready', chunksStored: ready.chunkCount, chunksTotal: chunks.length });
    return { status: 'ready', chunks: ready.chunkCount };
  }

  private async read(document: KnowledgeDocumentRow): Promise<{ parts: DocumentPart[]; mediaType: string }> {
    if (document.source === 'url') {
      const fetched = await fetchDocument(document.url ?? '', this.deps.urlRules);
      const declared = fetched.contentType.split(';')[0].trim().toLowerCase();
      const mediaType = sniffMediaType(fetched.bytes, new URL(fetched.url).pathname, declared);
      const parts =
        mediaType === 'text/html'
          ? await htmlToParts(fetched.bytes.toString('utf8'), fetched.url)
          : await parseDocument(fetched.bytes, mediaType);
      return { parts, mediaType };
    }
    const bytes = await this.deps.repos.knowledge.documentBytes(document.id);
    if (!bytes) throw new UnreadableDocumentError('The uploaded bytes are gone; upload the file again');
    const mediaType = sniffMediaType(bytes, document.name, document.mediaType ?? undefined);
    return { parts: await parseDocument(bytes, mediaType), mediaType };
  }

  private emit(event: IngestProgress): void {
    try {
      this.deps.progress?.(event);
    } catch (error) {
      this.deps.logger.warn({ err: error, documentId: event.documentId }, 'knowledge progress listener failed');
    }
  }
}

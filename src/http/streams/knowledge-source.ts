import type { IngestProgress } from '../../knowledge/ingester';
import { ingestionLogId, isIngestTerminal, type KnowledgeEventLog } from '../../knowledge/progress-events';
import type { Repositories } from '../../models';
import type { KnowledgeDocumentRow } from '../../models/knowledge-repository';
import type { SseMessage } from '../sse';
import type { SseSource } from '../sse-streams';

/** How often a quiet progress stream asks whether its ingestion ended without a last event. */
export const KNOWLEDGE_CHECK_MS = 10_000;

const progressMessage = (event: IngestProgress): SseMessage => ({ event: 'progress', data: JSON.stringify(event) });

/** A document row as a progress event: where its current revision stands. */
const snapshotOf = (row: KnowledgeDocumentRow): IngestProgress => ({
  documentId: row.id,
  revision: row.revision,
  status: row.status,
  ...(row.status === 'ready' ? { chunksStored: row.chunkCount, chunksTotal: row.chunkCount } : {}),
  ...(row.error ? { error: row.error } : {}),
});

/**
 * A document's ingestion progress as SSE `progress` events: first where the document stands (its
 * row), then, unless it is already `ready` or `failed`, every step its worker reports (parsing,
 * embedding with chunks stored of the total after each round) until `ready` or `failed`. An
 * ingestion that ended without its last event (its log expired, a deletion) ends from the row.
 */
export function knowledgeProgressSource(
  deps: { knowledgeEvents: KnowledgeEventLog; repos: Pick<Repositories, 'knowledge'>; checkEveryMs?: number },
  document: KnowledgeDocumentRow,
): SseSource {
  const current = () => deps.repos.knowledge.findDocument(document.id);
  const liveness = {
    checkEveryMs: deps.checkEveryMs ?? KNOWLEDGE_CHECK_MS,
    endedAt: async () => {
      const row = await current();
      if (!row || row.revision !== document.revision || row.status === 'ready' || row.status === 'failed')
        return row?.updatedAt ?? new Date();
      return null;
    },
  };
  return {
    async *messages(signal) {
      const first = snapshotOf(document);
      yield progressMessage(first);
      if (isIngestTerminal(first)) return;
      let ended = false;
      for await (const event of deps.knowledgeEvents.follow(ingestionLogId(document.id, document.revision), signal, liveness)) {
        yield progressMessage(event);
        if (isIngestTerminal(event)) {
          ended = true;
          break;
        }
      }
      if (ended || signal.aborted) return;
      const row = await current();
      yield progressMessage(
        row?.revision === document.revision
          ? snapshotOf(row)
          : {
              documentId: document.id,
              revision: document.revision,
              status: 'failed',
              error: row ? 'A newer ingestion replaced this one' : 'The document was deleted',
            },
      );
    },
    interrupted: {
      event: 'error',
      data: JSON.stringify({ code: 'stream_interrupted', message: 'The progress stream was interrupted; open it again' }),
    },
  };
}

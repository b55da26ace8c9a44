import type { NotesEventLog } from '../../assistant/notes-events';
import type { Repositories } from '../../models';
import type { ChatSessionRow } from '../../models/schema';
import type { QueueRegistry } from '../../queues/registry';
import { ticketNotesJobId } from '../../queues/assistant';
import type { SseSource } from '../sse-streams';

export const NOTES_CHECK_MS = 10_000;

const FAILED_TEXT = '[ERROR] The notes could not be written; resolve the session again to retry';
const RUNNING = new Set(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children']);

/**
 * A session's ticket notes as SSE `data:` lines (decision 0022): the stored notes when ready,
 * else the chunks as they are written, ending with `[DONE]` or `[ERROR] …`. When the notes job
 * ended without writing to the log (log expired or lost, job gone) the stream ends from the row.
 */
export function notesSource(
  deps: { notesEvents: NotesEventLog; repos: Repositories; queues: QueueRegistry; checkEveryMs?: number },
  session: Pick<ChatSessionRow, 'id' | 'userId' | 'documentationStatus' | 'documentation'>,
): SseSource {
  const current = () => deps.repos.chat.findOwned(session.userId, session.id);
  const liveness = {
    checkEveryMs: deps.checkEveryMs ?? NOTES_CHECK_MS,
    endedAt: async () => {
      const row = await current();
      if (!row || row.documentationStatus === 'ready' || row.documentationStatus === 'failed' || !row.documentationStatus) return row?.updatedAt ?? new Date(0);
      return RUNNING.has(await deps.queues.get('assistant').getJobState(ticketNotesJobId(session.id))) ? null : new Date();
    },
  };
  return {
    async *messages(signal) {
      if (session.documentationStatus === 'ready' && session.documentation !== null) {
        yield { data: session.documentation };
        yield { data: '[DONE]' };
        return;
      }
      if (session.documentationStatus === 'failed') {
        yield { data: FAILED_TEXT };
        return;
      }
      let ended = false;
      let streamed = false;
      for await (const event of deps.notesEvents.follow(session.id, signal, liveness)) {
        if (event.type === 'chunk') {
          streamed = true;
          yield { data: event.text };
        } else {
          ended = true;
          yield { data: event.type === 'done' ? '[DONE]' : `[ERROR] ${event.message}` };
        }
      }
      if (ended || signal.aborted) return;
      const row = await current();
      if (row?.documentationStatus === 'ready' && row.documentation !== null && !streamed) {
        yield { data: row.documentation };
        yield { data: '[DONE]' };
      } else if (row?.documentationStatus === 'ready') {
        yield { data: '[ERROR] The notes stream was interrupted; open it again' };
      } else {
        yield { data: FAILED_TEXT };
      }
    },
    interrupted: { data: '[ERROR] The notes stream was interrupted; open it again' },
  };
}

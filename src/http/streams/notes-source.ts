import { isNotesTerminal, type NotesEvent, type NotesEventLog } from '../../assistant/notes-events';
import { NOTES_CANCELLED } from '../../assistant/notes-run';
import type { Frame, StreamEntry } from '../../lib/stream-follower';
import type { Repositories } from '../../models';
import type { ChatSessionRow } from '../../models/schema';
import type { QueueRegistry } from '../../producers/registry';
import { ticketNotesJobId } from '../../producers/assistant';
import { formatSse, type SseMessage } from '../sse';
import { handOffLive, type SseSource } from '../sse-streams';
import { mapYields } from '../../lib/redis-streams';

export const NOTES_CHECK_MS = 10_000;

const FAILED_TEXT = '[ERROR] The notes could not be written; resolve the session again to retry';

/**
 * A session's ticket notes as SSE `data:` lines: the stored notes when ready,
 * else the chunks as they are written, each a one-line JSON `{"type":"chunk","text":…}` (so a
 * client reading one `data:` line per message keeps the newlines), ending with `[DONE]` or `[ERROR] …`. When the notes job
 * ended without writing to the log (log expired or lost, job gone), or had ended before the stream
 * opened, the stream ends from the rows: the run's own reason when it failed.
 */
export function notesSource(
  deps: { notesEvents: NotesEventLog; repos: Repositories; queues: Pick<QueueRegistry, 'isLive'>; checkEveryMs?: number },
  session: Pick<ChatSessionRow, 'id' | 'userId' | 'documentationStatus' | 'documentation'>,
): SseSource {
  const current = () => deps.repos.chat.findOwned(session.userId, session.id);
  // Failed notes say why as their run ended them (the model unreachable, the budget spent, ...),
  // whenever the stream opens: the log's `error` event may be past, expired or never written.
  const failed = async function* (): AsyncGenerator<SseMessage> {
    const run = await deps.repos.runs.find('notes', session.id);
    const reason = run?.status === 'cancelled' ? NOTES_CANCELLED : run?.errorMessage;
    yield reason ? notesMessage({ type: 'error', message: reason }) : { data: FAILED_TEXT };
  };
  const liveness = {
    checkEveryMs: deps.checkEveryMs ?? NOTES_CHECK_MS,
    endedAt: async () => {
      const row = await current();
      if (!row || row.documentationStatus === 'ready' || row.documentationStatus === 'failed' || !row.documentationStatus)
        return row?.updatedAt ?? new Date(0);
      return (await deps.queues.isLive('assistant', ticketNotesJobId(session.id))) ? null : new Date();
    },
  };
  return {
    messages(signal, push) {
      if (session.documentationStatus === 'ready' && session.documentation !== null) return stored(session.documentation);
      if (session.documentationStatus === 'failed') return failed();
      let ended = false;
      let streamed = false;
      // Live chunks go straight to `push` as frames shared by every stream of these notes.
      const live = push && {
        framer: notesFrame,
        push: (frames: Frame[]) => {
          push(frames);
          streamed ||= frames.some((frame) => !frame.terminal);
          ended ||= frames[frames.length - 1].terminal;
        },
      };
      const replay = mapYields(deps.notesEvents.follow(session.id, signal, liveness, live), (event) => {
        streamed ||= event.type === 'chunk';
        ended ||= isNotesTerminal(event);
        return notesMessage(event);
      });
      return handOffLive(replay, async function* () {
        if (ended || signal.aborted) return;
        const row = await current();
        if (row?.documentationStatus === 'ready' && row.documentation !== null && !streamed) yield* stored(row.documentation);
        else if (row?.documentationStatus === 'ready') yield { data: '[ERROR] The notes stream was interrupted; open it again' };
        else yield* failed();
      });
    },
    interrupted: { data: '[ERROR] The notes stream was interrupted; open it again' },
  };
}

/** Notes already written, whole, as one chunk. */
async function* stored(documentation: string): AsyncGenerator<SseMessage> {
  yield chunkMessage(documentation);
  yield { data: '[DONE]' };
}

/**
 * A chunk as one `data:` line: JSON escapes its newlines, so a reader that takes each `data:` line
 * as a whole message (not joining multi-line data as the SSE rules say) still gets them back.
 */
const chunkMessage = (text: string): SseMessage => ({ data: JSON.stringify({ type: 'chunk', text }) });

/** A notes event as the stream writes it: a JSON chunk, `[DONE]`, or `[ERROR] …` on one line. */
function notesMessage(event: NotesEvent): SseMessage {
  if (event.type === 'chunk') return chunkMessage(event.text);
  return { data: event.type === 'done' ? '[DONE]' : `[ERROR] ${event.message.replace(/\s+/g, ' ').trim()}` };
}

/** A live notes entry as its SSE bytes, built once per entry and shared by every stream of the session. */
export function notesFrame([, value]: StreamEntry): Frame {
  const event = JSON.parse(value) as NotesEvent;
  return { bytes: Buffer.from(formatSse(notesMessage(event))), terminal: isNotesTerminal(event) };
}

import { notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import { ticketNotesJobId } from '../producers/assistant';
import type { RunOutcome } from '../runs/outcome';
import type { RunHandle, RunKernel } from '../runs/run-kernel';
import { NOTES_INTERRUPTED, type NotesEventLog } from './notes-events';
import { resolutionOutputs } from './ticket-notes';
import { publicStatus } from '../schemas/public-status';

/** What written notes carry. */
export interface NotesResult {
  documentation: string;
}

export type NotesOutcome = RunOutcome<NotesResult, never>;
export type NotesRuns = RunHandle<NotesResult, never, undefined, void>;

/** The text listeners read when notes were stopped by a cancel. */
export const NOTES_CANCELLED = 'The notes were cancelled; resolve the session again to write them';

/**
 * A session's ticket notes as a kind of run, keyed by the session: written again
 * after a failure by reopening the run. The session's `documentation_status` follows the run's end
 * in the same transaction (succeeded → `ready` with the notes and their resolution outputs, otherwise `failed`); the terminal
 * event is the notes log's `done` or `error`. Only the session's owner may cancel them.
 */
export function registerNotesRuns(kernel: RunKernel, deps: { repos: Repositories; notesEvents: NotesEventLog; logger: Logger }): NotesRuns {
  const { repos, notesEvents } = deps;
  const log = deps.logger.child({ component: 'session-notes' });
  return kernel.register<NotesResult, never, undefined, void>({
    kind: 'notes',
    queue: 'assistant',
    jobId: ticketNotesJobId,
    interrupted: { code: 'interrupted', message: NOTES_INTERRUPTED },
    releases: [],

    async authorizeCancel(sessionId, actor) {
      const session = await repos.chat.findOwned(actor.userId, sessionId);
      if (!session) throw notFound('Chat session');
      return { status: session.documentationStatus ?? 'none' };
    },

    async persist(tx, run, outcome) {
      if (outcome.status === 'succeeded') {
        const { documentation } = outcome.result;
        await repos.notes.storeDocumentation(run.id, documentation, resolutionOutputs(documentation, null), tx);
      } else await repos.notes.setDocumentationStatus(run.id, publicStatus('notes', outcome.status), tx);
    },

    async announce(run, outcome) {
      if (outcome.status === 'succeeded') {
        await notesEvents.append(run.id, { type: 'done', documentation: outcome.result.documentation });
        return;
      }
      const message = outcome.status === 'cancelled' ? NOTES_CANCELLED : outcome.message;
      await notesEvents.append(run.id, { type: 'error', message });
      log.info({ sessionId: run.id, status: outcome.status }, 'ticket notes ended without notes');
    },
  });
}

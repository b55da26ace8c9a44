import type { Logger } from '../lib/logger';
import { notFound } from '../lib/errors';
import type { Repositories } from '../models';
import { ticketNotesJobId } from '../producers/assistant';
import type { QueueRegistry } from '../producers/registry';
import type { NotesEventLog } from './notes-events';
import type { NotesRuns } from './notes-run';

/**
 * A chat session's lifecycle writes (decision 0022): resolve (which queues its
 * ticket notes), escalate, pause. The routes check input and limits; the writes happen here.
 */
export class SessionLifecycle {
  constructor(
    private readonly deps: {
      repos: Repositories;
      queues: QueueRegistry;
      notesEvents: NotesEventLog;
      logger: Logger;
      /** The notes' run: a new one each time they are queued. */
      notesRuns: NotesRuns;
    },
  ) {}

  /** Resolves the caller's session and queues its ticket notes (again, after a failed run); 404 for another's or a missing session. */
  async resolve(userId: string, sessionId: string, resolutionSummary: string | undefined): Promise<void> {
    const { repos, queues, notesEvents, logger, notesRuns } = this.deps;
    const resolved = await repos.notes.resolve(userId, sessionId, resolutionSummary);
    if (!resolved) throw notFound('Chat session');
    if (!resolved.queue) return;
    if (resolved.retry) {
      // The failed job keeps its id (and its log its [ERROR]) until removed: clear both first.
      await queues.remove('assistant', ticketNotesJobId(sessionId));
      await notesEvents.reset(sessionId);
    }
    await notesRuns.reopen({ id: sessionId, userId });
    try {
      await queues.enqueue('assistant', 'ticket-notes', { userId, sessionId });
    } catch (error) {
      // Not queued (Redis down): the run fails, which marks the claim failed so the next resolve
      // can queue it again.
      try {
        await notesRuns.end(sessionId, {
          status: 'failed',
          code: 'queue_unavailable',
          message: 'The notes could not be queued; resolve the session again',
        });
      } catch (endError) {
        logger.warn({ err: endError, sessionId }, 'notes run of a failed enqueue not ended; the reaper ends it');
      }
      throw error;
    }
    logger.info({ userId, sessionId, retry: resolved.retry }, 'ticket notes queued');
  }

  /** Marks the caller's session escalated, keeping the reason; 404 for another's or a missing session. */
  async escalate(userId: string, sessionId: string, reason: string | null): Promise<void> {
    if (!(await this.deps.repos.chat.escalate(userId, sessionId, reason))) throw notFound('Chat session');
  }

  /** Marks the caller's session paused; 404 for another's or a missing session. */
  async pause(userId: string, sessionId: string): Promise<void> {
    if (!(await this.deps.repos.notes.setStatus(userId, sessionId, 'paused'))) throw notFound('Chat session');
  }
}

import type { Logger } from '../lib/logger';
import { notFound } from '../lib/errors';
import type { Repositories } from '../models';
import { ticketNotesJobId } from '../producers/assistant';
import type { QueueRegistry } from '../producers/registry';
import type { NotesEventLog } from './notes-events';
import type { NotesRuns } from './notes-run';
import type { BudgetAdmission } from './budget-admission';
import type { PsaPush, PsaPushState } from './psa-push';

/**
 * A chat session's lifecycle writes: resolve (which queues its
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
      /** The notes' model call is reserved against the user's budget before the session is touched. */
      budget: BudgetAdmission;
      /** The push of the notes to the user's PSA, settled at resolve. */
      psaPush: PsaPush;
    },
  ) {}

  /**
   * Resolves the caller's session, queues its ticket notes (again, after a failed run) and settles
   * their push to the user's PSA (to `psaTicketId`, or the ticket given before); 404 for another's
   * or a missing session.
   */
  async resolve(userId: string, sessionId: string, resolutionSummary: string | undefined, psaTicketId?: string): Promise<PsaPushState> {
    await this.resolveNotes(userId, sessionId, resolutionSummary);
    const session = await this.deps.repos.chat.findOwned(userId, sessionId);
    if (!session) throw notFound('Chat session');
    return this.deps.psaPush.onResolve(userId, session, psaTicketId);
  }

  private async resolveNotes(userId: string, sessionId: string, resolutionSummary: string | undefined): Promise<void> {
    const { repos, queues, notesEvents, logger, notesRuns, budget } = this.deps;
    const session = await repos.chat.findOwned(userId, sessionId);
    if (!session) throw notFound('Chat session');
    // Notes will be queued (none yet, or the last ones failed): their model call is reserved before anything is written.
    const needsNotes = session.documentationStatus === null || session.documentationStatus === 'failed';
    // The transcript the worker adds is counted when the call is sent; its reservation grows to fit then.
    const reservationId = needsNotes ? await budget.admitPrompt(userId, [resolutionSummary ?? '']) : undefined;
    const ticket = { userId, reservationId };
    const resolved = await repos.notes.resolve(userId, sessionId, resolutionSummary).catch(async (error: unknown) => {
      await budget.releaseUnused(ticket);
      throw error;
    });
    if (!resolved?.queue) {
      // Another resolve claimed the notes first (or the session went away): this reservation is not needed.
      await budget.releaseUnused(ticket);
      if (!resolved) throw notFound('Chat session');
      return;
    }
    try {
      if (resolved.retry) {
        // The failed job keeps its id (and its log its [ERROR]) until removed: clear both first.
        await queues.remove('assistant', ticketNotesJobId(sessionId));
        await notesEvents.reset(sessionId);
      }
      await notesRuns.reopen({ id: sessionId, userId });
      // The run holds the reservation from now on: whoever ends it gives back what no call took.
      await notesRuns.hold(sessionId, ticket, { beforeQueued: true });
    } catch (error) {
      await budget.releaseUnused(ticket);
      throw error;
    }
    try {
      await queues.enqueue('assistant', 'ticket-notes', { userId, sessionId, budget: reservationId });
    } catch (error) {
      await budget.releaseUnused(ticket);
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

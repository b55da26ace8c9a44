import type { Logger } from '../lib/logger';
import { notFound } from '../lib/errors';
import type { Repositories } from '../models';
import type { SessionClose } from '../models/session-notes-repository';
import { ticketNotesJobId } from '../producers/assistant';
import type { QueueRegistry } from '../producers/registry';
import type { NotesEventLog } from './notes-events';
import type { NotesRuns } from './notes-run';
import type { BudgetAdmission } from '../turns/budget-admission';
import type { PsaPush, PsaPushState } from './psa-push';

/**
 * A chat session's lifecycle writes: resolve and escalate (each queues its ticket notes and
 * settles their push to the PSA), pause. The routes check input and limits; the writes happen here.
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
   * their push to the user's PSA (to `psaTicketId`, else the session's ticket); 404 for another's
   * or a missing session.
   */
  async resolve(userId: string, sessionId: string, resolutionSummary: string | undefined, psaTicketId?: string): Promise<PsaPushState> {
    return this.close(userId, sessionId, { status: 'resolved', resolutionSummary }, psaTicketId);
  }

  /**
   * Escalates the caller's session, keeping the reason: its ticket notes are written and pushed
   * as a resolve's are, so the next tier gets them on the ticket; 404 for another's or a missing session.
   */
  async escalate(userId: string, sessionId: string, reason: string | null, psaTicketId?: string): Promise<PsaPushState> {
    return this.close(userId, sessionId, { status: 'escalated', escalationReason: reason }, psaTicketId);
  }

  private async close(userId: string, sessionId: string, close: SessionClose, psaTicketId: string | undefined): Promise<PsaPushState> {
    await this.closeWithNotes(userId, sessionId, close);
    const session = await this.deps.repos.chat.findOwned(userId, sessionId);
    if (!session) throw notFound('Chat session');
    return this.deps.psaPush.onResolve(userId, session, psaTicketId);
  }

  private async closeWithNotes(userId: string, sessionId: string, close: SessionClose): Promise<void> {
    const { repos, queues, notesEvents, logger, notesRuns, budget } = this.deps;
    const session = await repos.chat.findOwned(userId, sessionId);
    if (!session) throw notFound('Chat session');
    // Notes will be queued (none yet, or the last ones failed): their model call is reserved before anything is written.
    const needsNotes = session.documentationStatus === null || session.documentationStatus === 'failed';
    // The transcript the worker adds is counted when the call is sent; its reservation grows to fit then.
    const given = close.status === 'resolved' ? close.resolutionSummary : close.escalationReason;
    const reservationId = needsNotes ? await budget.admitPrompt(userId, [given ?? '']) : undefined;
    const ticket = { userId, reservationId };
    const closed = await repos.notes.close(userId, sessionId, close).catch(async (error: unknown) => {
      await budget.releaseUnused(ticket);
      throw error;
    });
    if (!closed?.queue) {
      // Another close claimed the notes first (or the session went away): this reservation is not needed.
      await budget.releaseUnused(ticket);
      if (!closed) throw notFound('Chat session');
      return;
    }
    try {
      if (closed.retry) {
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
    logger.info({ userId, sessionId, status: close.status, retry: closed.retry }, 'ticket notes queued');
  }

  /** Marks the caller's session paused; 404 for another's or a missing session. */
  async pause(userId: string, sessionId: string): Promise<void> {
    if (!(await this.deps.repos.notes.setStatus(userId, sessionId, 'paused'))) throw notFound('Chat session');
  }
}

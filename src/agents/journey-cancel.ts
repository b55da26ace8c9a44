import type { CancelSignals } from '../lib/cancel-signals';
import { conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { journeyTurnJobId } from '../queues/assistant';
import type { QueueRegistry } from '../queues/registry';
import type { JourneySession, JourneyStore, PendingAnswer } from './journey-store';

export interface JourneyCancelsDeps {
  store: JourneyStore;
  queues: Pick<QueueRegistry, 'job' | 'remove'>;
  signals: Pick<CancelSignals, 'request'>;
  logger: Logger;
}

/** The turn a cancel names: the session's next answer, waiting or being answered. */
export interface RunningTurn {
  session: JourneySession;
  turn: number;
  pending: PendingAnswer;
}

const QUEUED = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

/**
 * Cancelling a journey turn (decision 0207): the answer the session is waiting on a reply to.
 *
 * An attempt at a turn ends once, `answered` or `cancelled`, by a SET NX in Redis (where the
 * session lives), so a cancel racing the reply has one winner. A turn still queued is taken off the
 * queue and ended here; a running one is signalled through Redis, and the worker holding it (any
 * process) aborts its model call and ends it. Ending drops the answer: the session stays at the
 * question it asked, and the user may answer it again.
 */
export class JourneyCancels {
  private readonly log: Logger;

  constructor(private readonly deps: JourneyCancelsDeps) {
    this.log = deps.logger.child({ component: 'journey-cancel' });
  }

  /** `POST /agents/journey/:sessionId/cancel` (owner): 202 while a turn waits or runs, 404 not yours, 409 `not_running`. */
  async cancel(userId: string, sessionId: string): Promise<{ sessionId: string; status: 'cancelling' }> {
    const running = await this.runningTurn(await this.authorize(userId, sessionId));
    if (!running) throw conflict('not_running', 'No answer of this journey is waiting for its reply');
    const { session, turn, pending } = running;
    const jobId = journeyTurnJobId(session.id, turn);
    const state = await (await this.deps.queues.job('assistant', jobId))?.getState();
    if (state && QUEUED.has(state)) {
      // Ended first, then taken off the queue: a waiting request that sees the job go finds it
      // cancelled, and a worker that took the job meanwhile finds the attempt ended.
      if (await this.deps.store.claimEnd(session.id, pending.attempt, 'cancelled')) {
        if (await this.removeJob(jobId)) await this.deps.store.dropAnswer(session.id, turn);
        else await this.markCancelRequested(pending.attempt);
      }
      this.log.info({ userId, sessionId, turn }, 'queued journey turn cancelled');
    } else if (state === 'active') {
      await this.markCancelRequested(pending.attempt);
      this.log.info({ userId, sessionId, turn }, 'journey turn cancel requested');
    } else {
      // Failed (the answer waits to be sent again) or gone: nothing runs to stop.
      throw conflict('not_running', 'No answer of this journey is waiting for its reply');
    }
    return { sessionId, status: 'cancelling' };
  }

  /** The user's session; someone else's answers exactly like a missing one. */
  async authorize(userId: string, sessionId: string): Promise<JourneySession> {
    const session = await this.deps.store.get(sessionId);
    if (!session || session.userId !== userId) throw notFound('Journey session');
    return session;
  }

  /** Signals the worker answering this attempt (the request is remembered, so a worker starting later sees it). */
  async markCancelRequested(attempt: string): Promise<void> {
    await this.deps.signals.request('journey', attempt);
  }

  /** Ends the attempt as cancelled, once, dropping its answer. False when it had ended already. */
  end(sessionId: string, turn: number, attempt: string): Promise<boolean> {
    return endCancelledAttempt(this.deps.store, sessionId, turn, attempt);
  }

  /** The session's next turn when an answer waits for it and that attempt has not ended. */
  private async runningTurn(session: JourneySession): Promise<RunningTurn | null> {
    if (session.done) return null;
    const turn = session.turn + 1;
    const pending = await this.deps.store.getAnswer(session.id, turn);
    if (!pending || (await this.deps.store.endOf(session.id, pending.attempt))) return null;
    return { session, turn, pending };
  }

  private async removeJob(jobId: string): Promise<boolean> {
    try {
      return await this.deps.queues.remove('assistant', jobId);
    } catch (error) {
      this.log.warn({ err: error, jobId }, 'journey turn job not taken off its queue; signalling its worker instead');
      return false;
    }
  }
}

/**
 * Ends an attempt as cancelled, once (true for the caller that ended it), and drops its answer, also
 * when the other side ended it first: dropping is idempotent, and the worker and the API each end
 * an attempt they stop.
 */
export async function endCancelledAttempt(store: JourneyStore, sessionId: string, turn: number, attempt: string): Promise<boolean> {
  const won = await store.claimEnd(sessionId, attempt, 'cancelled');
  if (won || (await store.endOf(sessionId, attempt)) === 'cancelled') await store.dropAnswer(sessionId, turn);
  return won;
}

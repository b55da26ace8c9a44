import { conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import { journeyTurnJobId } from '../producers/assistant';
import type { QueueRegistry } from '../producers/registry';
import type { RunHandle, RunKernel, RunKindSpec } from '../runs/run-kernel';
import type { JourneySession, JourneyStore } from './journey-store';

/** A turn that went through: the session with its reply, saved by the end that wins. */
export interface JourneyTurnSucceeded {
  session: JourneySession;
  turn: number;
}

export type JourneyRuns = RunHandle<JourneyTurnSucceeded, never, undefined, null>;

/** Job states in which a turn still runs or waits to: a cancel can stop it. */
const CANCELLABLE = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children', 'active']);

/** The session and turn a journey turn's job id names (`journey-<session>-<turn>`). */
export function turnOfJob(jobId: string | null): { sessionId: string; turn: number } | null {
  const match = jobId ? /^journey-(.+)-(\d+)$/.exec(jobId) : null;
  return match ? { sessionId: match[1], turn: Number(match[2]) } : null;
}

/** The run of an attempt at a turn: on the `assistant` queue, under the turn's job id. */
export function journeyRunInput(userId: string, sessionId: string, turn: number, attempt: string) {
  return { id: attempt, userId, job: { queue: 'assistant' as const, jobId: journeyTurnJobId(sessionId, turn) } };
}

/**
 * A journey turn as a kind of run. Its run is one attempt at a turn (the attempt's
 * uuid, which the answer waiting in the session carries); the job is the turn's. The session lives
 * in Redis and follows the run's end: a success saves the reply into the session and drops the
 * answer, a cancel drops the answer (the session stays at the question it asked, the user may
 * answer again), a failure keeps it for the user to send again. The kernel's conditional UPDATE is
 * the one place a reply and a cancel racing each other meet. Only the session's owner may cancel.
 */
export function registerJourneyRuns(
  kernel: RunKernel,
  deps: { repos: Repositories; store: JourneyStore; queues: Pick<QueueRegistry, 'job'>; logger: Logger },
): JourneyRuns {
  const log = deps.logger.child({ component: 'journey-run' });

  const spec: RunKindSpec<JourneyTurnSucceeded, never, undefined, null> = {
    kind: 'journey',
    queue: 'assistant',
    // The job id follows from the session and turn, given when the run is created.
    jobId: () => null,
    signal: 'journey',
    interrupted: { code: 'interrupted', message: 'The setup assistant stopped before answering; send your answer again' },
    releases: [],

    async authorizeCancel(id, actor) {
      const run = await deps.repos.runs.find('journey', id);
      if (!run || run.userId !== actor.userId) throw notFound('Journey session');
      const state = run.jobId ? await (await deps.queues.job('assistant', run.jobId))?.getState() : undefined;
      // Failed (the answer waits to be sent again) or gone: nothing runs to stop.
      if (!state || !CANCELLABLE.has(state)) throw conflict('not_running', 'No answer of this journey is waiting for its reply');
      return { status: run.status };
    },

    async persist(_tx, run, outcome) {
      if (outcome.status === 'succeeded') {
        const { session, turn } = outcome.result;
        await deps.store.save(session);
        await deps.store.dropAnswer(session.id, turn);
      } else if (outcome.status === 'cancelled') {
        const named = turnOfJob(run.jobId);
        if (named) await deps.store.cancelAnswer(named.sessionId, named.turn, new Date());
      }
      return null;
    },

    async announce(run, outcome) {
      // The waiting request hears the job's end (its return value, or its removal from the queue).
      log.info({ attempt: run.id, jobId: run.jobId, outcome: outcome.status }, 'journey turn ended');
    },
  };

  return kernel.register(spec);
}

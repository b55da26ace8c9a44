import { DelayedError, type Job } from 'bullmq';
import { z } from 'zod';
import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { QueueRegistry } from '../producers/registry';

/**
 * One session, one lane: a chat session runs one turn at a time. A message sent while a turn of
 * its session runs does what the session's multitask strategy says (LangGraph's multitask
 * strategies): `enqueue` runs it after the running turn, which it then sees; `reject` refuses it
 * (409 `turn_in_progress`, nothing written); `interrupt` cancels the running turn, which keeps
 * what it said so far; `rollback` cancels it and removes its messages.
 */
export const MULTITASK_STRATEGIES = ['enqueue', 'reject', 'interrupt', 'rollback'] as const;
export type Multitask = (typeof MULTITASK_STRATEGIES)[number];
export const multitaskSchema = z.enum(MULTITASK_STRATEGIES);

/** The strategy of a session that set none. */
export const DEFAULT_MULTITASK: Multitask = 'enqueue';

/**
 * A turn queued behind another waits as a delayed job: the end of the turn before it promotes it.
 * Should that promotion be lost (the process ending that turn stopped first), the job runs after
 * this delay, finds whether its turn is due, and waits again if not.
 */
export const LANE_RECHECK_MS = 30_000;

/** What a new message does to its session's lane. */
export interface LanePlan {
  /** Refused: 409 `turn_in_progress`, nothing written. */
  refuse: boolean;
  /** What happens to the open turns before it: nothing, cancelled keeping their words, or cancelled and removed. */
  cancel: 'none' | 'interrupt' | 'rollback';
  /** It waits behind open turns (its job is queued delayed, promoted when it is due). */
  behind: boolean;
}

/** The lane plan of a message sent with `strategy` while `openTurns` turns of its session are open. */
export function planLane(strategy: Multitask, openTurns: number): LanePlan {
  if (openTurns === 0) return { refuse: false, cancel: 'none', behind: false };
  switch (strategy) {
    case 'reject':
      return { refuse: true, cancel: 'none', behind: false };
    case 'interrupt':
    case 'rollback':
      return { refuse: false, cancel: strategy, behind: true };
    default:
      return { refuse: false, cancel: 'none', behind: true };
  }
}

/** The strategy that applies: the request's, else the session's, else the default. */
export function strategyOf(requested: Multitask | undefined, session: Multitask | null | undefined): Multitask {
  return requested ?? session ?? DEFAULT_MULTITASK;
}

/**
 * The code of that refusal. It says the session is busy, not that the message was malformed: a
 * socket that closes a connection after a run of bad frames does not count it as one.
 */
export const TURN_IN_PROGRESS = 'turn_in_progress';

/** The refusal of a message sent to a busy session whose strategy is `reject`. */
export const turnInProgress = () =>
  new AppError(409, TURN_IN_PROGRESS, 'A turn of this session is running; wait for it to end, or send with multitask "enqueue"');

/**
 * A worker took a turn whose session still has an earlier turn open: it goes back to wait as a
 * delayed job (no worker slot is held), promoted when the turn before it ends.
 */
export async function waitInLane(job: Pick<Job, 'moveToDelayed' | 'token'>): Promise<never> {
  await job.moveToDelayed(Date.now() + LANE_RECHECK_MS, job.token);
  throw new DelayedError();
}

/** Starts a session's next turn when the one before it ends. */
export class ChatLane {
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      repos: Pick<Repositories, 'chat'>;
      queues: Pick<QueueRegistry, 'promote'>;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'chat-lane' });
  }

  /**
   * The session's first open turn, if its job waits delayed, runs now. Called after a turn ends and
   * after a turn is queued behind others (the turn before it may have ended meanwhile). `known`:
   * the head as the end's own statement read it (null: the lane is empty), so nothing is read; a
   * turn queued after that statement began reads the lane itself once that end is committed.
   */
  async advance(sessionId: string, known?: string | null): Promise<void> {
    const head = known === undefined ? await this.deps.repos.chat.laneHead(sessionId) : known;
    if (!head) return;
    if (await this.deps.queues.promote('assistant', head)) this.log.debug({ sessionId, messageId: head }, 'next turn of the lane promoted');
  }
}

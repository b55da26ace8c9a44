import { randomUUID } from 'node:crypto';
import type { QueueConsumers } from '../producers/worker-presence';
import type { Job, QueueEvents } from 'bullmq';
import type { RedisClient } from '../lib/redis';
import type { Config } from '../../config';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { journeyTurnJobId, journeyTurnResultSchema, parseJourneyFailure } from '../producers/assistant';
import type { QueueRegistry } from '../producers/registry';
import { JOURNEY_FINISH_TOOL } from '../ai/prompt-sizes';
import {
  FINISH_NOW,
  FIRST_QUESTIONS,
  JOURNEY_DATA_TYPES,
  journeySystemPrompt,
  MAX_ANSWERS,
  MIN_ANSWERS,
  type JourneyAgentType,
  type JourneyDataType,
} from './journey-script';
import { journeyRunInput, type JourneyRuns } from './journey-run';
import { isOpen } from '../runs/run-kernel';
import { JourneyStore, type JourneyEntry, type JourneySession } from './journey-store';
import { settled } from '../lib/settled';
import type { BudgetAdmission } from '../turns/budget-admission';
import { admitPrompt } from '../ai/prompt-admission';

/** How long a request waits for its turn's reply (the model call retries and falls back inside). */
export const JOURNEY_WAIT_MS = 90_000;

/** What `start` and `message` answer. */
export interface JourneyReply {
  sessionId: string;
  message: string;
  done: boolean;
  /** Answers processed so far: 0 after start. */
  turn: number;
  /** Only once `done`. */
  promptTemplate?: string;
  /** The answer was cancelled before its reply: `message` is the question it answered, asked again. */
  cancelled?: true;
}

/** `GET /agents/journey/:sessionId`: the whole conversation, e.g. to resume after a reload or a 504. */
export interface JourneyView extends Omit<JourneyReply, 'message'> {
  agentType: JourneyAgentType;
  dataTypes: JourneyDataType[];
  messages: JourneyEntry[];
  /** Answers whose turn was cancelled before its reply (the last 20). */
  cancelledTurns: Array<{ turn: number; answer: string; cancelledAt: string }>;
  expiresInSeconds: number;
}

export interface JourneyServiceDeps {
  config: Config;
  redis: RedisClient;
  queues: QueueRegistry;
  /** Journey turns on the run kernel: each attempt at a turn is a run, cancelled through it. */
  runs: JourneyRuns;
  logger: Logger;
  /** Each answer's first model call is reserved against the user's budget before anything is written. */
  budget: BudgetAdmission;
  /** Overrides {@link JOURNEY_WAIT_MS}. */
  waitMs?: number;
  /** Refuses (503 `queue_unconsumed`) a request whose queue no worker consumes, before anything is written. */
  consumers?: QueueConsumers;
}

/**
 * The API side of the agent setup journey: sessions live in Redis, bound to their
 * user; each answer is a `journey-turn` job on the `assistant` queue whose reply the request waits
 * for. The server, not the model, decides when the journey may and must end (see the runner).
 */
export class JourneyService {
  private readonly store: JourneyStore;
  private readonly log: Logger;
  constructor(private readonly deps: JourneyServiceDeps) {
    this.store = new JourneyStore(deps.redis, deps.config.redis.keyPrefix, deps.config.agents.journeyTtlSeconds);
    this.log = deps.logger.child({ component: 'journey' });
  }

  /** `POST /agents/journey/:sessionId/cancel`: stops the answer waiting for its reply (202), 404 not yours, 409 `not_running`. */
  async cancel(userId: string, sessionId: string): Promise<{ sessionId: string; status: 'cancelling' }> {
    const session = await this.owned(userId, sessionId);
    const pending = session.done ? null : await this.store.getAnswer(session.id, session.turn + 1);
    const run = pending ? await this.deps.runs.find(pending.attempt) : null;
    if (!pending || !run || !isOpen(run)) throw conflict('not_running', 'No answer of this journey is waiting for its reply');
    await this.deps.runs.cancel(pending.attempt, { userId });
    this.log.info({ userId, sessionId, turn: session.turn + 1 }, 'journey turn cancel requested');
    return { sessionId, status: 'cancelling' };
  }

  /** A new session and its first, contextual question (no model call). */
  async start(userId: string, input: { agentType: JourneyAgentType; dataTypes: JourneyDataType[] }): Promise<JourneyReply> {
    // Canonical order, no repeats: the prompt and the template read the same whatever the client sent.
    const dataTypes = JOURNEY_DATA_TYPES.filter((type) => input.dataTypes.includes(type));
    const question = FIRST_QUESTIONS[input.agentType];
    const session: JourneySession = {
      id: randomUUID(),
      userId,
      agentType: input.agentType,
      dataTypes,
      turn: 0,
      done: false,
      messages: [{ role: 'assistant', content: question }],
      createdAt: new Date().toISOString(),
    };
    await this.store.save(session);
    this.log.info({ userId, sessionId: session.id, agentType: session.agentType, dataTypes }, 'journey started');
    return { sessionId: session.id, message: question, done: false, turn: 0 };
  }

  /**
   * Runs one answer through the worker and returns its reply. 404 for a session that is unknown,
   * expired or someone else's; 409 once it is done; 504 when the reply takes too long (it still
   * arrives: {@link view} shows it); 503 when the model is unreachable; 502 for other failures. A
   * turn cancelled before its reply answers `cancelled: true` with the question asked again.
   */
  async message(userId: string, input: { sessionId: string; message: string }): Promise<JourneyReply> {
    const session = await this.owned(userId, input.sessionId);
    if (session.done) throw conflict('journey_done', 'This setup journey is finished; start a new one to change the configuration');
    // The answer becomes part of the agent's prompt template: the guard refuses it before it is stored.
    admitPrompt(this.deps.config.generation.promptGuard, 'journey', [{ path: 'message', text: input.message }], {
      logger: this.log,
      userId,
    });
    const turn = session.turn + 1;
    const { queues, budget } = this.deps;
    await this.deps.consumers?.require('assistant');
    // Reserved before anything is written: a refusal leaves the session, its answers and the queue as
    // they were. Counted as the worker's first call of the turn (journey-runner.ts): the journey's
    // system prompt, the exchanges so far and the answer; from the third answer the finish tool, and
    // at the last the instruction to finish now.
    const reservationId = await budget.admitPrompt(
      userId,
      [
        journeySystemPrompt(session.agentType, session.dataTypes),
        ...session.messages.map((earlier) => earlier.content),
        input.message,
        ...(turn >= MAX_ANSWERS ? [FINISH_NOW] : []),
      ],
      undefined,
      turn >= MIN_ANSWERS ? JOURNEY_FINISH_TOOL : { bytes: 0, texts: 0 },
    );
    const ticket = { userId, reservationId };
    let job: Job;
    let events: QueueEvents;
    let attempt: string | undefined;
    try {
      // Listening before enqueueing, so the completion cannot slip past.
      events = await queues.events('assistant');
      const earlier = await queues.job('assistant', journeyTurnJobId(session.id, turn));
      if (earlier && ((await earlier.isFailed()) || (await wasCancelled(earlier)))) {
        // The user answers again after a failed or cancelled turn: that job gives way to a fresh one with this answer.
        await earlier
          .remove()
          .catch((error: unknown) => this.log.warn({ err: error, sessionId: session.id, turn }, 'failed journey turn job not removed'));
        await this.store.dropAnswer(session.id, turn);
      }
      // A double submit finds the first answer waiting and the same job id: it waits for the same reply (and gives its reservation back).
      const fresh = await this.store.putAnswer(session.id, turn, input.message);
      if (!fresh) await budget.releaseUnused(ticket);
      attempt = (await this.store.getAnswer(session.id, turn))?.attempt;
      // The attempt is the turn's run, recorded before its job is queued.
      if (attempt) {
        await this.deps.runs.create(journeyRunInput(userId, session.id, turn, attempt));
        // The attempt holds the reservation from now on: whoever ends it gives back what no call took.
        if (fresh) await this.deps.runs.hold(attempt, ticket, { beforeQueued: true });
      }
      job = await queues.enqueue('assistant', 'journey-turn', {
        userId,
        sessionId: session.id,
        turn,
        budget: fresh ? reservationId : undefined,
      });
    } catch (error) {
      await budget.releaseUnused(ticket);
      throw error;
    }
    this.log.info({ userId, sessionId: session.id, turn, jobId: job.id }, 'journey turn queued');
    if ((await this.waitFor(job, events, attempt)) === 'cancelled') {
      this.log.info({ userId, sessionId: session.id, turn }, 'journey turn answered as cancelled');
      return { sessionId: session.id, message: session.messages.at(-1)?.content ?? '', done: false, turn: turn - 1, cancelled: true };
    }

    const after = await this.store.get(session.id);
    const reply = after?.messages[2 * turn];
    if (!after || after.userId !== userId || !reply) throw notFound('Journey session');
    return {
      sessionId: after.id,
      message: reply.content,
      done: after.done && after.turn === turn,
      turn,
      ...(after.done && after.turn === turn && after.promptTemplate ? { promptTemplate: after.promptTemplate } : {}),
    };
  }

  async view(userId: string, sessionId: string): Promise<JourneyView> {
    const session = await this.owned(userId, sessionId);
    return {
      sessionId: session.id,
      agentType: session.agentType,
      dataTypes: session.dataTypes,
      turn: session.turn,
      done: session.done,
      messages: session.messages,
      ...(session.done && session.promptTemplate ? { promptTemplate: session.promptTemplate } : {}),
      cancelledTurns: session.cancelledTurns ?? [],
      expiresInSeconds: await this.store.ttl(session.id),
    };
  }

  /** The attempt ended cancelled, or its cancel was requested (its job was taken off the queue, and its end follows). */
  private async cancelledAttempt(attempt: string): Promise<boolean> {
    const run = await this.deps.runs.find(attempt);
    return run?.status === 'cancelled' || (run !== null && isOpen(run) && run.cancelRequestedAt !== null);
  }

  /** Someone else's session answers exactly like a missing one. */
  private async owned(userId: string, sessionId: string): Promise<JourneySession> {
    const session = await this.store.get(sessionId);
    if (!session || session.userId !== userId) throw notFound('Journey session');
    return session;
  }

  /**
   * Waits for the turn's job: `answered`, or `cancelled` when the worker ended it so or a cancel took
   * it off the queue (the queue's `removed` event, seen on every node).
   */
  private async waitFor(job: Job, events: QueueEvents, attempt?: string): Promise<'answered' | 'cancelled'> {
    const waitMs = this.deps.waitMs ?? JOURNEY_WAIT_MS;
    const sessionId = (job.data as { sessionId: string }).sessionId;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new AppError(
              504,
              'journey_timeout',
              `No reply arrived within ${Math.round(waitMs / 1000)} s; GET /api/v1/agents/journey/${sessionId} shows it once it does`,
            ),
          ),
        waitMs,
      );
    });
    // A removal counts only when this attempt's cancel took it off the queue: the earlier, failed
    // job of the same id may be removed just before this one was queued, and its event may arrive late.
    let onRemoved: ((args: { jobId: string }) => void) | undefined;
    const removed = new Promise<'cancelled'>((resolve) => {
      onRemoved = ({ jobId }) => {
        if (jobId !== job.id || !attempt) return;
        this.cancelledAttempt(attempt)
          .then((cancelled) => cancelled && resolve('cancelled'))
          .catch((error: unknown) => this.log.warn({ err: error, sessionId }, 'journey turn run not read; waiting for the job instead'));
      };
      events.on('removed', onRemoved);
    });
    // BullMQ's own deadline (a little later) only releases its listeners; ours decides the answer.
    const finished = job.waitUntilFinished(events, waitMs + 1_000);
    void settled(finished);
    try {
      // Cancelled while queued before this request listened: the removal went by already.
      if (attempt && (await this.deps.runs.find(attempt))?.status === 'cancelled') return 'cancelled';
      const result: unknown = await Promise.race([finished, timeout, removed]);
      if (result === 'cancelled') return 'cancelled';
      journeyTurnResultSchema.parse(result);
      return isCancelledResult(result) ? 'cancelled' : 'answered';
    } catch (error) {
      if (error instanceof AppError) throw error;
      const { code, message } = parseJourneyFailure(error instanceof Error ? error.message : String(error));
      if (code === 'session_not_found') throw notFound('Journey session');
      if (code === 'llm_unavailable') throw new AppError(503, code, message, undefined, { 'Retry-After': '5' });
      if (code === 'llm_auth_failed') throw new AppError(503, code, message);
      if (code === 'budget_exceeded') throw new AppError(429, code, message);
      throw new AppError(502, code, 'The setup assistant could not answer; send your answer again');
    } finally {
      clearTimeout(timer);
      if (onRemoved) events.off('removed', onRemoved);
    }
  }
}

/** A turn's job ended `cancelled` (its worker stopped it), as its return value says. */
function isCancelledResult(result: unknown): boolean {
  return typeof result === 'object' && result !== null && (result as { cancelled?: unknown }).cancelled === true;
}

async function wasCancelled(job: Job): Promise<boolean> {
  return (await job.isCompleted()) && isCancelledResult(job.returnvalue);
}

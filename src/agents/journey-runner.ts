import { describeRedacted } from '../lib/redact-error';
import { MODEL_FAILURE_TEXT } from '../ai/llm';
import type { Job } from 'bullmq';
import type { RedisClient } from '../lib/redis';
import type { Config } from '../../config';
import { ModelUnavailableError, type ModelGateway } from '../ai/model-gateway';
import type { CancelSignals } from '../lib/cancel-signals';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import { journeyFailure, type JourneyFailureCode, type JourneyTurnJob, type JourneyTurnResult } from '../producers/assistant';
import {
  composeTemplate,
  DONE_MESSAGE,
  FALLBACK_QUESTIONS,
  FINISH_NOW,
  FINISH_TOOL,
  finishArgsSchema,
  journeySystemPrompt,
  MAX_ANSWERS,
  MAX_REPLY_CHARS,
  MIN_ANSWERS,
  promptTemplateSchema,
  tooEarly,
} from './journey-script';
import { journeyRunInput, type JourneyRuns } from './journey-run';
import { isOpen } from '../runs/run-kernel';
import { JourneyStore, type JourneySession } from './journey-store';
import type { RunOutcome } from './run-outcome';
import { historyMessages, systemMessage, userMessage, type ModelMessage } from '../ai/model-messages';
import { offeredTool, type ModelTool } from '../ai/model-tools';
import { BudgetExceededError, type BudgetTicket } from '../budget/budget-door';

export interface JourneyRunnerDeps {
  config: Config;
  repos: Repositories;
  models: ModelGateway;
  /** Where the journey sessions are (the worker's connection). */
  redis: RedisClient;
  /** Cancel requests from any API node: a turn watches its own attempt while it runs. */
  signals: Pick<CancelSignals, 'watch'>;
  /** Journey turns on the run kernel: an attempt starts and ends through it. */
  runs: JourneyRuns;
  logger: Logger;
  metrics?: Metrics;
}

/** What one model call said: its text, and whether (and with what) it called {@link FINISH_TOOL}. */
interface ModelSaid {
  text: string;
  finish?: { args: unknown };
}

/** What a turn that went through decided. */
interface TurnDecision {
  message: string;
  done: boolean;
  promptTemplate?: string;
  templateSource?: 'model' | 'server';
}

/** How a turn ended: its decision, a failure (code and words for the user), or a cancel. */
export type JourneyTurnOutcome = RunOutcome<{ turn: number }> & { decision?: TurnDecision };

/** The job's return value: the turn's reply is read from the session; `cancelled` when a cancel ended it. */
export type JourneyTurnJobResult = JourneyTurnResult & { cancelled?: true };

/** Built once, bound on every call that offers it (its size is JOURNEY_FINISH_TOOL in src/ai/prompt-sizes.ts). */
export const finishTool: ModelTool = offeredTool({
  name: FINISH_TOOL,
  description: 'Finish the setup: hand over the prompt template for the extraction agent and a short message for the user.',
  schema: finishArgsSchema,
});

/**
 * The worker side of a journey turn. The server keeps the rules, whatever the
 * model does: before the third answer the finish tool is not offered and a finish is ignored (the
 * model is asked for a question instead); from the third it may finish; at the fifth it must, and
 * a missing or unusable template is replaced by one composed from the user's answers.
 */
export class JourneyRunner {
  private readonly store: JourneyStore;

  constructor(private readonly deps: JourneyRunnerDeps) {
    this.store = new JourneyStore(deps.redis, deps.config.redis.keyPrefix, deps.config.agents.journeyTtlSeconds);
  }

  /**
   * The `assistant/journey-turn` job, its payload parsed by the worker pool: a failure is thrown
   * (a permanent one, with its code), a reply or a cancel is the job's return value.
   */
  async process(data: JourneyTurnJob, job: Job): Promise<JourneyTurnJobResult> {
    const log = this.deps.logger.child({ component: 'journey', jobId: job.id, sessionId: data.sessionId, turn: data.turn });
    const session = await this.store.get(data.sessionId);
    if (!session || session.userId !== data.userId)
      throw journeyFailure('session_not_found', 'The setup journey has expired; start a new one');
    // Already answered (a stalled job run again): the stored reply stands.
    if (session.turn >= data.turn) return { turn: data.turn, done: session.done && session.turn === data.turn };
    if (session.done || session.turn !== data.turn - 1)
      throw journeyFailure('journey_failed', `Turn ${data.turn} does not follow turn ${session.turn}`);
    // One ticket for the turn: its first model call takes over the request's reservation.
    const ticket: BudgetTicket = { userId: data.userId, reservationId: data.budget };
    const outcome = await this.runTurn(data, session, log, ticket);
    switch (outcome.status) {
      case 'succeeded':
        return { turn: data.turn, done: outcome.decision!.done };
      case 'cancelled':
        log.info('journey turn cancelled');
        return { turn: data.turn, done: false, cancelled: true };
      case 'failed':
        throw journeyFailure(outcome.code as JourneyFailureCode, outcome.message);
      case 'timed_out':
        throw journeyFailure('journey_failed', outcome.message);
    }
  }

  /**
   * Runs one attempt at a turn to its outcome, watching for its cancel. The attempt is a run and
   * ends once, through the run kernel: a reply is saved only when it wins over a cancel, and a
   * cancel that wins drops the answer, leaving the session at its question.
   */
  private async runTurn(data: JourneyTurnJob, session: JourneySession, log: Logger, ticket: BudgetTicket): Promise<JourneyTurnOutcome> {
    const turn = data.turn;
    const pending = await this.store.getAnswer(session.id, turn);
    if (pending === null)
      return { status: 'failed', code: 'journey_failed', message: 'The answer for this turn is gone; send it again', turn };
    const { runs } = this.deps;
    const attempt = pending.attempt;
    // Recorded when the answer was queued; again here for a turn queued before its run was.
    await runs.create(journeyRunInput(data.userId, session.id, turn, attempt));
    // What no model call takes the kernel gives back when the attempt ends.
    await runs.hold(attempt, ticket);
    const begun = await runs.start(attempt);
    if (!begun.started) {
      // Cancelled while it waited: it ends here (or had ended so).
      if (begun.run && (isOpen(begun.run) || begun.run.status === 'cancelled')) return this.endCancelled(attempt, turn);
      return { status: 'failed', code: 'journey_failed', message: 'This answer was handled already; send it again', turn };
    }
    const cancel = this.deps.signals.watch('journey', pending.attempt);
    let decision: TurnDecision;
    try {
      decision = await this.decide(data, session, pending.text, log, cancel.signal, ticket);
    } catch (error) {
      if (cancel.signal.aborted) return this.endCancelled(attempt, turn);
      log.warn({ err: error }, 'journey turn failed');
      const failed: JourneyTurnOutcome =
        error instanceof ModelUnavailableError
          ? { status: 'failed', code: error.code, message: MODEL_FAILURE_TEXT[error.code], turn }
          : error instanceof BudgetExceededError
            ? { status: 'failed', code: 'budget_exceeded', message: error.message, turn }
            : { status: 'failed', code: 'journey_failed', message: describeRedacted(error), turn };
      await runs.end(attempt, { status: 'failed', code: failed.code, message: failed.message });
      return failed;
    } finally {
      cancel.release();
    }
    session.messages.push({ role: 'user', content: pending.text }, { role: 'assistant', content: decision.message });
    session.turn = turn;
    session.done = decision.done;
    if (decision.done) Object.assign(session, { promptTemplate: decision.promptTemplate, templateSource: decision.templateSource });
    // Saved by the end only when it wins over a cancel.
    if (!(await runs.end(attempt, { status: 'succeeded', result: { session, turn } })).won) return this.endCancelled(attempt, turn);
    log.info({ done: decision.done, templateSource: decision.templateSource }, 'journey turn completed');
    return { status: 'succeeded', turn, decision };
  }

  /** Ends a cancelled attempt, dropping its answer, unless the API ended it first (and dropped it then). */
  private async endCancelled(attempt: string, turn: number): Promise<JourneyTurnOutcome> {
    await this.deps.runs.end(attempt, { status: 'cancelled' });
    return { status: 'cancelled', turn };
  }

  private async decide(
    data: JourneyTurnJob,
    session: JourneySession,
    answer: string,
    log: Logger,
    signal: AbortSignal,
    budget: BudgetTicket,
  ): Promise<TurnDecision> {
    const turn = data.turn;
    const history: ModelMessage[] = [
      systemMessage(journeySystemPrompt(session.agentType, session.dataTypes)),
      ...historyMessages(session.messages),
      userMessage(answer),
    ];
    if (turn >= MAX_ANSWERS) {
      const said = await this.call(data, [...history, systemMessage(FINISH_NOW)], { offer: true, force: true, signal, budget });
      return this.finish(session, answer, said.finish?.args);
    }
    const said = await this.call(data, history, { offer: turn >= MIN_ANSWERS, signal, budget });
    if (said.finish && turn >= MIN_ANSWERS) return this.finish(session, answer, said.finish.args);
    if (said.finish) {
      // Too early: the finish is dropped and the model asked once more, for a question.
      log.info({ answers: turn }, 'journey model tried to finish early');
      const again = await this.call(data, [...history, systemMessage(tooEarly(turn))], { offer: false, signal, budget });
      return { done: false, message: questionOf(again.text) ?? FALLBACK_QUESTIONS[turn - 1] };
    }
    return { done: false, message: questionOf(said.text) ?? FALLBACK_QUESTIONS[turn - 1] };
  }

  /** The model's template when it is usable, else one composed from the answers. */
  private finish(session: JourneySession, answer: string, args: unknown): TurnDecision {
    const fields = (typeof args === 'object' && args !== null ? args : {}) as Record<string, unknown>;
    const template = promptTemplateSchema.safeParse(fields.promptTemplate ?? fields.prompt_template);
    if (template.success) {
      return { done: true, message: questionOf(fields.message) ?? DONE_MESSAGE, promptTemplate: template.data, templateSource: 'model' };
    }
    const answers = [...session.messages, { role: 'user' as const, content: answer }];
    const exchanges = [];
    for (let i = 0; i + 1 < answers.length; i += 2) exchanges.push({ question: answers[i].content, answer: answers[i + 1].content });
    const promptTemplate = composeTemplate({ agentType: session.agentType, dataTypes: session.dataTypes, exchanges });
    return { done: true, message: DONE_MESSAGE, promptTemplate, templateSource: 'server' };
  }

  /**
   * One model call through the gateway (usage recorded with purpose `journey`). Nothing reaches the
   * user until the turn ends, so any failure may move on to the next model.
   */
  private async call(
    data: JourneyTurnJob,
    messages: ModelMessage[],
    options: { offer: boolean; force?: boolean; signal: AbortSignal; budget: BudgetTicket },
  ): Promise<ModelSaid> {
    const tier = (await this.deps.repos.users.findById(data.userId))?.tier ?? 'free';
    const turn = await this.deps.models.streamTurn({
      purpose: 'journey',
      messages,
      tools: options.offer ? [finishTool] : undefined,
      toolChoice: options.offer && options.force ? FINISH_TOOL : undefined,
      account: { userId: data.userId, tier, sessionId: data.sessionId },
      budget: options.budget,
      signal: options.signal,
    });
    // Arguments that were not JSON still mean "finish": the template then comes from the answers.
    const finish = turn.toolCalls.find((call) => call.name === FINISH_TOOL);
    return { text: turn.text, finish: finish ? { args: finish.parsed } : undefined };
  }
}

/** A reply worth sending: trimmed, not empty, bounded. */
function questionOf(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  return trimmed.length > MAX_REPLY_CHARS ? `${trimmed.slice(0, MAX_REPLY_CHARS - 1)}…` : trimmed;
}

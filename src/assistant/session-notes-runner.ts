import { describeRedacted } from '../lib/redact-error';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../../config';
import { ModelAuthFailedError, ModelStoppedEarly, ModelUnavailableError, type ModelGateway } from '../ai/model-gateway';
import { MODEL_FAILURE_TEXT } from '../ai/llm';
import { systemMessage, userMessage, type ModelMessage } from '../ai/model-messages';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import type { TicketNotesJob } from '../producers/assistant';
import type { Enqueue } from '../producers/registry';
import { NOTES_INTERRUPTED, type NotesEventLog } from './notes-events';
import type { NotesOutcome, NotesRuns } from './notes-run';
import { NOTE_SECTIONS, NotesGate, templateSections, type NotesMessage } from './ticket-notes';
import { BudgetExceededError, type BudgetTicket } from '../budget/budget-door';
import { restartedAfterCrash } from '../lib/job-restart';

/** Messages of the session fed to the model (the latest ones when a session is long). */
export const NOTES_HISTORY_LIMIT = 60;

const SYSTEM = [
  'You write support ticket notes for a finished assistant session.',
  `Answer in markdown with exactly four sections, in this order, each starting with a "## " heading: ${NOTE_SECTIONS.map((s) => `"## ${s}"`).join(', ')}.`,
  'No other "## " headings and no text before the first heading. Be factual and brief; use bullet lists for steps.',
].join(' ');

export interface SessionNotesRunnerDeps {
  config: Config;
  repos: Repositories;
  models: ModelGateway;
  notesEvents: NotesEventLog;
  logger: Logger;
  /** The notes' run: every end goes through it. */
  runs: NotesRuns;
  metrics?: Metrics;
  /** Gives back the reservation the resolve took when the notes' model call did not take it over. */
  /** Queues the session's embedding once its notes are stored. */
  enqueue?: Enqueue;
}

/**
 * The worker side of ticket notes: stream the model's notes into the session's event log as they
 * come (kept to the four sections by {@link NotesGate}, completed from a template when the model
 * strays), then store them on the session and record the token usage (purpose `notes`).
 */
export class SessionNotesRunner {
  constructor(private readonly deps: SessionNotesRunnerDeps) {}

  /** The `assistant/ticket-notes` job, its payload parsed by the worker pool. */
  async process(data: TicketNotesJob, job: Job): Promise<{ completedFromTemplate: boolean; chars: number }> {
    // The notes' model call takes over the reservation the resolve took; unused, it is given back.
    const ticket: BudgetTicket = { userId: data.userId, reservationId: data.budget };
    // What no model call takes the kernel gives back when the run ends.
    await this.deps.runs.hold(data.sessionId, ticket);
    return await this.write(data, job, ticket);
  }

  private async write(data: TicketNotesJob, job: Job, ticket: BudgetTicket): Promise<{ completedFromTemplate: boolean; chars: number }> {
    const log = this.deps.logger.child({ component: 'session-notes', jobId: job.id, sessionId: data.sessionId });
    const { chat, notes } = this.deps.repos;
    const { runs } = this.deps;
    const events = this.deps.notesEvents;
    const [session, start] = await Promise.all([chat.findOwned(data.userId, data.sessionId), runs.start(data.sessionId)]);
    if (!session) {
      const message = 'The chat session no longer exists';
      const ended = await runs.end(data.sessionId, { status: 'failed', code: 'session_gone', message });
      // No run to end (it never had one): its listeners still hear why.
      if (!ended.won && !ended.run) await events.append(data.sessionId, { type: 'error', message });
      throw new UnrecoverableError(`Chat session ${data.sessionId} does not exist`);
    }
    if (session.documentationStatus === 'ready' && session.documentation !== null) {
      return { completedFromTemplate: false, chars: session.documentation.length };
    }
    if (!start.started) {
      // Cancelled before it began: ended here without a model call. Otherwise ended elsewhere.
      if (start.run?.cancelRequestedAt && (start.run.status === 'queued' || start.run.status === 'running'))
        await runs.end(data.sessionId, { status: 'cancelled' });
      return { completedFromTemplate: false, chars: 0 };
    }
    if (restartedAfterCrash(job)) {
      // A worker ran this job before and died (BullMQ hands a stalled job on): part of the notes may
      // already be in the event stream, and streaming them again would repeat that text to readers.
      // They end as the reaper ends interrupted notes; resolving the session again starts afresh.
      await runs.end(data.sessionId, { status: 'failed', code: 'interrupted', message: NOTES_INTERRUPTED });
      log.warn({ started: job.attemptsStarted }, 'ticket notes interrupted: their worker stopped');
      throw new UnrecoverableError('ticket notes interrupted: the worker running them stopped');
    }
    await notes.setDocumentationStatus(data.sessionId, 'generating');
    const all = await chat.history(data.sessionId);
    const messages: NotesMessage[] = all.filter((m) => m.role !== 'tool').slice(-NOTES_HISTORY_LIMIT);
    const gate = new NotesGate();
    const pending: Array<Promise<void>> = [];
    const emit = (text: string) => {
      if (text) pending.push(events.append(data.sessionId, { type: 'chunk', text }));
    };

    let outcome: NotesOutcome;
    let completed: boolean;
    try {
      await this.stream(data, ticket, this.prompt(messages, session.resolutionSummary), (text) => emit(gate.push(text)));
      const end = gate.end(templateSections(messages, session.resolutionSummary));
      completed = end.completed;
      emit(end.tail);
      await Promise.all(pending);
      outcome = { status: 'succeeded', result: { documentation: end.notes } };
    } catch (error) {
      await Promise.allSettled(pending);
      log.warn({ err: error }, 'ticket notes failed');
      outcome = { status: 'failed', ...failureOf(error) };
      await runs.end(data.sessionId, outcome);
      throw new UnrecoverableError(`ticket notes failed: ${describeRedacted(error)}`);
    }
    const ended = await runs.end(data.sessionId, outcome);
    if (!ended.won) {
      log.info({ status: ended.run?.status }, 'ticket notes ended elsewhere while they were written; dropped');
      return { completedFromTemplate: false, chars: 0 };
    }
    const chars = outcome.result.documentation.length;
    log.info({ chars, completedFromTemplate: completed }, 'ticket notes stored');
    await this.queueEmbedding(data, log);
    return { completedFromTemplate: completed, chars };
  }

  /**
   * The stored notes are final whatever happens here: a session whose embedding could not be
   * queued is only missing from similar-session lookups, so that is logged, not a failed job.
   */
  private async queueEmbedding(data: TicketNotesJob, log: Logger): Promise<void> {
    if (!this.deps.enqueue) return;
    try {
      await this.deps.enqueue('assistant', 'session-embedding', { userId: data.userId, sessionId: data.sessionId });
    } catch (error) {
      log.warn({ err: error }, 'session embedding not queued; the session is left out of similar-session lookups');
    }
  }

  private prompt(messages: NotesMessage[], resolutionSummary: string | null) {
    const transcript = messages.map((m) => `${m.role === 'user' ? 'Customer' : 'Assistant'}: ${m.content}`).join('\n');
    const summary = resolutionSummary?.trim() ? `\n\nResolution summary: ${resolutionSummary.trim()}` : '';
    return [
      systemMessage(SYSTEM),
      userMessage(`Write the ticket notes for this support session.\n\nConversation:\n${transcript || '(no messages)'}${summary}`),
    ];
  }

  /**
   * Streams the notes through the gateway: a model that fails before any text is replaced by the
   * next; after text, failure is final. The gateway records the usage (purpose `notes`).
   */
  private async stream(
    data: TicketNotesJob,
    budget: BudgetTicket,
    messages: ModelMessage[],
    onText: (text: string) => void,
  ): Promise<void> {
    const tier = (await this.deps.repos.users.findById(data.userId))?.tier ?? 'free';
    await this.deps.models.streamTurn({
      purpose: 'notes',
      messages,
      onText,
      account: { userId: data.userId, tier, sessionId: data.sessionId },
      budget,
    });
  }
}

/** Why notes failed, in words for the user: the model unreachable, the budget spent (with its numbers), the answer stopped early (its code and reason), or anything else. */
function failureOf(error: unknown): { code: string; message: string } {
  if (error instanceof ModelAuthFailedError) return { code: error.code, message: MODEL_FAILURE_TEXT[error.code] };
  if (error instanceof ModelUnavailableError)
    return { code: 'llm_unavailable', message: 'The language model could not be reached; resolve the session again to retry' };
  if (error instanceof BudgetExceededError) return { code: 'budget_exceeded', message: error.message };
  // The code and the provider's reason both reach the reader: the stream's `[ERROR]` line carries the message.
  if (error instanceof ModelStoppedEarly)
    return { code: error.code, message: `${error.code}: ${error.message}; resolve the session again to retry` };
  return { code: 'notes_failed', message: 'The notes could not be written; resolve the session again to retry' };
}

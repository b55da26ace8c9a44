import { describeRedacted } from '../lib/redact-error';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../../config';
import { ModelAuthFailedError, ModelStoppedEarly, ModelUnavailableError, type ModelGateway } from '../ai/model-gateway';
import { MODEL_FAILURE_TEXT } from '../ai/llm';
import { systemMessage, userMessage, type ModelMessage } from '../ai/model-messages';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { ChatSessionRow } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import type { TicketNotesJob } from '../producers/assistant';
import type { Enqueue } from '../producers/registry';
import { NOTES_INTERRUPTED, type NotesEventLog } from './notes-events';
import type { PsaPush } from './psa-push';
import type { NotesOutcome, NotesRuns } from './notes-run';
import { NOTE_SECTIONS, NotesGate, templateSections, type NotesMessage } from './ticket-notes';
import { BudgetExceededError, type BudgetTicket } from '../budget/budget-door';
import { restartedAfterCrash } from '../lib/job-restart';

/** Messages of the session fed to the model: the latest ones. */
export const NOTES_HISTORY_LIMIT = 20;
/** Messages the template reads when it writes or completes the notes. */
const TEMPLATE_HISTORY_LIMIT = 60;
/** Each message is cut to this many characters in the prompt. */
export const NOTES_MESSAGE_CHARS = 500;
/** The most tokens the notes may take (`max_tokens` of the call). */
export const NOTES_MAX_TOKENS = 1_500;

/** Fixed text, the same for every session: marked for prompt caching where the provider accepts it. */
export const NOTES_SYSTEM_PROMPT = `You are generating internal ticket notes for an MSP engineer's PSA system.

Generate EXACTLY these four markdown sections, in this order:

${NOTE_SECTIONS.map(
  (section, i) =>
    `## ${section}\n${
      [
        'Summarize what the engineer reported and the initial symptoms. 1-3 sentences.',
        'List the key diagnostic steps, commands run, checks performed, and findings. Use bullet points.',
        'What fixed the issue or what the final action was. Be specific and technical.',
        'Any follow-up items, monitoring to watch, or preventive measures. Write "None" if not applicable.',
      ][i]
    }`,
).join('\n\n')}

Rules:
- Be technical, concise, and factual
- Use markdown formatting (headers, bullet lists, bold for emphasis)
- Include specific technical details (commands, settings, error messages) where available
- Do NOT include greetings, sign-offs, or pleasantries
- Do NOT wrap output in code fences
- Output ONLY the four sections above, nothing else`;

/** `N minutes` under an hour, else `Xh Ym`. */
export function timeSpent(from: Date, to: Date): string {
  const minutes = Math.max(0, Math.floor((to.getTime() - from.getTime()) / 60_000));
  return minutes < 60 ? `${minutes} minutes` : `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

/** A context value the app sent under either spelling (`problemDomain` / `problem_domain`), when it is text. */
function contextText(context: Record<string, unknown> | null, camel: string, snake: string): string | undefined {
  const value = context?.[camel] ?? context?.[snake];
  return typeof value === 'string' && value.trim() ? value.trim() : undefined;
}

/**
 * The user message of the notes prompt: the session's status, time spent, problem summary and
 * problem domain (from the session, else the context the app sent), the engineer's resolution
 * notes or escalation reason, and the last {@link NOTES_HISTORY_LIMIT} messages, each cut at {@link NOTES_MESSAGE_CHARS}
 * characters and labelled "Engineer" or "AI Assistant".
 */
export function notesPrompt(
  session: Pick<ChatSessionRow, 'status' | 'createdAt' | 'problemSummary' | 'resolutionSummary' | 'context'> &
    Partial<Pick<ChatSessionRow, 'escalationReason'>>,
  messages: NotesMessage[],
  now: Date,
): string {
  const recent = messages.filter((m) => m.role !== 'tool').slice(-NOTES_HISTORY_LIMIT);
  const conversation = recent
    .map((m) => `${m.role === 'user' ? 'Engineer' : 'AI Assistant'}: ${[...m.content].slice(0, NOTES_MESSAGE_CHARS).join('')}`)
    .join('\n');
  const problem = session.problemSummary?.trim() || contextText(session.context, 'problemSummary', 'problem_summary');
  const domain = contextText(session.context, 'problemDomain', 'problem_domain');
  return [
    `Session status: ${session.status}`,
    `Time spent: ${timeSpent(session.createdAt, now)}`,
    `Problem summary: ${problem ?? 'Not specified'}`,
    ...(domain ? [`Problem domain: ${domain}`] : []),
    ...(session.resolutionSummary?.trim() ? [`Resolution notes: ${session.resolutionSummary.trim()}`] : []),
    ...(session.status === 'escalated' && session.escalationReason?.trim()
      ? [`Escalation reason: ${session.escalationReason.trim()}`]
      : []),
    `\nSession conversation:\n${conversation || 'No session data.'}`,
  ].join('\n');
}

/** An escalated session's hand-off for the template notes' Resolution; undefined for any other. */
const escalationOf = (session: Pick<ChatSessionRow, 'status' | 'escalationReason'>) =>
  session.status === 'escalated' ? { reason: session.escalationReason } : undefined;

export interface SessionNotesRunnerDeps {
  config: Config;
  repos: Repositories;
  models: ModelGateway;
  notesEvents: NotesEventLog;
  logger: Logger;
  /** The notes' run: every end goes through it. */
  runs: NotesRuns;
  metrics?: Metrics;
  /** Queues the session's embedding once its notes are stored. */
  enqueue?: Enqueue;
  /** Queues the push of the stored notes to the user's PSA, when the resolve claimed one. */
  psaPush?: Pick<PsaPush, 'notesReady'>;
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
    // The prompt takes the latest messages; the template (used when the model fails or strays) reads them all.
    const messages: NotesMessage[] = all.filter((m) => m.role !== 'tool').slice(-TEMPLATE_HISTORY_LIMIT);
    const gate = new NotesGate();
    const pending: Array<Promise<void>> = [];
    const emit = (text: string) => {
      if (text) pending.push(events.append(data.sessionId, { type: 'chunk', text }));
    };

    let outcome: NotesOutcome;
    let completed: boolean;
    let modelError: unknown;
    try {
      try {
        await this.stream(
          data,
          ticket,
          [systemMessage(NOTES_SYSTEM_PROMPT), userMessage(notesPrompt(session, messages, new Date()))],
          (text) => emit(gate.push(text)),
        );
      } catch (error) {
        // The model failed: the notes are built without it, from the session itself (its messages
        // and resolution summary), continuing after whatever the model had already streamed.
        modelError = error;
        log.warn({ err: error }, 'notes model failed; the notes are written from the session without a model');
      }
      const end = gate.end(templateSections(messages, session.resolutionSummary, escalationOf(session)));
      completed = end.completed;
      emit(end.tail);
      await Promise.all(pending);
      outcome = { status: 'succeeded', result: { documentation: end.notes } };
    } catch (error) {
      await Promise.allSettled(pending);
      log.warn({ err: error, modelErr: modelError }, 'ticket notes failed');
      outcome = { status: 'failed', ...failureOf(modelError ?? error) };
      await runs.end(data.sessionId, outcome);
      throw new UnrecoverableError(`ticket notes failed: ${describeRedacted(error)}`);
    }
    const ended = await runs.end(data.sessionId, outcome);
    if (!ended.won) {
      log.info({ status: ended.run?.status }, 'ticket notes ended elsewhere while they were written; dropped');
      return { completedFromTemplate: false, chars: 0 };
    }
    const chars = outcome.result.documentation.length;
    log.info({ chars, completedFromTemplate: completed, withoutModel: modelError !== undefined }, 'ticket notes stored');
    await this.queueEmbedding(data, log);
    try {
      await this.deps.psaPush?.notesReady(data.userId, data.sessionId);
    } catch (error) {
      log.warn({ err: error }, 'PSA push not queued after the notes; resolving again queues it');
    }
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
    // NOTES_MODEL when this process's gateway has it; else the default chain.
    const chosen = this.deps.config.llm.notesModel;
    await this.deps.models.streamTurn({
      purpose: 'notes',
      messages,
      model: chosen && this.deps.models.knows(chosen) ? chosen : undefined,
      maxTokens: NOTES_MAX_TOKENS,
      cacheSystemPrompt: true,
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

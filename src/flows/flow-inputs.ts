import type { DevicePort } from '../devices/device-channel';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { InputAnswer } from '../models/input-requests-repository';
import type { FlowExecutionRow, InputRequestRow, InputRequestStatus } from '../models/schema';
import type { RunKernel, WaitpointHook } from '../runs/run-kernel';
import type { CanvasRoom } from '../schemas/canvas-room';
import type { InputRequested, InputResolved } from '../schemas/socket-events';
import type { Decider } from '../turns/approvals';
import type { FlowEventLog } from './flow-events';
import { answerProblems, formOf } from './input-form';
import { decisionsOf, DEFAULT_INPUT_TIMEOUT_SECONDS, type HumanInputNode } from './node-kinds';

/** The idempotency key of a form's waitpoint. */
export const inputWaitpointKey = (inputId: string) => `input:${inputId}`;

/** The public view of a form request (`GET /hitl/inputs/:id`). */
export function toInputView(row: InputRequestRow) {
  return {
    id: row.id,
    executionId: row.executionId,
    nodeId: row.nodeId,
    /** The flow's owner, who asks. */
    ownerId: row.userId,
    prompt: row.prompt,
    form: row.form,
    decisions: row.decisions,
    status: row.status,
    /** The answer's values (or the timeout's default answer); null while pending. */
    values: row.answer,
    decision: row.decision,
    answeredBy: row.answeredBy,
    answeredAt: row.answeredAt?.toISOString() ?? null,
    expiresAt: row.expiresAt.toISOString(),
    createdAt: row.createdAt.toISOString(),
  };
}

/** The refusal of an answer made without a signed-in person (403 `person_required`). */
export const answerNeedsPerson = () =>
  new AppError(403, 'person_required', 'Forms are answered by a signed-in person (a session), not with an API key');

/** Thrown inside a waitpoint's completion when the answer no longer holds: the completion rolls back. */
class AnswerRefused extends Error {}

export interface FlowInputsDeps {
  repos: Pick<Repositories, 'inputRequests'>;
  /** The run kernel's waitpoints: a form is a waitpoint of its execution's run, its deadline the form's expiry. */
  waits: () => Pick<RunKernel, 'block' | 'completeByKey'>;
  /** Each recipient's devices, on any node and transport. */
  devices: Pick<DevicePort, 'sendToUser'>;
  /** Each recipient's own browser sockets on `/canvas`. */
  browsers: Pick<CanvasRoom, 'toUser'>;
  /** The execution's event log: its stream shows `input_requested`. */
  events: Pick<FlowEventLog, 'appendNextOnce'>;
  /** Told of every new request (webhooks out); it cannot fail the request: a rejection is logged. */
  onRequested?: (row: InputRequestRow, flowId: string) => Promise<void>;
  logger: Logger;
}

/**
 * The forms of human_input nodes, from both sides. The worker asks (`ask`): the request row, a
 * waitpoint of the execution's run whose deadline is the form's expiry, and the announcement to
 * every surface of each recipient (devices, browser sockets, the execution's stream, webhooks).
 * A recipient answers (`answer`): a signed-in person only, the values validated against the form
 * before anything is written, and the first answer wins once (the waitpoint's completion and the
 * row's conditional UPDATE commit together). The kernel then continues the node, whose output is
 * the answer. The deadline times the form out through the same completion.
 */
export class FlowInputs {
  private readonly log: Logger;

  constructor(private readonly deps: FlowInputsDeps) {
    this.log = deps.logger.child({ component: 'flow-inputs' });
  }

  /**
   * The node's form, asked once: the row (found again on a re-run of the node), its waitpoint, and
   * the recipients told unless they were before. `recipients` are user ids the owner may ask.
   */
  async ask(execution: FlowExecutionRow, node: HumanInputNode, prompt: string, recipients: string[]): Promise<InputRequestRow> {
    const seconds = node.timeout?.seconds ?? DEFAULT_INPUT_TIMEOUT_SECONDS;
    const { row } = await this.deps.repos.inputRequests.create({
      userId: execution.userId,
      executionId: execution.id,
      nodeId: node.id,
      recipients,
      prompt,
      form: formOf(node),
      decisions: decisionsOf(node).map((decision) => ({ name: decision.name, label: decision.label ?? decision.name })),
      expiresAt: new Date(Date.now() + seconds * 1000),
    });
    await this.reopen(row, execution.flowId);
    return row;
  }

  /**
   * A pending form found again (a re-run of its node): its waitpoint and its announcement are made
   * sure of, each at most once (a worker may have stopped between writing the row and either).
   */
  async reopen(row: InputRequestRow, flowId: string): Promise<void> {
    if (row.status !== 'pending') return;
    await this.block(row);
    if (!row.announcedAt) await this.announce(row, flowId);
  }

  /** The form's waitpoint on its execution's run (created once; its deadline is the form's expiry). */
  private async block(row: InputRequestRow): Promise<void> {
    await this.deps
      .waits()
      .block('flow', row.executionId, [
        { kind: 'input', userId: row.userId, idempotencyKey: inputWaitpointKey(row.id), ref: row.id, completeAfter: row.expiresAt },
      ]);
  }

  /** Tells every surface of each recipient, then records that they were told. */
  private async announce(row: InputRequestRow, flowId: string): Promise<void> {
    const payload: InputRequested = {
      inputId: row.id,
      executionId: row.executionId,
      flowId,
      nodeId: row.nodeId,
      ownerId: row.userId,
      prompt: row.prompt,
      form: row.form,
      decisions: row.decisions,
      expiresAt: row.expiresAt.toISOString(),
    };
    for (const userId of row.recipients) {
      this.deps.devices.sendToUser(userId, 'input_requested', payload);
      this.deps.browsers.toUser(userId, 'input_requested', payload);
    }
    await this.deps.events.appendNextOnce(row.executionId, `input:${row.nodeId}`, {
      type: 'input_requested',
      executionId: row.executionId,
      nodeId: row.nodeId,
      inputId: row.id,
      expiresAt: row.expiresAt.toISOString(),
    });
    await this.deps
      .onRequested?.(row, flowId)
      .catch((error: unknown) => this.log.warn({ err: error, inputId: row.id }, 'a listener of form requests failed'));
    await this.deps.repos.inputRequests.markAnnounced(row.id);
    this.log.info(
      { inputId: row.id, executionId: row.executionId, nodeId: row.nodeId, recipients: row.recipients.length },
      'form requested',
    );
  }

  /** The caller's forms (those they may answer), newest first. */
  list(userId: string, options: { status?: InputRequestStatus; limit: number; beforeId?: string }): Promise<InputRequestRow[]> {
    return this.deps.repos.inputRequests.listForRecipient(userId, options);
  }

  /** A form, for one of its recipients (anyone else: 404, as for a missing one). */
  async get(userId: string, id: string): Promise<InputRequestRow> {
    const row = await this.deps.repos.inputRequests.find(id);
    if (!row || !row.recipients.includes(userId)) throw notFound('Form request');
    return row;
  }

  /**
   * A recipient's answer: 403 `person_required` with an API key (nothing read); 404 for anyone
   * else; 409 once it is answered (`already_answered`), timed out (`expired`) or its execution
   * ended (`cancelled`); 400 `validation_failed` naming each problem when the decision or the
   * values do not fit the form (nothing written). The first answer wins, also under a race.
   */
  async answer(decider: Decider, id: string, body: { values: Record<string, unknown>; decision?: string }): Promise<InputRequestRow> {
    if (!decider.person) throw answerNeedsPerson();
    const row = await this.get(decider.userId, id);
    this.refuseClosed(row);
    if (row.expiresAt.getTime() <= Date.now()) return this.refuseExpired(row);
    const problems = [...decisionProblems(row, body.decision), ...answerProblems(row.form, body.values)];
    if (problems.length)
      throw new AppError(400, 'validation_failed', `Invalid answer: ${problems[0].path}: ${problems[0].message}`, problems);
    const answer: InputAnswer = { values: body.values, decision: body.decision ?? null, by: decider.userId };
    let completed: boolean | null;
    try {
      completed = await this.deps.waits().completeByKey(row.userId, inputWaitpointKey(row.id), { answer });
      if (completed === null) {
        // Asked before its waitpoint was written (the worker stopped in between): written now, then completed.
        await this.block(row);
        completed = await this.deps.waits().completeByKey(row.userId, inputWaitpointKey(row.id), { answer });
      }
    } catch (error) {
      if (!(error instanceof AnswerRefused)) throw error;
      completed = false;
    }
    const now = (await this.deps.repos.inputRequests.find(id)) ?? row;
    if (!completed || now.status !== 'answered') {
      if (now.status === 'pending') return this.refuseExpired(now);
      this.refuseClosed(now);
      throw conflict('already_answered', 'This form is already answered');
    }
    this.resolved(now);
    this.log.info({ inputId: id, executionId: now.executionId, nodeId: now.nodeId, decision: now.decision }, 'form answered');
    return now;
  }

  /** 409 for a form that is no longer pending, by what closed it. */
  private refuseClosed(row: InputRequestRow): void {
    if (row.status === 'answered') throw conflict('already_answered', 'This form is already answered');
    if (row.status === 'timeout') throw conflict('expired', `This form expired at ${row.expiresAt.toISOString()}`);
    if (row.status === 'cancelled') throw conflict('cancelled', 'The execution that asked this form has ended');
  }

  /** Past its time: timed out now (through its waitpoint, so the node takes its timeout outcome), and 409 `expired`. */
  private async refuseExpired(row: InputRequestRow): Promise<never> {
    await this.deps
      .waits()
      .completeByKey(row.userId, inputWaitpointKey(row.id), { timedOut: true })
      .catch((error: unknown) => this.log.warn({ err: error, inputId: row.id }, 'expired form not timed out; its deadline does it'));
    throw conflict('expired', `This form expired at ${row.expiresAt.toISOString()}`);
  }

  /**
   * The execution ended: its forms still pending become `cancelled` and their recipients hear it.
   * Their waitpoints complete at their deadline and continue nothing (the run is over).
   */
  async cancelOpen(executionId: string): Promise<void> {
    for (const row of await this.deps.repos.inputRequests.cancelOpen(executionId)) this.resolved(row);
  }

  /**
   * What completing a form's waitpoint does, in the completion's transaction: an answer is written
   * by the row's conditional UPDATE (a form no longer pending, or past its time by the database's
   * clock, rolls the completion back), a deadline marks it `timeout` unless something settled it
   * first. After the commit the recipients hear a timeout (an answer is announced by `answer`).
   */
  waitpointHook(): WaitpointHook {
    return {
      completing: async (tx, waitpoint, output) => {
        const inputId = waitpoint.ref;
        if (!inputId) return output;
        if (output.timedOut === true) {
          const timedOut = await this.deps.repos.inputRequests.timeOut(inputId, tx);
          const current = timedOut ?? (await this.deps.repos.inputRequests.find(inputId, tx));
          return { inputId, status: current?.status ?? 'timeout', timedOut: true };
        }
        const answer = output.answer as InputAnswer | undefined;
        if (!answer) return output;
        const answered = await this.deps.repos.inputRequests.answer(inputId, answer, tx);
        if (!answered) throw new AnswerRefused(`form ${inputId} is no longer open`);
        return { inputId, status: 'answered', answeredBy: answer.by, decision: answer.decision };
      },
      completed: async (waitpoint) => {
        const output = waitpoint.output as { timedOut?: unknown; status?: unknown } | null;
        if (output?.timedOut !== true || output.status !== 'timeout' || !waitpoint.ref) return;
        const row = await this.deps.repos.inputRequests.find(waitpoint.ref);
        if (!row) return;
        this.resolved(row);
        this.log.info({ inputId: row.id, executionId: row.executionId, nodeId: row.nodeId }, 'form timed out');
      },
    };
  }

  /** Tells every surface of each recipient how the form ended. */
  private resolved(row: InputRequestRow): void {
    if (row.status === 'pending') return;
    const payload: InputResolved = { inputId: row.id, status: row.status, answeredBy: row.answeredBy, decision: row.decision };
    for (const userId of row.recipients) {
      this.deps.devices.sendToUser(userId, 'input_resolved', payload);
      this.deps.browsers.toUser(userId, 'input_resolved', payload);
    }
  }
}

/** An answer names one of the form's decisions when it has some, and none when it has none. */
function decisionProblems(row: InputRequestRow, decision: string | undefined): Array<{ path: string; message: string }> {
  const names = row.decisions.map((entry) => entry.name);
  if (!names.length) return decision === undefined ? [] : [{ path: 'decision', message: 'this form has no decisions: leave decision out' }];
  if (decision === undefined) return [{ path: 'decision', message: `choose one of ${names.join(', ')}` }];
  return names.includes(decision) ? [] : [{ path: 'decision', message: `"${decision}" is not one of ${names.join(', ')}` }];
}

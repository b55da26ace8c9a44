import { z } from 'zod';
import { commandRisks, describeCommandRisks, describeIssues } from '../schemas/device-protocol';
import type { DevicePort } from '../devices/device-channel';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { UsageLimiter } from '../lib/usage-limiter';
import type { Repositories } from '../models';
import { approvalSessionId, type DecisionAnswer, type NewHitlRequest } from '../models/hitl-repository';
import type { HitlRequestRow, HitlStatus } from '../models/schema';
import type { RunKernel, WaitpointHook } from '../runs/run-kernel';
import type { Metrics } from '../observability/metrics';
import type { QueueRegistry } from '../producers/registry';
import type { ApprovalRequested, ApprovalResolved as Resolved, ToolApprovalAck } from '../schemas/socket-events';
import type { CanvasRoom } from '../schemas/canvas-room';
import type { ChatEventLog } from './turn-events';
import type { StoredContinuation } from './continuation';
import type { ToolPolicy } from './tool-policy';
import { asksByContract, isCodeToolName, toolContract } from './tool-contract';
import { taintReason } from './tool-risk';
import type { HitlVote } from '../models/hitl-repository';
import type { ApprovalDeciders, ThreadApprovals } from './thread-approvals';

/** `approval_resolved`; a quorum request's names every vote, in the order they came. */
type ApprovalResolved = Resolved & { voters?: HitlVote[] };

/**
 * The approvals policy: the tools whose contract asks first (every `delete_*` device tool, the
 * coding tools that change files or run commands) and the tools HITL_DANGEROUS_TOOLS lists wait
 * for the user's decision. `check` allows: with approvals wired, the runner parks the
 * turn instead of asking `check` (it is what runs when no approval service is given).
 */
export function dangerousToolPolicy(extra: readonly string[] = []): ToolPolicy {
  const listed = new Set(extra);
  return {
    isDangerous: (toolName) => asksByContract(toolName) || listed.has(toolName),
    check: async () => ({ allowed: true }),
  };
}

/** What a command the user is asked to approve would do that they should know (nothing for a plain one). */
function commandWarning(parameters: Record<string, unknown>): string {
  const risks = typeof parameters.command === 'string' ? commandRisks(parameters.command) : [];
  return risks.length ? `. Before you approve: ${describeCommandRisks(risks)}` : '';
}

/** Why a call waits whatever the turn read; a command's reason names what it would do when that is risky. */
const standingReason = (toolName: string, parameters: Record<string, unknown>) => {
  const contract = toolContract(toolName);
  if (!contract?.asks) return `${toolName} is marked as needing your approval (HITL_DANGEROUS_TOOLS)`;
  if (contract.risk === 'execute') return `${toolName} runs a command in your project folder${commandWarning(parameters)}`;
  return isCodeToolName(toolName)
    ? `${toolName} changes a file in your project folder (the diff shows how)`
    : `${toolName} permanently deletes data on your device`;
};

/**
 * The reason shown with an approval request. A call asked for after the turn read untrusted text
 * names where that text came from (`taint`): the person sees what may be steering the request.
 */
export const approvalReason = (toolName: string, parameters: Record<string, unknown> = {}, taint: readonly string[] = []) =>
  taint.length
    ? `${asksByContract(toolName) ? standingReason(toolName, parameters) : `${toolName} changes data or sends something`}; ${taintReason(taint)}`
    : standingReason(toolName, parameters);

export type Decision = Exclude<HitlStatus, 'pending'>;

/**
 * Who decides an approval request: the user, and whether a person signed in to do it — a session
 * (access token), or a device connection opened with one — rather than a program holding an API
 * key. A key may ask for work but never approve it: the approval is the only guard between a
 * model's command and the user's machine, so a leaked key must not be enough to pass it.
 */
export interface Decider {
  userId: string;
  person: boolean;
}

/** The refusal of a decision made without a signed-in person (403 `person_required`). */
export const personRequired = () =>
  new AppError(403, 'person_required', 'Approvals are decided by a signed-in person (a session), not with an API key');

export interface ApprovalServiceDeps {
  config: { hitl: { timeoutMs: number } };
  repos: Repositories;
  queues: QueueRegistry;
  logger: Logger;
  metrics?: Metrics;
  /** The user's devices, on any node and transport. */
  devices: DevicePort;
  /** The turn's event log: `/chat/stream` shows the request and its outcome. */
  chatEvents: Pick<ChatEventLog, 'append'>;
  /** The user's own browser sockets on `/canvas`. */
  browsers: Pick<CanvasRoom, 'toUser'>;
  /** The per-user hourly limit of approval requests (`approvalsPerHour`); without it, none. */
  usage?: Pick<UsageLimiter, 'take'>;
  /** Told of every new request (webhooks out); it cannot fail the request: a rejection is logged. */
  onRequested?: (row: HitlRequestRow) => Promise<void>;
  /**
   * The run kernel's waitpoints: a chat turn's or an agentflow node's request is a waitpoint of its
   * run, with the request's expiry as its deadline, and its decision completes it (the kernel then
   * continues the run). Without it, the decision queues the resume.
   */
  waits?: () => Pick<RunKernel, 'block' | 'completeByKey'>;
  /**
   * Room threads: who decides a request of a thread's turn (the thread's policy, or the owner of a
   * lent device), and the room that hears a quorum's votes. Without it, every request is its requester's.
   */
  threads?: ThreadApprovals;
  /**
   * The problems of arguments an approver gives a call instead of the model's, against the tool's
   * schema (each at `arguments.<path>`; none: they fit). Without it, arguments cannot be edited.
   */
  checkArguments?: (row: HitlRequestRow, args: Record<string, unknown>) => Array<{ path: string; message: string }>;
}

/** What a person may add to a decision: an approval's own arguments for the call, a rejection's message to the model. */
export interface DecisionOptions {
  arguments?: Record<string, unknown>;
  message?: string;
}

/** A rejection's reply as the model reads it: the call's result, after which the turn goes on. */
export const MAX_REPLY_CHARS = 2_000;
/** Edited arguments as JSON text at most. */
export const MAX_EDITED_ARGUMENTS_CHARS = 20_000;

/**
 * The run a request's waitpoint blocks: a chat turn's (its message), or an agentflow execution's
 * (whose node, not the whole run, waits); null for a request of neither.
 */
function waitingRun(row: HitlRequestRow): { kind: 'chat' | 'flow'; id: string } | null {
  if (row.sessionId) return { kind: 'chat', id: row.messageId };
  if (row.executionId && (row.continuation as { kind?: unknown } | null)?.kind === 'flow') return { kind: 'flow', id: row.executionId };
  return null;
}

/** The idempotency key of an approval request's waitpoint. */
export const approvalWaitpointKey = (approvalId: string) => `approval:${approvalId}`;

/**
 * Approval requests: created by the worker when a turn parks, decided by the user (HTTP or the
 * device's `tool_approval`) or timed out by their waitpoint's deadline. Every decision is one conditional
 * UPDATE (the first wins, later ones get 409), audited in the same transaction, counted, and
 * followed by a resume job on the `assistant` queue.
 *
 * Every surface of the owner hears both ends at once: their devices, the turn's HTTP
 * stream, and their browser sockets get `approval_requested` and then `approval_resolved`.
 */
export class ApprovalService {
  private readonly log: Logger;

  constructor(private readonly deps: ApprovalServiceDeps) {
    this.log = deps.logger.child({ component: 'approvals' });
  }

  /**
   * Counts the `count` requests a parked round is about to ask for against the user's hourly limit
   * of approval requests, before any is written: 429 `rate_limited` when they do not fit.
   */
  async allow(userId: string, count: number): Promise<void> {
    const { usage, repos } = this.deps;
    if (!usage || count <= 0) return;
    const tier = (await repos.users.findById(userId))?.tier ?? 'free';
    for (let taken = 0; taken < count; taken += 1) await usage.take('approvalsPerHour', { id: userId, tier });
  }

  /** Persists the request and its waitpoint (whose deadline is its expiry), and tells the user's devices. */
  async request(
    request: Omit<NewHitlRequest, 'reason' | 'expiresAt' | 'continuation'> & {
      continuation: StoredContinuation;
      taint?: readonly string[];
    },
  ): Promise<HitlRequestRow> {
    const { repos } = this.deps;
    const { taint, ...input } = request;
    const reason = approvalReason(input.toolName, input.parameters, taint);
    // A call on a device another member lent to the thread is that member's to decide.
    const addressedTo = input.sessionId ? await this.deps.threads?.addresseeOf(input.sessionId, input.deviceId, input.userId) : null;
    const row = await repos.hitl.create({
      ...input,
      reason,
      expiresAt: new Date(Date.now() + this.deps.config.hitl.timeoutMs),
      addressedTo: addressedTo ?? null,
    });
    // Its run waits on it as a waitpoint, created before anyone can decide it; the waitpoint's
    // deadline is the request's expiry (the kernel times it out, even across a restart).
    const run = waitingRun(row);
    if (run && this.deps.waits)
      await this.deps.waits().block(run.kind, run.id, [
        {
          kind: 'approval',
          userId: row.userId,
          idempotencyKey: approvalWaitpointKey(row.id),
          ref: row.id,
          completeAfter: row.expiresAt,
        },
      ]);
    await repos.audit.write({
      actorId: input.userId,
      action: 'hitl.requested',
      targetType: 'hitl_request',
      targetId: row.id,
      details: { toolName: row.toolName, sessionId: approvalSessionId(row), ...(row.addressedTo ? { addressedTo: row.addressedTo } : {}) },
    });
    this.deps.metrics?.approvals.inc({ outcome: 'requested', tool: row.toolName });
    const deciders = await this.deps.threads?.decidersOf(row);
    const payload: ApprovalRequested & { deciders?: ApprovalDeciders } = {
      approvalId: row.id,
      sessionId: approvalSessionId(row),
      toolName: row.toolName,
      parameters: row.parameters,
      reason: row.reason,
      expiresAt: row.expiresAt.toISOString(),
      ...(deciders ? { deciders } : {}),
    };
    for (const userId of surfacesOf(row)) {
      this.deps.devices.sendToUser(userId, 'approval_requested', payload);
      this.deps.browsers.toUser(userId, 'approval_requested', payload);
    }
    await this.deps.chatEvents.append(row.messageId, { type: 'approval_requested', ...payload });
    this.log.info(
      { approvalId: row.id, userId: row.userId, sessionId: approvalSessionId(row), toolName: row.toolName },
      'approval requested',
    );
    await this.deps
      .onRequested?.(row)
      .catch((error: unknown) => this.log.warn({ err: error, approvalId: row.id }, 'a listener of approval requests failed'));
    return row;
  }

  /** The request, for its requester, the member it is addressed to, or a member of its room thread (anyone else: 404). */
  async get(userId: string, id: string): Promise<HitlRequestRow> {
    const { threads, repos } = this.deps;
    if (!threads) {
      const row = await repos.hitl.findOwned(userId, id);
      if (!row) throw notFound('Approval request');
      return row;
    }
    const row = await repos.hitl.find(id);
    if (!row || !(await threads.mayRead(row, userId))) throw notFound('Approval request');
    return row;
  }

  /**
   * A decision: 403 `person_required` when it comes with an API key (the request stays pending,
   * nothing is read); 404 for who may not read it; 403 for a member of its thread the policy does
   * not let decide; 409 once decided (or, under a quorum, `already_voted` for a second vote of the
   * same member); then the turn resumes. Under a quorum a vote is counted, and the vote that
   * satisfies the policy (or the first reject) decides the request.
   */
  async decide(
    decider: Decider,
    id: string,
    approved: boolean,
    via: 'http' | 'device',
    options: DecisionOptions = {},
  ): Promise<HitlRequestRow> {
    if (!decider.person) throw personRequired();
    const { userId } = decider;
    const current = this.deps.threads ? await this.deps.repos.hitl.find(id) : await this.deps.repos.hitl.findOwned(userId, id);
    if (!current) throw notFound('Approval request');
    const rule = this.deps.threads ? await this.deps.threads.ruleFor(current, userId) : { kind: 'single' as const };
    // Past expiresAt no decision counts, whatever its deadline job did: the request times
    // out now if nothing settled it yet, and the turn resumes telling the model it did not run.
    if (current.expiresAt.getTime() <= Date.now()) return this.refuseExpired(current);
    const answer = this.answerOf(current, approved, options, rule.kind === 'vote');
    if (rule.kind === 'vote') return this.vote(current, userId, approved, rule.needed, via);
    const details = {
      via,
      ...(answer.editedArguments ? { editedArguments: answer.editedArguments, originalArguments: current.parameters } : {}),
      ...(answer.reply ? { reply: answer.reply } : {}),
    };
    const decided = await this.settle(current.id, approved ? 'approved' : 'rejected', userId, details, {}, answer);
    if (!decided) {
      const now = await this.deps.repos.hitl.find(id);
      // The database's clock said it had expired (the conditional UPDATE checks expires_at > now()).
      if (now?.status === 'pending' || now?.status === 'timeout') return this.refuseExpired(now);
      throw conflict('already_decided', `This approval request is already ${now?.status ?? 'decided'}`);
    }
    return decided;
  }

  /**
   * What the decision carries besides yes or no, checked before anything is written (400
   * `validation_failed` naming the problem): edited arguments only with an approval, as an object
   * that fits the tool's schema; a reply only with a rejection. A quorum decides as asked: neither.
   */
  private answerOf(row: HitlRequestRow, approved: boolean, options: DecisionOptions, quorum: boolean): DecisionAnswer {
    const invalid = (path: string, message: string) =>
      new AppError(400, 'validation_failed', `Invalid decision: ${path}: ${message}`, [{ path, message }]);
    const { arguments: args, message } = options;
    if (args === undefined && message === undefined) return {};
    if (quorum)
      throw invalid(args !== undefined ? 'arguments' : 'message', 'a request decided by a quorum is approved or rejected as asked');
    if (args !== undefined) {
      if (!approved) throw invalid('arguments', 'only an approval runs the call with edited arguments');
      if (JSON.stringify(args).length > MAX_EDITED_ARGUMENTS_CHARS)
        throw invalid('arguments', `at most ${MAX_EDITED_ARGUMENTS_CHARS} characters of JSON`);
      if (!this.deps.checkArguments) throw invalid('arguments', `the arguments of ${row.toolName} cannot be edited here`);
      const problems = this.deps.checkArguments(row, args);
      if (problems.length)
        throw new AppError(400, 'validation_failed', `Invalid decision: ${problems[0].path}: ${problems[0].message}`, problems);
      return { editedArguments: args };
    }
    if (approved) throw invalid('message', 'a reply goes with a rejection: the model reads it instead of the result');
    const reply = message!.trim();
    if (!reply) throw invalid('message', 'the reply is empty');
    if (reply.length > MAX_REPLY_CHARS) throw invalid('message', `at most ${MAX_REPLY_CHARS} characters`);
    return { reply };
  }

  /**
   * A quorum member's vote: counted once per member under the request's row lock; the vote that
   * brings the approvals to `needed`, or the first reject, decides the request (exactly once, on any
   * node). The room hears each vote; the decision is announced like any other, naming every voter.
   */
  private async vote(row: HitlRequestRow, userId: string, approved: boolean, needed: number, via: 'http' | 'device') {
    const { hitl } = this.deps.repos;
    const cast = await hitl.castVote(
      row.id,
      userId,
      approved,
      (votes) => (votes.some((vote) => !vote.approved) ? 'rejected' : votes.length >= needed ? 'approved' : null),
      { via, quorum: needed },
    );
    switch (cast.outcome) {
      case 'missing':
        throw notFound('Approval request');
      case 'settled':
        throw conflict('already_decided', `This approval request is already ${cast.row.status}`);
      case 'expired':
        return this.refuseExpired(row);
      case 'already_voted':
        throw conflict('already_voted', 'You already voted on this approval request; a vote counts once');
    }
    await this.deps.threads?.voted(row, { userId, approved, votes: cast.votes, needed });
    if (!cast.decided) return (await hitl.find(row.id)) ?? row;
    await this.afterDecision(cast.decided, cast.decided.status as Decision, userId, { via, voters: cast.votes });
    return cast.decided;
  }

  /**
   * Its turn was cancelled: every request of that turn still pending becomes `rejected`
   * with `decisionReason: "cancelled"`, and no resume follows (the cancel ends the turn).
   */
  async cancelPending(messageId: string, userId: string): Promise<HitlRequestRow[]> {
    const pending = await this.deps.repos.hitl.pendingForMessage(messageId);
    const settled = await Promise.all(
      pending.map((row) => this.settle(row.id, 'rejected', userId, { via: 'cancel' }, { reason: 'cancelled', resume: false })),
    );
    return settled.filter((row): row is HitlRequestRow => row !== null);
  }

  private async refuseExpired(row: HitlRequestRow): Promise<never> {
    if (row.status === 'pending') await this.expire(row.id);
    throw conflict('expired', `This approval request expired at ${row.expiresAt.toISOString()}; the tool was not run`);
  }

  /**
   * Times the request out unless it was decided first: through its waitpoint when it has one (the
   * completion marks it `timeout`, see `waitpointHook`, and its run goes on), else here. The row
   * when this call timed it out, else null.
   */
  async expire(id: string): Promise<HitlRequestRow | null> {
    const row = await this.deps.repos.hitl.find(id);
    if (!row || row.status !== 'pending') return null;
    const completed = this.deps.waits
      ? await this.deps.waits().completeByKey(row.userId, approvalWaitpointKey(id), { timedOut: true })
      : null;
    if (completed === null) return this.settle(id, 'timeout', null, { via: 'timeout' });
    const now = await this.deps.repos.hitl.find(id);
    return completed && now?.status === 'timeout' ? now : null;
  }

  /**
   * What completing an approval's waitpoint does: at its deadline (`{timedOut: true}`) the request
   * becomes `timeout` in the completion's transaction, unless it was decided first (the waitpoint
   * then keeps the decision); after the commit every surface of the owner hears it, before the
   * kernel continues the run (whose resume tells the model the tool did not run).
   */
  waitpointHook(): WaitpointHook {
    return {
      completing: async (tx, waitpoint, output) => {
        if (output.timedOut !== true || !waitpoint.ref) return output;
        const approvalId = waitpoint.ref;
        const decided = await this.deps.repos.hitl.decideAudited(approvalId, 'timeout', null, { via: 'timeout' }, undefined, tx);
        if (decided) return { approvalId, status: 'timeout', timedOut: true };
        const current = await this.deps.repos.hitl.find(approvalId, tx);
        return { approvalId, status: current?.status ?? 'timeout' };
      },
      completed: async (waitpoint) => {
        const output = waitpoint.output as { timedOut?: unknown; status?: unknown } | null;
        if (output?.timedOut !== true || output.status !== 'timeout' || !waitpoint.ref) return;
        const row = await this.deps.repos.hitl.find(waitpoint.ref);
        if (!row) return;
        this.deps.metrics?.approvals.inc({ outcome: 'timeout', tool: row.toolName });
        await this.announce(row, { approvalId: row.id, status: 'timeout', decidedBy: null });
        this.log.info({ approvalId: row.id, status: 'timeout', via: 'timeout' }, 'approval decided');
      },
    };
  }

  private async settle(
    id: string,
    status: Decision,
    decidedBy: string | null,
    details: Record<string, unknown>,
    options: { reason?: 'user' | 'timeout' | 'cancelled'; resume?: boolean } = {},
    answer: DecisionAnswer = {},
  ): Promise<HitlRequestRow | null> {
    const decided = await this.deps.repos.hitl.decideAudited(id, status, decidedBy, details, options.reason, undefined, answer);
    if (!decided) return null;
    await this.afterDecision(decided, status, decidedBy, details, options);
    return decided;
  }

  /** What follows a committed decision: counted, heard on every surface, and the turn resumed (unless cancelled). */
  private async afterDecision(
    decided: HitlRequestRow,
    status: Decision,
    decidedBy: string | null,
    details: Record<string, unknown> & { voters?: ApprovalResolved['voters'] },
    options: { resume?: boolean } = {},
  ): Promise<void> {
    const id = decided.id;
    this.deps.metrics?.approvals.inc({ outcome: status, tool: decided.toolName });
    await this.announce(decided, { approvalId: id, status, decidedBy, ...(details.voters ? { voters: details.voters } : {}) });
    // The decision is committed, so it stands even if the resume cannot be queued now: the reaper
    // resumes decided turns whose resume never began (hitl_requests.resumed_at is null).
    if (options.resume !== false && (await this.completeWaitpoint(decided)) === null) {
      await this.deps.queues
        .enqueue('assistant', 'hitl-resume', { approvalId: id })
        .catch((error: unknown) => this.log.warn({ err: error, approvalId: id }, 'resume not queued; the reaper will resume the turn'));
    }
    this.log.info({ approvalId: id, status, ...details }, 'approval decided');
  }

  /**
   * Completes the decided request's waitpoint: its run goes on once none is pending, and the kernel
   * queues the resume. True: completed now (or the attempt failed and is logged: the reaper completes
   * it); false: it was completed before; null: the request has no waitpoint (an agentflow node's, or
   * one asked before waitpoints), so its resume is queued by the caller.
   */
  async completeWaitpoint(row: HitlRequestRow): Promise<boolean | null> {
    if (!this.deps.waits) return null;
    try {
      return await this.deps.waits().completeByKey(row.userId, approvalWaitpointKey(row.id), { approvalId: row.id, status: row.status });
    } catch (error) {
      this.log.warn({ err: error, approvalId: row.id }, 'waitpoint of a decided approval not completed; the reaper completes it');
      return true;
    }
  }

  /** Tells every surface of the owner how the request ended; the turn's stream hears it before the resumed answer. */
  private async announce(row: HitlRequestRow, resolved: ApprovalResolved): Promise<void> {
    for (const userId of surfacesOf(row)) {
      this.deps.devices.sendToUser(userId, 'approval_resolved', resolved);
      this.deps.browsers.toUser(userId, 'approval_resolved', resolved);
    }
    await this.deps.chatEvents
      .append(row.messageId, { type: 'approval_resolved', sessionId: approvalSessionId(row), ...resolved })
      .catch((error: unknown) => {
        this.log.warn({ err: error, approvalId: row.id }, 'approval_resolved not logged for the turn');
      });
  }
}

/** Whose own surfaces (devices, browser sockets) hear a request: its requester's, and the member it is addressed to. */
const surfacesOf = (row: HitlRequestRow): string[] =>
  row.addressedTo && row.addressedTo !== row.userId ? [row.userId, row.addressedTo] : [row.userId];

/** A device's `tool_approval`: the decision, and what it may carry (edited arguments, a reply). */
export const toolApprovalSchema = z.strictObject({
  approvalId: z.uuid(),
  approved: z.boolean(),
  /** With an approval: the arguments to run the call with instead of the model's. */
  arguments: z.record(z.string(), z.unknown()).optional(),
  /** With a rejection: the message the model reads instead of the result. */
  message: z.string().max(MAX_REPLY_CHARS).optional(),
});

/**
 * The devices' `tool_approval` handler (Socket.IO `/device` and the plain WebSocket): the same
 * decision as the HTTP routes (edited `arguments` with an approval, a `message` with a rejection),
 * by the connection's user, who is a person only when the connection was opened with a session
 * token. The ack is `{ok: true, status}` or `{error: {code, message}}` (validation_failed,
 * person_required, not_found, already_decided, expired).
 */
export function toolApprovalHandler(service: ApprovalService) {
  return async (user: { id: string; person: boolean }, _deviceId: string, payload: unknown): Promise<ToolApprovalAck> => {
    const parsed = toolApprovalSchema.safeParse(payload);
    if (!parsed.success) return { error: { code: 'validation_failed', message: describeIssues(parsed.error) } };
    try {
      const { approvalId, approved, arguments: args, message } = parsed.data;
      const row = await service.decide({ userId: user.id, person: user.person }, approvalId, approved, 'device', {
        arguments: args,
        message,
      });
      return { ok: true, status: row.status };
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return { error: { code: error.code, message: error.message } };
      throw error;
    }
  };
}

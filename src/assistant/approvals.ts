import { z } from 'zod';
import { describeIssues } from '../schemas/device-protocol';
import type { DevicePort } from '../devices/device-channel';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { UsageLimiter } from '../lib/usage-limiter';
import type { Repositories } from '../models';
import { approvalSessionId, type NewHitlRequest } from '../models/hitl-repository';
import type { HitlRequestRow, HitlStatus } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import { hitlTimeoutJobId } from '../producers/assistant';
import type { QueueRegistry } from '../producers/registry';
import type { ApprovalRequested, ApprovalResolved, ToolApprovalAck } from '../schemas/socket-events';
import type { CanvasRoom } from '../schemas/canvas-room';
import type { ChatEventLog } from './chat-events';
import type { StoredContinuation } from './continuation';
import type { ToolPolicy } from './tool-policy';
import { CODE_TOOL_RISK, isRiskyCodeTool } from './tool-names';

/**
 * The approvals policy: every `delete_*` tool and the tools HITL_DANGEROUS_TOOLS
 * lists wait for the user's decision. `check` allows: with approvals wired, the runner parks the
 * turn instead of asking `check` (it is what runs when no approval service is given).
 */
export function dangerousToolPolicy(extra: readonly string[] = []): ToolPolicy {
  const listed = new Set(extra);
  return {
    isDangerous: (toolName) => toolName.startsWith('delete_') || isRiskyCodeTool(toolName) || listed.has(toolName),
    check: async () => ({ allowed: true }),
  };
}

/** The reason shown with an approval request. */
export const approvalReason = (toolName: string) =>
  isRiskyCodeTool(toolName)
    ? CODE_TOOL_RISK[toolName] === 'execute'
      ? `${toolName} runs a command in your project folder`
      : `${toolName} changes a file in your project folder (the diff shows how)`
    : toolName.startsWith('delete_')
      ? `${toolName} permanently deletes data on your device`
      : `${toolName} is marked as needing your approval (HITL_DANGEROUS_TOOLS)`;

export type Decision = Exclude<HitlStatus, 'pending'>;

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
}

/**
 * Approval requests: created by the worker when a turn parks, decided by the user (HTTP or the
 * device's `tool_approval`) or by the delayed timeout job. Every decision is one conditional
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

  /** Persists the request, tells the user's devices, and schedules the timeout. */
  async request(
    input: Omit<NewHitlRequest, 'reason' | 'expiresAt' | 'continuation'> & { continuation: StoredContinuation },
  ): Promise<HitlRequestRow> {
    const { repos } = this.deps;
    const reason = approvalReason(input.toolName);
    const row = await repos.hitl.create({ ...input, reason, expiresAt: new Date(Date.now() + this.deps.config.hitl.timeoutMs) });
    await repos.audit.write({
      actorId: input.userId,
      action: 'hitl.requested',
      targetType: 'hitl_request',
      targetId: row.id,
      details: { toolName: row.toolName, sessionId: approvalSessionId(row) },
    });
    this.deps.metrics?.approvals.inc({ outcome: 'requested', tool: row.toolName });
    await this.deps.queues.enqueue('assistant', 'hitl-timeout', { approvalId: row.id }, { delay: this.deps.config.hitl.timeoutMs });
    const payload: ApprovalRequested = {
      approvalId: row.id,
      sessionId: approvalSessionId(row),
      toolName: row.toolName,
      parameters: row.parameters,
      reason: row.reason,
      expiresAt: row.expiresAt.toISOString(),
    };
    this.deps.devices.sendToUser(input.userId, 'approval_requested', payload);
    this.deps.browsers.toUser(input.userId, 'approval_requested', payload);
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

  /** The request, for its requester only (anyone else: 404). */
  async get(userId: string, id: string): Promise<HitlRequestRow> {
    const row = await this.deps.repos.hitl.findOwned(userId, id);
    if (!row) throw notFound('Approval request');
    return row;
  }

  /** The requester's decision: 404 for anyone else, 409 once decided; then the turn resumes. */
  async decide(userId: string, id: string, approved: boolean, via: 'http' | 'device'): Promise<HitlRequestRow> {
    const current = await this.get(userId, id);
    // Past expiresAt no decision counts, whatever the timeout job did: the request times
    // out now if nothing settled it yet, and the turn resumes telling the model it did not run.
    if (current.expiresAt.getTime() <= Date.now()) return this.refuseExpired(current);
    const decided = await this.settle(current.id, approved ? 'approved' : 'rejected', userId, { via });
    if (!decided) {
      const now = await this.deps.repos.hitl.find(id);
      // The database's clock said it had expired (the conditional UPDATE checks expires_at > now()).
      if (now?.status === 'pending' || now?.status === 'timeout') return this.refuseExpired(now);
      throw conflict('already_decided', `This approval request is already ${now?.status ?? 'decided'}`);
    }
    return decided;
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

  /** The timeout job: times the request out unless it was decided first. */
  async expire(id: string): Promise<HitlRequestRow | null> {
    return this.settle(id, 'timeout', null, { via: 'timeout' });
  }

  private async settle(
    id: string,
    status: Decision,
    decidedBy: string | null,
    details: Record<string, unknown>,
    options: { reason?: 'user' | 'timeout' | 'cancelled'; resume?: boolean } = {},
  ): Promise<HitlRequestRow | null> {
    const decided = await this.deps.repos.hitl.decideAudited(id, status, decidedBy, details, options.reason);
    if (!decided) return null;
    this.deps.metrics?.approvals.inc({ outcome: status, tool: decided.toolName });
    await this.announce(decided, { approvalId: id, status, decidedBy });
    // The decision is committed, so it stands even if the resume cannot be queued now: the reaper
    // resumes decided turns whose resume never began (hitl_requests.resumed_at is null).
    if (options.resume !== false) {
      await this.deps.queues
        .enqueue('assistant', 'hitl-resume', { approvalId: id })
        .catch((error: unknown) => this.log.warn({ err: error, approvalId: id }, 'resume not queued; the reaper will resume the turn'));
    }
    if (status !== 'timeout') {
      await this.deps.queues
        .remove('assistant', hitlTimeoutJobId(id))
        .catch((error: unknown) => this.log.warn({ err: error, approvalId: id }, 'timeout job not removed; it finds the approval decided'));
    }
    this.log.info({ approvalId: id, status, ...details }, 'approval decided');
    return decided;
  }

  /** Tells every surface of the owner how the request ended; the turn's stream hears it before the resumed answer. */
  private async announce(row: HitlRequestRow, resolved: ApprovalResolved): Promise<void> {
    this.deps.devices.sendToUser(row.userId, 'approval_resolved', resolved);
    this.deps.browsers.toUser(row.userId, 'approval_resolved', resolved);
    await this.deps.chatEvents
      .append(row.messageId, { type: 'approval_resolved', sessionId: approvalSessionId(row), ...resolved })
      .catch((error: unknown) => {
        this.log.warn({ err: error, approvalId: row.id }, 'approval_resolved not logged for the turn');
      });
  }
}

const toolApprovalSchema = z.strictObject({ approvalId: z.uuid(), approved: z.boolean() });

/**
 * The `/device` namespace's `tool_approval` handler: the same decision as the HTTP routes, by the
 * socket's user. The ack is `{ok: true, status}` or `{error: {code, message}}` (validation_failed,
 * not_found, already_decided).
 */
export function toolApprovalHandler(service: ApprovalService) {
  return async (user: { id: string }, _deviceId: string, payload: unknown): Promise<ToolApprovalAck> => {
    const parsed = toolApprovalSchema.safeParse(payload);
    if (!parsed.success) return { error: { code: 'validation_failed', message: describeIssues(parsed.error) } };
    try {
      const row = await service.decide(user.id, parsed.data.approvalId, parsed.data.approved, 'device');
      return { ok: true, status: row.status };
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return { error: { code: error.code, message: error.message } };
      throw error;
    }
  };
}

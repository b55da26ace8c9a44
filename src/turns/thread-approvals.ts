import { forbidden, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { HitlVote } from '../models/hitl-repository';
import type { HitlRequestRow } from '../models/schema';
import type { ApprovalPolicy } from '../models/threads-repository';
import type { CanvasRoom } from '../schemas/canvas-room';

/**
 * Who decides a request of a room thread's turn, as its `approval_requested` says: the member whose
 * message asked (`requester`), any editor or owner, the canvas owner, `quorum` editors' approvals,
 * or the one member it is `addressed` to (the owner of a device lent to the thread).
 */
export type ApprovalDeciders =
  | { policy: 'requester' | 'any_editor' | 'canvas_owner' }
  | { policy: 'quorum'; quorum: number }
  | { policy: 'addressed'; addressedTo: string };

/**
 * How one member may settle a request: alone (their decision is the request's), or by a vote of a
 * quorum that needs `needed` approvals.
 */
export type DecisionRule = { kind: 'single' } | { kind: 'vote'; needed: number };

/** The thread a request was asked in, and who decides its approvals. */
interface ThreadOfRequest extends ApprovalPolicy {
  threadId: string;
  canvasId: string;
}

const SESSIONS_KEPT = 10_000;

/**
 * Who decides an approval request. A request addressed to one member (the owner of a device lent
 * to a room thread) is theirs alone. A request of a room thread's turn follows the thread's
 * policy: `requester` (the member whose message started the turn), `any_editor` (any editor or
 * owner), `canvas_owner`, or `quorum` (N editors or owners approve; the first reject of one of them
 * rejects it, and the quorum never needs more approvals than the canvas has editors and owners at
 * the time of the vote). Anyone else's request is its requester's. Someone who may not read the
 * request gets 404; a member of the thread who may not decide it, 403.
 */
export class ThreadApprovals {
  /** The thread of each session asked about (null: not a thread); the binding never changes, the policy is read fresh. */
  private readonly canvases = new Map<string, string | null>();

  constructor(
    private readonly deps: {
      repos: Pick<Repositories, 'chat' | 'canvases' | 'threads'>;
      room: Pick<CanvasRoom, 'emit'>;
      logger: Logger;
    },
  ) {}

  /** Whether `userId` may read the request: its requester, the member it is addressed to, or a member of its thread. */
  async mayRead(row: HitlRequestRow, userId: string): Promise<boolean> {
    if (row.userId === userId || row.addressedTo === userId) return true;
    const thread = await this.threadOf(row);
    return Boolean(thread && (await this.deps.repos.canvases.roleOf(thread.canvasId, userId)));
  }

  /** How `userId` may decide the request (404 when they may not read it, 403 when they may read but not decide it). */
  async ruleFor(row: HitlRequestRow, userId: string): Promise<DecisionRule> {
    const thread = await this.threadOf(row);
    if (row.addressedTo) {
      if (userId === row.addressedTo) return { kind: 'single' };
      if (userId === row.userId || (thread && (await this.deps.repos.canvases.roleOf(thread.canvasId, userId))))
        throw forbidden('This call runs on a device lent to the thread: only the device’s owner decides it');
      throw notFound('Approval request');
    }
    if (!thread) {
      if (userId === row.userId) return { kind: 'single' };
      throw notFound('Approval request');
    }
    // A member removed from the canvas decides nothing there, their own request included.
    const role = await this.deps.repos.canvases.roleOf(thread.canvasId, userId);
    if (!role) throw notFound('Approval request');
    const editor = role === 'editor' || role === 'owner';
    switch (thread.policy) {
      case 'requester':
        if (userId === row.userId) return { kind: 'single' };
        throw forbidden('In this thread the member whose message asked for the call decides it');
      case 'any_editor':
        if (editor) return { kind: 'single' };
        throw forbidden('In this thread any editor decides approvals; viewers do not');
      case 'canvas_owner':
        if (role === 'owner') return { kind: 'single' };
        throw forbidden('In this thread the canvas owner decides approvals');
      case 'quorum': {
        if (!editor) throw forbidden('In this thread a quorum of editors decides approvals; viewers do not');
        return { kind: 'vote', needed: await this.needed(thread) };
      }
    }
  }

  /** Who decides a new request of `sessionId`, as its `approval_requested` tells the room (undefined off a thread). */
  async decidersOf(row: HitlRequestRow): Promise<ApprovalDeciders | undefined> {
    if (row.addressedTo) return { policy: 'addressed', addressedTo: row.addressedTo };
    const thread = await this.threadOf(row);
    if (!thread) return undefined;
    return thread.policy === 'quorum' ? { policy: 'quorum', quorum: await this.needed(thread) } : { policy: thread.policy };
  }

  /**
   * The member a call of `requesterId`'s turn on `deviceId` is addressed to: the device's owner when
   * another member lent it to the thread; null otherwise (the policy decides).
   */
  async addresseeOf(sessionId: string, deviceId: string, requesterId: string): Promise<string | null> {
    if (deviceId.startsWith('mcp:')) return null;
    const canvasId = await this.canvasOf(sessionId);
    if (!canvasId) return null;
    const loan = await this.deps.repos.threads.loan(sessionId, deviceId);
    return loan && loan.ownerId !== requesterId ? loan.ownerId : null;
  }

  /** Tells the thread's room of a vote on its quorum request (best effort: the decision itself is announced anyway). */
  async voted(row: HitlRequestRow, vote: { userId: string; approved: boolean; votes: HitlVote[]; needed: number }): Promise<void> {
    const canvasId = await this.canvasOf(row.sessionId);
    if (!canvasId || !row.sessionId) return;
    const event = {
      type: 'approval_vote',
      approvalId: row.id,
      userId: vote.userId,
      approved: vote.approved,
      approvals: vote.votes.filter((cast) => cast.approved).length,
      needed: vote.needed,
    };
    await this.deps.room
      .emit(canvasId, 'thread_event', { canvasId, threadId: row.sessionId, turnId: row.messageId, event })
      .catch((error: unknown) => this.deps.logger.warn({ err: error, approvalId: row.id }, 'approval vote not sent to the room'));
  }

  /** The approvals a quorum needs now: the policy's N, at most the editors and owners the canvas has (at least one). */
  private async needed(thread: ThreadOfRequest): Promise<number> {
    const editors = await this.deps.repos.threads.editorCount(thread.canvasId);
    return Math.max(1, Math.min(thread.quorum ?? 1, editors));
  }

  private async threadOf(row: HitlRequestRow): Promise<ThreadOfRequest | null> {
    if (!row.sessionId) return null;
    const canvasId = await this.canvasOf(row.sessionId);
    if (!canvasId) return null;
    const policy = await this.deps.repos.threads.policyOf(row.sessionId);
    return policy ? { threadId: row.sessionId, canvasId, ...policy } : null;
  }

  private async canvasOf(sessionId: string | null): Promise<string | null> {
    if (!sessionId) return null;
    if (this.canvases.has(sessionId)) return this.canvases.get(sessionId)!;
    const canvasId = await this.deps.repos.chat.canvasOf(sessionId);
    if (canvasId === undefined) return null;
    if (this.canvases.size >= SESSIONS_KEPT) this.canvases.delete(this.canvases.keys().next().value!);
    this.canvases.set(sessionId, canvasId);
    return canvasId;
  }
}

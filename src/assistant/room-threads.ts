import { AppError, conflict, forbidden, notFound } from '../lib/errors';
import type { RateLimiter } from '../lib/rate-limiter';
import type { Repositories } from '../models';
import type { ChatSessionRow, MemberRole } from '../models/schema';
import type { ApprovalPolicy, DeviceLoan } from '../models/threads-repository';
import type { CanvasRoom } from '../schemas/canvas-room';
import { DEFAULT_MULTITASK, type Multitask } from './chat-lane';

/** Longest title of a thread. */
export const MAX_THREAD_TITLE_CHARS = 200;

/**
 * A room thread's flood limits, on top of the member's own chat limit of the minute: messages per
 * member of one thread, and per thread from all its members together. A message past either is
 * refused with 429 `rate_limited` (and `Retry-After`) before anything is written; the thread goes
 * on for the others.
 */
export class ThreadLimits {
  constructor(
    private readonly windows: Pick<RateLimiter, 'take'>,
    private readonly limits: { memberMessagesPerMinute: number; threadMessagesPerMinute: number },
  ) {}

  async take(threadId: string, userId: string): Promise<void> {
    await this.windows.take('thread member message', `${threadId}:${userId}`, this.limits.memberMessagesPerMinute);
    await this.windows.take('thread message', threadId, this.limits.threadMessagesPerMinute);
  }
}

/** A turn of a thread that has not ended, as a late joiner picks it up. */
export interface OpenThreadTurn {
  turnId: string;
  authorId: string | null;
  authorName: string | null;
  /** The room seq of the turn's `message` event: `canvas:sync` from `roomSeq - 1` replays the turn from its start. */
  roomSeq: number | null;
}

const RANK: Record<MemberRole, number> = { viewer: 0, editor: 1, owner: 2 };
const canPost = (role: MemberRole) => RANK[role] >= RANK.editor;

/**
 * Room threads: chat sessions bound to a canvas. Whoever can read the canvas reads its threads;
 * editors and owners start them and post to them (posting is `ChatService.start`, which checks the
 * same). A canvas the caller is not a member of, and a thread of another canvas, answer 404.
 */
export class RoomThreads {
  constructor(
    private readonly deps: {
      repos: Pick<Repositories, 'chat' | 'canvases' | 'threads' | 'audit'>;
      /** The canvas room: it hears a changed policy and each loan and withdrawal. */
      room?: Pick<CanvasRoom, 'emit'>;
    },
  ) {}

  /**
   * A new, empty thread of the canvas (editor or owner); its creator is the session's owner. The
   * room hears it (`thread_created`), so every member's list shows it before anyone posts.
   */
  async create(userId: string, canvasId: string, input: { title?: string; multitask?: Multitask }): Promise<ChatSessionRow> {
    await this.requireRole(canvasId, userId, 'editor');
    const thread = await this.deps.repos.chat.createSession({
      userId,
      deviceId: null,
      title: input.title ?? 'Room thread',
      mode: 'none',
      canvasId,
      multitask: input.multitask ?? null,
    });
    await this.announce(canvasId, thread.id, {
      type: 'thread_created',
      title: thread.title,
      createdBy: userId,
      multitask: thread.multitask ?? DEFAULT_MULTITASK,
      createdAt: thread.createdAt.toISOString(),
    });
    return thread;
  }

  /** The canvas's threads (any member), most recently active first. */
  async list(userId: string, canvasId: string, page: { limit: number; after?: { updatedAt: Date; id: string } }) {
    await this.requireRole(canvasId, userId, 'viewer');
    return this.deps.repos.chat.listThreads(canvasId, page);
  }

  /** A thread of the canvas that the caller may read, with their role; 404 for anything else. */
  async find(userId: string, canvasId: string, threadId: string): Promise<{ thread: ChatSessionRow; role: MemberRole }> {
    const access = await this.deps.repos.chat.findAccessible(userId, threadId);
    if (!access || access.session.canvasId !== canvasId) throw notFound('Thread');
    return { thread: access.session, role: access.role };
  }

  /** The thread's turns that have not ended, oldest first: what a late joiner replays from the room. */
  async openTurns(threadId: string): Promise<OpenThreadTurn[]> {
    return (await this.deps.repos.chat.openThreadTurns(threadId)).map((turn) => ({
      turnId: turn.id,
      authorId: turn.authorId,
      authorName: turn.authorName,
      roomSeq: turn.roomSeq,
    }));
  }

  /**
   * Sets who decides the thread's approvals (editor or owner; a viewer 403). A quorum needs at least
   * one approval and no more than the canvas has editors and owners now (400 otherwise); requests
   * already pending follow the new policy from their next decision on.
   */
  async setApprovalPolicy(userId: string, canvasId: string, threadId: string, policy: ApprovalPolicy): Promise<ChatSessionRow> {
    const { thread, role } = await this.find(userId, canvasId, threadId);
    if (!canPost(role)) throw forbidden('Setting who decides approvals needs the editor role on the canvas');
    if (policy.policy === 'quorum') {
      const editors = await this.deps.repos.threads.editorCount(canvasId);
      if (!policy.quorum || policy.quorum > editors)
        throw new AppError(
          400,
          'validation_failed',
          `A quorum needs between 1 and ${editors} approvals: the canvas has ${editors} editors and owners`,
        );
    } else if (policy.quorum !== null) {
      throw new AppError(400, 'validation_failed', 'quorum is only taken with the quorum policy');
    }
    await this.deps.repos.threads.setApprovalPolicy(thread.id, policy);
    await this.deps.repos.audit.write({
      actorId: userId,
      action: 'thread.approval_policy',
      targetType: 'chat_session',
      targetId: thread.id,
      details: { canvasId, ...policy },
    });
    await this.announce(canvasId, thread.id, { type: 'approval_policy', ...policy, setBy: userId });
    return { ...thread, approvalPolicy: policy.policy, approvalQuorum: policy.policy === 'quorum' ? policy.quorum : null };
  }

  /** The devices lent to the thread (any member). */
  async loans(userId: string, canvasId: string, threadId: string): Promise<DeviceLoan[]> {
    const { thread } = await this.find(userId, canvasId, threadId);
    return this.deps.repos.threads.loans(thread.id);
  }

  /**
   * Lends one of the caller's devices to the thread (editor or owner: a viewer 403): the thread's
   * turns may then ask to run tools on it, and each call of another member's turn is asked of the
   * caller. 409 `device_id_taken` when another member lent a device of that id to the thread.
   */
  async lend(userId: string, canvasId: string, threadId: string, deviceId: string): Promise<DeviceLoan> {
    const { thread, role } = await this.find(userId, canvasId, threadId);
    if (!canPost(role)) throw forbidden('Lending a device to a thread needs the editor role on the canvas');
    const lent = await this.deps.repos.threads.lend(thread.id, userId, deviceId);
    if ('taken' in lent) throw conflict('device_id_taken', `Another member lent a device named ${deviceId} to this thread`);
    await this.deps.repos.audit.write({
      actorId: userId,
      action: 'thread.device_lent',
      targetType: 'chat_session',
      targetId: thread.id,
      details: { canvasId, deviceId },
    });
    await this.announce(canvasId, thread.id, { type: 'device_lent', deviceId, ownerId: userId });
    return lent.loan;
  }

  /**
   * Takes the caller's device back (any member, even one demoted since: it is their device). 404
   * when they did not lend it. A turn that was to run a tool on it is refused from then on.
   */
  async withdraw(userId: string, canvasId: string, threadId: string, deviceId: string): Promise<void> {
    const { thread } = await this.find(userId, canvasId, threadId);
    if (!(await this.deps.repos.threads.withdraw(thread.id, userId, deviceId))) throw notFound('Device loan');
    await this.deps.repos.audit.write({
      actorId: userId,
      action: 'thread.device_withdrawn',
      targetType: 'chat_session',
      targetId: thread.id,
      details: { canvasId, deviceId },
    });
    await this.announce(canvasId, thread.id, { type: 'device_withdrawn', deviceId, ownerId: userId });
  }

  /** A change of the thread everyone in the room should see, as a `thread_event` with no turn. */
  private async announce(canvasId: string, threadId: string, event: { type: string } & Record<string, unknown>): Promise<void> {
    await this.deps.room?.emit(canvasId, 'thread_event', { canvasId, threadId, turnId: threadId, event });
  }

  private async requireRole(canvasId: string, userId: string, minimum: MemberRole): Promise<MemberRole> {
    const role = await this.deps.repos.canvases.roleOf(canvasId, userId);
    if (!role) throw notFound('Canvas');
    if (RANK[role] < RANK[minimum]) throw forbidden(`This needs the ${minimum} role on the canvas; you are ${role}`);
    return role;
  }
}

import type { ChatMessageRow, ChatSessionRow } from './schema';

/**
 * The public views of chat rows, as the HTTP routes answer them: what each field means to a
 * client, and nothing a client may not see.
 */

/** The public view of a message (`GET /chat/sessions/:id/history`). */
export function toChatMessageView(row: ChatMessageRow) {
  return {
    id: row.id,
    role: row.role,
    content: row.content,
    toolName: row.toolName,
    replyTo: row.replyTo,
    /** `completed`, or `cancelled` for an answer cut short by a cancel. */
    status: row.status,
    usage: row.model
      ? { provider: row.provider, model: row.model, inputTokens: row.inputTokens, outputTokens: row.outputTokens, costUsd: row.costUsd }
      : null,
    /** On a user message of a room thread: the member who sent it and the name they sent it under; null otherwise. */
    authorId: row.authorId,
    authorName: row.authorName,
    /** On an assistant answer its owner rated: the thumbs up or down and its comment. */
    rating: row.rating ? { rating: row.rating, comment: row.ratingComment, ratedAt: row.ratedAt?.toISOString() ?? null } : null,
    createdAt: row.createdAt.toISOString(),
  };
}

/** The public view of a session. */
export function toChatSessionView(row: ChatSessionRow) {
  return {
    id: row.id,
    deviceId: row.deviceId,
    status: row.status,
    mode: row.mode,
    flowId: row.flowId,
    /** Set on a session started through a chatflow's public widget. */
    embedId: row.embedId,
    escalationReason: row.escalationReason,
    /** What the user's app sent as the conversation's context (the latest request that carried one); null when none. */
    context: row.context ?? null,
    title: row.title,
    /** The PSA ticket its notes go to, and how their push stands; null until resolved. */
    psaTicketId: row.psaTicketId,
    psaPushStatus: row.psaPushStatus,
    psaPushError: row.psaPushError,
    memberMappingWarning: row.memberMappingWarning,
    /** The task lane as the console left it; null when none was kept. */
    pendingTaskLane: row.pendingTaskLane ?? null,
    /** What a message sent while a turn of the session runs does; `enqueue` unless set. */
    multitask: row.multitask ?? 'enqueue',
    /** The coding agent working on it (its latest coding turn's, or the running plan step's); null when it never had one. */
    agent: row.codingAgent ?? null,
    /** The canvas whose room thread it is (its members read it, its editors post); null for a private session. */
    canvasId: row.canvasId,
    /** Who decides an approval asked by the thread's turns: the requester unless the thread says otherwise. */
    approvals: { policy: row.approvalPolicy, quorum: row.approvalQuorum },
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

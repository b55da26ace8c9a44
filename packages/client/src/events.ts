import type { AgentComplete, AgentData, AgentFrameAck, AgentRunRequest, DeviceHello, DeviceHelloAck, ToolCall } from './protocol';
import type { ApprovalRequested, ApprovalResolved, GenerationStage, InputRequested, InputResolved } from './payloads';
import type { Block } from './types';

export type {
  ApprovalDeciders,
  ApprovalRequested,
  ApprovalResolved,
  ApprovalVote,
  GenerationStage,
  InputDecision,
  InputRequested,
  InputResolved,
} from './payloads';

/*
 * Every Socket.IO event, typed per namespace and direction. The server (src/schemas/socket-events.ts re-exports
 * them), the SDK and the tests share these maps, so a renamed event or field fails to compile.
 */
export interface PresenceUser {
  userId: string;
  name: string;
}

export type Ack<T> = (response: T) => void;
/** `seq`: the canvas's latest event when the socket joined; events after it are live. */
export type JoinAck = { ok: true; presence: PresenceUser[]; seq: number } | { ok: false; error: { code: string; message?: string } };

/** A room event as the catch-up call returns it: the event name and its payload (with `seq`). */
export interface CanvasLogEntry {
  seq: number;
  event: CanvasRoomEventName;
  payload: Record<string, unknown>;
}

/**
 * `canvas:sync` ack: every room event after `afterSeq` in order, or `resync: true` when they are no
 * longer kept (reload the canvas over HTTP, then continue after `lastSeq`).
 */
export type SyncAck =
  | { ok: true; resync: false; events: CanvasLogEntry[]; lastSeq: number }
  | { ok: true; resync: true; lastSeq: number }
  | { ok: false; error: { code: string; message?: string } };

/**
 * `auth:refresh` (both namespaces): a fresh access token of the same user before the current
 * one expires; the ack gives its expiry. Without one the server disconnects the socket at expiry.
 */
export type AuthRefreshAck = { ok: true; expiresAt: string } | { ok: false; error: { code: string; message?: string } };
export interface AuthClientEvents {
  'auth:refresh': (payload: { token: string }, ack: Ack<AuthRefreshAck>) => void;
}
/** `auth:expired`: sent just before the server disconnects a socket whose access token expired. */
export interface AuthServerEvents {
  'auth:expired': (payload: { reason: 'token_expired' | 'session_revoked' }) => void;
}

/** `/canvas`: client → server. */
export interface CanvasClientEvents extends AuthClientEvents {
  'canvas:join': (canvasId: string, ack: Ack<JoinAck>) => void;
  'canvas:sync': (payload: { canvasId: string; afterSeq: number }, ack: Ack<SyncAck>) => void;
  'canvas:leave': (canvasId: string, ack?: Ack<{ ok: boolean }>) => void;
  'canvas:cursor': (payload: { canvasId: string; x: number; y: number }) => void;
  /** The member is typing in a room thread of a canvas whose room the socket joined (editors and owners; others are ignored). */
  'thread:typing': (payload: { canvasId: string; threadId: string }) => void;
}

/**
 * `/canvas`: server → client. Room events carry `seq`, strictly increasing per canvas across every
 * process (src/realtime/canvas-log.ts); presence and cursors are not sequenced.
 */
export interface CanvasServerEvents extends AuthServerEvents {
  block_added: (payload: { canvasId: string; block: Block; seq: number }) => void;
  block_updated: (payload: { canvasId: string; block: Block; seq: number }) => void;
  block_deleted: (payload: { canvasId: string; blockId: string; seq: number }) => void;
  blocks_bulk_added_chunk: (payload: {
    canvasId: string;
    generationId: string;
    /** The same as `generationId`, under the name the canvas app's clients read. */
    generation_session_id: string;
    chunkIndex: number;
    chunkCount: number;
    blocks: Block[];
    seq: number;
  }) => void;
  /** With `stage: "failed"`, `code` and `message` say why (the generation's SSE `error`; nothing of it was stored). */
  generation_status: (payload: {
    canvasId: string;
    generationId: string;
    stage: GenerationStage;
    code?: string;
    message?: string;
    seq: number;
  }) => void;
  /** The generation's blocks `blockIds` were removed; `keptBlockIds` stayed, as people had edited them since. */
  generation_undone: (payload: { canvasId: string; generationId: string; blockIds: string[]; keptBlockIds: string[]; seq: number }) => void;
  /** The blocks the generation's last undo removed are back, with their ids and ranks. */
  generation_redone: (payload: { canvasId: string; generationId: string; blocks: Block[]; seq: number }) => void;
  /** Every rank of the canvas was rewritten (order unchanged): reload its blocks, as after `resync`. */
  blocks_reranked: (payload: { canvasId: string; seq: number }) => void;
  /**
   * Something happened in one of the canvas's room threads: a member's message, the assistant's
   * state, or an event of the turn answering message `turnId` (see {@link ThreadEventBody}).
   */
  thread_event: (payload: { canvasId: string; threadId: string; turnId: string; event: ThreadEventBody; seq: number }) => void;
  /** A member is typing in a room thread (not sequenced, not replayed; at most about one a second per member). */
  thread_typing: (payload: { canvasId: string; threadId: string; userId: string; name: string }) => void;
  presence: (payload: { canvasId: string; users: PresenceUser[] }) => void;
  cursor: (payload: { userId: string; x: number; y: number }) => void;
  /** To every socket of the request's owner (room `user:<id>`), joined to a canvas or not. */
  approval_requested: (payload: ApprovalRequested) => void;
  /** The request was decided (first decision wins) or timed out; to every socket of its owner. */
  approval_resolved: (payload: ApprovalResolved) => void;
  /** A flow's form waits for your answer; to every socket of each of its recipients. */
  input_requested: (payload: InputRequested) => void;
  /** The form was answered (first answer wins), timed out, or its execution ended; to every socket of each recipient. */
  input_resolved: (payload: InputResolved) => void;
}

/** What the assistant of a room thread is doing. */
export type ThreadAssistantState = 'queued' | 'thinking' | 'running_tool' | 'waiting_for_approval' | 'idle';

/**
 * The `event` of a `thread_event`: `message` (a member posted; `turnId` is the message's id and its
 * turn's), `assistant_state` (what the assistant does for that turn now; `tool` while it runs one or
 * waits for its approval), or one of the turn's own events as its HTTP stream carries them:
 * `text_chunk {text}`, `tool_call {callId, name, arguments}`, `tool_result {callId, name, ok, content}`,
 * `approval_requested {approvalId, toolName, parameters, reason, expiresAt, deciders}`,
 * `approval_vote {approvalId, userId, approved, approvals, needed}` (a member's vote on a quorum
 * request), `approval_resolved {approvalId, status, decidedBy, voters?}`, `citations`, and one
 * terminal event: `final {response, usage}`,
 * `error {code, message}` or `cancelled {response, usage}`. Events of the thread itself carry the
 * thread's id as `turnId`: `thread_created {title, createdBy, multitask, createdAt}`,
 * `approval_policy {policy, quorum, setBy}`, `device_lent` and `device_withdrawn {deviceId, ownerId}`.
 */
export type ThreadEventBody =
  | { type: 'message'; messageId: string; authorId: string; authorName: string; content: string; createdAt: string }
  | { type: 'assistant_state'; state: ThreadAssistantState; tool?: string }
  | ({ type: string } & Record<string, unknown>);

/** `/canvas` events sent to a user's own sockets rather than to a canvas room. */
export type CanvasUserEventName = 'approval_requested' | 'approval_resolved' | 'input_requested' | 'input_resolved';

/** The sequenced room events of a canvas. */
export const CANVAS_ROOM_EVENTS = [
  'block_added',
  'block_updated',
  'block_deleted',
  'blocks_bulk_added_chunk',
  'generation_status',
  'generation_undone',
  'generation_redone',
  'blocks_reranked',
  'thread_event',
] as const;
export type CanvasRoomEventName = (typeof CANVAS_ROOM_EVENTS)[number];

export const CANVAS_NAMESPACE = '/canvas';

/** `/device`: device → server. */
export interface DeviceClientEvents extends AuthClientEvents {
  device_hello: (payload: DeviceHello, ack: Ack<DeviceHelloAck>) => void;
  /** Asks the assistant; the turn is bound to this device (its tools run here). */
  chat_request: (payload: ChatRequestPayload, ack: Ack<ChatRequestAck>) => void;
  /** Stops the running turn of `sessionId`, or of this device when it is left out. */
  chat_cancel: (payload: { sessionId?: string }, ack?: Ack<ChatCancelAck>) => void;
  /** Stops an agent run of this device's user (queued, waiting for its device, or running). */
  agent_cancel: (payload: { runId: string }, ack?: Ack<AgentCancelAck>) => void;
  /**
   * The user's decision on an `approval_requested` (an approval may carry the `arguments` to run the
   * call with instead; a rejection a `message` the model reads as the result); the optional ack is `{ok}` or `{error}`.
   */
  tool_approval: (
    payload: { approvalId: string; approved: boolean; arguments?: Record<string, unknown>; message?: string },
    ack?: Ack<ToolApprovalAck>,
  ) => void;
  /** Files read for an `agent_run` (any number of frames per run); the optional ack is `{ok}`. */
  agent_data: (payload: AgentData, ack?: Ack<AgentFrameAck>) => void;
  /** The device has sent every file of the run. */
  agent_complete: (payload: AgentComplete, ack?: Ack<AgentFrameAck>) => void;
}

/** `chat_cancel` ack: `not_running`, `not_found`, `validation_failed` on refusal. */
export type ChatCancelAck = { ok: true } | { ok: false; error: { code: string; message?: string } };

/** `agent_cancel` ack: `not_running`, `not_found`, `validation_failed` on refusal. */
export type AgentCancelAck = { ok: true } | { ok: false; error: { code: string; message?: string } };

export type ToolApprovalAck = { ok: true; status: string } | { error: { code: string; message?: string } };

/** `chat_request` from a device. `context` (≤ 8,000 characters of JSON) is kept on the session and given to the model every turn. */
export interface ChatRequestPayload {
  message: string;
  context?: Record<string, unknown>;
  sessionId?: string;
  /** The model to answer with (one the deployment configures; else `unknown_model`). */
  config?: { provider: string; model: string };
  /** A coding turn on the project this device serves: `orchestrator`, `ask`, `coder`, `debug` or `architect`. */
  agent?: 'orchestrator' | 'ask' | 'coder' | 'debug' | 'architect';
  /** What this message does while a turn of its session runs: `enqueue` (default: after it), `reject`, `interrupt`, `rollback`. */
  multitask?: 'enqueue' | 'reject' | 'interrupt' | 'rollback';
}
export type ChatRequestAck = { sessionId: string; messageId: string } | { error: { code: string; message?: string } };

/** `/device`: server → device. The device answers a `tool_call` through the ack (see src/schemas/device-protocol.ts). */
export interface DeviceServerEvents extends AuthServerEvents {
  tool_call: (call: ToolCall, ack: (reply: unknown) => void) => void;
  /** A piece of the assistant's answer; the pieces of a turn concatenate to its `final` response. */
  text_chunk: (payload: { sessionId: string; text: string }) => void;
  approval_requested: (payload: ApprovalRequested) => void;
  /** An approval request was decided on some surface, or timed out. */
  approval_resolved: (payload: ApprovalResolved) => void;
  /** A flow's form waits for this user's answer (they are one of its recipients). */
  input_requested: (payload: InputRequested) => void;
  /** That form was answered on some surface (first answer wins), timed out, or its execution ended. */
  input_resolved: (payload: InputResolved) => void;
  final: (payload: { sessionId: string; response: string }) => void;
  /** The turn failed (model unreachable, ...); no `final` follows. */
  chat_error: (payload: { sessionId: string; code: string; message: string }) => void;
  /** The running turn of that session was stopped; no `final` follows. */
  cancelled: (payload: { sessionId: string }) => void;
  /** A local agent run: read these folders and answer with `agent_data` frames, then `agent_complete`. */
  agent_run: (payload: AgentRunRequest) => void;
  /** That agent run was cancelled: stop reading and sending its files (further `agent_data` for it is dropped). */
  agent_cancelled: (payload: { runId: string }) => void;
  /** The server stopped waiting for that `tool_call` (its turn was cancelled): stop it if it still runs (a command). */
  tool_cancel: (payload: { id: string }) => void;
}

export const DEVICE_NAMESPACE = '/device';

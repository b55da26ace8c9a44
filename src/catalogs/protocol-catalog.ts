import { z } from 'zod';
import { agentCancelSchema } from '../agents/agent-run';
import { chatCancelSchema } from '../assistant/chat-turn-life';
import { chatRequestSchema } from '../assistant/chat-service';
import {
  agentCompleteSchema,
  agentDataSchema,
  agentRunSchema,
  deviceHelloSchema,
  errorReplySchema,
  replySchemas,
  toolCallSchema,
} from '../schemas/device-protocol';
import { blockInputSchema } from '../schemas/blocks';
import { wsClientCatalog, wsServerCatalog } from './ws-protocol-catalog';
import { toolApprovalSchema } from '../turns/approvals';
import {
  APPROVAL,
  APPROVAL_REQUESTED,
  approvalRequestedFields,
  approvalResolvedFields,
  block,
  CANVAS,
  GEN,
  INPUT,
  INPUT_REQUESTED,
  inputRequestedFields,
  inputResolvedFields,
  SESSION,
  USER,
} from './catalog-examples';
import { chatSseCatalog, generationSseCatalog, notesSseCatalog } from './sse-protocol-catalog';

export type { SseCatalog, SseDoc } from './sse-protocol-catalog';
import type {
  CanvasClientEvents,
  CanvasServerEvents,
  DeviceClientEvents,
  DeviceServerEvents,
  CanvasServerSideEvents,
  DeviceServerSideEvents,
} from '../schemas/socket-events';

/**
 * The documentation of every Socket.IO event and SSE message, keyed by the event maps and event
 * unions themselves: an event added to a map without an entry here (or an example that no longer
 * fits its type) fails the type check. `scripts/protocol-doc.ts` renders docs/protocol.md from it,
 * and test/unit/protocol-doc.test.ts checks the file is current and the examples parse.
 */

type Args<F> = F extends (...args: infer A) => void ? A : never;
/** The first argument of an event handler: its payload. */
export type PayloadOf<F> = Args<F>[0];
/** What the handler's ack callback is called with (`never` when the event has no ack). */
export type AckOf<F> = F extends (payload: never, ack: infer A) => void
  ? NonNullable<A> extends (reply: infer R) => void
    ? R
    : never
  : never;

export interface AckDoc<R> {
  description: string;
  /** One example per outcome (success, refusal, ...). */
  examples: R[];
  /** Each example must parse with one of these (where a schema exists). */
  schemas?: z.ZodType[];
}

/** One socket event. `ack` is required exactly when the event map gives the handler an ack. */
export type EventDoc<F> = {
  summary: string;
  /** Field → meaning. */
  fields: Record<string, string>;
  example: PayloadOf<F>;
  /** The zod schema the receiving side validates the payload with, when there is one. */
  schema?: z.ZodType;
  notes?: string;
} & ([AckOf<F>] extends [never] ? { ack?: never } : { ack: AckDoc<AckOf<F>> });

/** The catalog of one event map: every key, nothing else. */
export type EventCatalog<Map> = { [K in keyof Map]-?: EventDoc<Map[K]> };

/** `auth:refresh` and `auth:expired`, the same on `/canvas` and `/device`. */
const authRefreshDoc = {
  summary:
    'Re-authenticates the socket with a fresh access token of the same user before the current one expires (the SDK does it by itself). Without it the server sends `auth:expired` and disconnects the socket when the token expires.',
  fields: { token: 'an access token of the same user (from `POST /auth/refresh`)' },
  example: { token: 'eyJhbGciOiJIUzI1NiIs…' },
  schema: z.strictObject({ token: z.string().min(1).max(4096) }),
  notes:
    'Refusals: `validation_failed`, `unauthorized` (bad, expired or revoked token), `forbidden` (another user), `unavailable`. The socket keeps its current token after a refusal.',
  ack: {
    description:
      '`{ok: true, expiresAt}` (when the socket will be disconnected unless refreshed again) or `{ok: false, error: {code, message}}`.',
    examples: [
      { ok: true as const, expiresAt: '2026-01-01T12:15:00.000Z' },
      { ok: false as const, error: { code: 'unauthorized', message: 'Invalid or expired access token' } },
    ],
  },
};
const authExpiredDoc = {
  summary:
    'The access token of this socket expired (`token_expired`) or its session was signed out (`session_revoked`); the server disconnects the socket right after. Reconnect with a fresh token.',
  fields: { reason: '`token_expired` or `session_revoked`' },
  example: { reason: 'token_expired' as const },
};

/** A block's `{type, content}` is checked with the block schemas; the stored fields ride along. */
const withBlock = z.looseObject({ canvasId: z.uuid(), block: blockInputSchema, seq: z.number().int().min(1) });
const canvasId = 'the canvas (UUID)';
const seq = "this canvas's event sequence number: strictly increasing, never reused (see `canvas:sync`)";

export const canvasClientCatalog = {
  'auth:refresh': authRefreshDoc,
  'canvas:join': {
    summary: 'Join the room of a canvas you are a member of; presence is broadcast to the room.',
    fields: { canvasId: 'the canvas to join (first argument, a UUID string)' },
    example: CANVAS,
    schema: z.uuid(),
    ack: {
      description:
        "`{ok:true, presence, seq}` with the users in the room and the seq of the canvas's latest event (events after it reach you live), " +
        'or `{ok:false, error:{code}}` (`not_found` for a canvas you cannot see, `validation_failed`, `rate_limited` past 20 joins/leaves in a burst, 5/s after). Join first, then load the blocks over HTTP, ' +
        'then apply room events with a larger seq (adding a block you already have is a no-op).',
      examples: [
        { ok: true, presence: [{ userId: USER, name: 'Ada' }], seq: 41 },
        { ok: false, error: { code: 'not_found' } },
      ],
    },
  },
  'canvas:sync': {
    summary:
      'Catch up by cursor: the room events of a canvas after `afterSeq`. Call it after EVERY reconnect (recovered or not) and as soon as a ' +
      'received `seq` is not the last one + 1; hand each event to the application once (skip any seq you already have).',
    fields: { canvasId: 'a canvas you are a member of', afterSeq: 'the last seq you handled (0 for none)' },
    example: { canvasId: CANVAS, afterSeq: 41 },
    schema: z.object({ canvasId: z.uuid(), afterSeq: z.number().int().min(0) }),
    ack: {
      description:
        '`{ok:true, resync:false, events:[{seq, event, payload}], lastSeq}` in seq order, or `{ok:true, resync:true, lastSeq}` when those events are ' +
        'no longer kept (older than `CANVAS_LOG_TTL_SECONDS`, or more than `CANVAS_SYNC_MAX_EVENTS`): reload the blocks over HTTP and continue after ' +
        '`lastSeq`. `{ok:false, error:{code}}`: `not_found`, `validation_failed`, `rate_limited` (past 30 in a burst, 10/s after: ask again a little later).',
      examples: [
        {
          ok: true,
          resync: false,
          events: [{ seq: 42, event: 'block_deleted', payload: { canvasId: CANVAS, blockId: block.id, seq: 42 } }],
          lastSeq: 42,
        },
        { ok: true, resync: true, lastSeq: 980 },
      ],
    },
  },
  'canvas:leave': {
    summary: 'Leave a canvas room.',
    fields: { canvasId: 'the canvas to leave (first argument)' },
    example: CANVAS,
    schema: z.uuid(),
    ack: { description: 'Optional; `{ok}`.', examples: [{ ok: true }] },
  },
  'canvas:cursor': {
    summary:
      'Your pointer position; relayed (volatile, may be dropped) to the others in the room as `cursor`. At most 20 a second per socket are relayed ' +
      '(the rest are dropped); cursors travel over Redis pub/sub, never through the recovery stream, so they are not replayed after a reconnect.',
    fields: { canvasId, x: 'finite number', y: 'finite number' },
    example: { canvasId: CANVAS, x: 120.5, y: 48 },
    schema: z.object({ canvasId: z.uuid(), x: z.number().finite(), y: z.number().finite() }),
  },
  'thread:typing': {
    summary:
      'You are typing in a room thread of a canvas whose room this socket joined; relayed (volatile) to the others in the room as `thread_typing`. ' +
      "Only an editor's or owner's is relayed, at most one a second per socket; a viewer's, an unknown thread's or one past the rate is dropped.",
    fields: { canvasId, threadId: 'the thread (a chat session of the canvas)' },
    example: { canvasId: CANVAS, threadId: '0b5c2f8e-6a51-4f7c-9d2a-3e1f4b6c8d90' },
    schema: z.object({ canvasId: z.uuid(), threadId: z.uuid() }),
  },
} satisfies EventCatalog<CanvasClientEvents>;

export const canvasServerCatalog = {
  'auth:expired': authExpiredDoc,
  block_added: {
    summary: 'A block was created by hand (`POST /canvases/:id/blocks`).',
    fields: {
      canvasId,
      block: 'the stored block (`id, canvasId, type, content, rank, generationSessionId, createdBy, createdAt, updatedAt`)',
      seq,
    },
    example: { canvasId: CANVAS, block: { ...block, generationSessionId: null, createdBy: USER }, seq: 12 },
    schema: withBlock,
  },
  block_updated: {
    summary: 'A block was edited or moved.',
    fields: { canvasId, block: 'the block after the change', seq },
    example: { canvasId: CANVAS, block: { ...block, content: { text: 'Plan the launch!', level: 1 } }, seq: 13 },
    schema: withBlock,
  },
  block_deleted: {
    summary: 'A block was deleted.',
    fields: { canvasId, blockId: 'the deleted block', seq },
    example: { canvasId: CANVAS, blockId: block.id, seq: 14 },
    schema: z.object({ canvasId: z.uuid(), blockId: z.uuid(), seq: z.number().int().min(1) }),
  },
  blocks_bulk_added_chunk: {
    summary: 'Part of the blocks a generation persisted, sent by the `broadcast` queue in chunks of `BROADCAST_CHUNK_SIZE`.',
    fields: {
      canvasId,
      generationId: 'the generation',
      generation_session_id: "the same id, under the name the canvas app's clients read",
      chunkIndex: '0-based',
      chunkCount: 'chunks in all',
      blocks: 'the blocks of this chunk, in rank order',
      seq,
    },
    example: { canvasId: CANVAS, generationId: GEN, generation_session_id: GEN, chunkIndex: 0, chunkCount: 1, blocks: [block], seq: 15 },
    schema: z.object({
      canvasId: z.uuid(),
      generationId: z.uuid(),
      generation_session_id: z.uuid(),
      chunkIndex: z.number().int().min(0),
      chunkCount: z.number().int().min(1),
      blocks: z.array(blockInputSchema),
      seq: z.number().int().min(1),
    }),
  },
  generation_status: {
    summary: 'A generation on this canvas moved to another stage (from the worker, through the Redis adapter).',
    fields: {
      canvasId,
      generationId: 'the generation',
      stage:
        '`queued`, `thinking`, `tool`, `persisting`, `broadcasting`, `cancelled` (it was stopped; nothing of it was stored) or `failed` (nothing of it was stored)',
      code: 'with `failed`: the error code of the SSE `error` (`llm_unavailable`, `llm_output_truncated`, `llm_content_filter`, `budget_exceeded`, …)',
      message: 'with `failed`: why, in words',
      seq,
    },
    example: { canvasId: CANVAS, generationId: GEN, stage: 'thinking', seq: 11 },
  },
  generation_undone: {
    summary:
      'A generation was undone: the blocks `blockIds` are gone. Blocks of it that people had edited since (content or position) stay, listed in `keptBlockIds`, unless the undo was forced (then that list is empty).',
    fields: { canvasId, generationId: 'the generation', blockIds: 'the deleted blocks', keptBlockIds: 'the edited blocks it kept', seq },
    example: { canvasId: CANVAS, generationId: GEN, blockIds: [block.id], keptBlockIds: [], seq: 16 },
  },
  generation_redone: {
    summary:
      "A generation's last undo was redone: the blocks it removed are back, with the same ids and ranks (`POST …/redo`). Add them as `blocks_bulk_added_chunk`'s are added.",
    fields: { canvasId, generationId: 'the generation', blocks: 'the restored blocks, in rank order', seq },
    example: { canvasId: CANVAS, generationId: GEN, blocks: [block], seq: 18 },
    schema: z.object({ canvasId: z.uuid(), generationId: z.uuid(), blocks: z.array(blockInputSchema), seq: z.number().int().min(1) }),
  },
  blocks_reranked: {
    summary:
      'Every rank of the canvas was rewritten to make room for an insert (a rebalance); the order is unchanged. Reload the blocks over HTTP, as after `resync`: blocks added after this event carry ranks that only compare correctly with the new ones.',
    fields: { canvasId, seq },
    example: { canvasId: CANVAS, seq: 17 },
    schema: z.object({ canvasId: z.uuid(), seq: z.number().int().min(1) }),
  },
  thread_event: {
    summary:
      "Something happened in one of the canvas's room threads (a sequenced room event, replayed by `canvas:sync` and the room's SSE feeds like block events): " +
      '`event.type` `message` (a member posted; `turnId` is the message id), `assistant_state` (`queued`, `thinking`, `running_tool` with `tool`, ' +
      '`waiting_for_approval` with `tool`, `idle`), or an event of the turn answering `turnId`: `text_chunk {text}`, `tool_call`, `tool_result`, ' +
      '`approval_requested`, `approval_resolved`, `citations`, then `final {response, usage}`, `error {code, message}` or `cancelled {response, usage}`.',
    fields: {
      canvasId,
      threadId: 'the thread (a chat session bound to the canvas)',
      turnId: "the turn's user message id",
      event: '`{type, …}` as above',
      seq,
    },
    example: {
      canvasId: CANVAS,
      threadId: '0b5c2f8e-6a51-4f7c-9d2a-3e1f4b6c8d90',
      turnId: '5d1e9a34-2b7c-4e8f-a1d3-7c9b0e2f4a61',
      event: { type: 'text_chunk', text: 'Added three to-dos for ' },
      seq: 41,
    },
    schema: z.object({
      canvasId: z.uuid(),
      threadId: z.uuid(),
      turnId: z.uuid(),
      event: z.looseObject({ type: z.string() }),
      seq: z.number().int().min(1),
    }),
  },
  thread_typing: {
    summary: 'A member is typing in a room thread (relayed `thread:typing`; volatile, not sequenced, not replayed).',
    fields: { canvasId, threadId: 'the thread', userId: 'who is typing', name: 'their display name' },
    example: { canvasId: CANVAS, threadId: '0b5c2f8e-6a51-4f7c-9d2a-3e1f4b6c8d90', userId: USER, name: 'Ada' },
  },
  presence: {
    summary: 'Who is in the room, after anyone joins or leaves.',
    fields: { canvasId, users: '`[{userId, name}]`' },
    example: { canvasId: CANVAS, users: [{ userId: USER, name: 'Ada' }] },
  },
  cursor: {
    summary: "Another member's pointer (relayed `canvas:cursor`; volatile).",
    fields: { userId: 'whose pointer', x: 'number', y: 'number' },
    example: { userId: USER, x: 120.5, y: 48 },
  },
  approval_requested: {
    summary:
      "To every `/canvas` socket of the request's owner (room `user:<id>`, joined on connection, in a canvas or not; never another user's): a dangerous tool call of one of your chat turns waits for your decision (`PUT /hitl/requests/:id/approve|reject`).",
    fields: approvalRequestedFields,
    example: APPROVAL_REQUESTED,
  },
  approval_resolved: {
    summary:
      'To every `/canvas` socket of the owner: the request was decided (the first decision wins, on any surface) or timed out. Clear it from view.',
    fields: approvalResolvedFields,
    example: { approvalId: APPROVAL, status: 'approved', decidedBy: USER },
  },
  input_requested: {
    summary:
      "To every `/canvas` socket of each recipient of an agentflow's form (room `user:<id>`): a human_input node waits for your answer (`POST /hitl/inputs/:id/answer`).",
    fields: inputRequestedFields,
    example: INPUT_REQUESTED,
  },
  input_resolved: {
    summary:
      'To every `/canvas` socket of each recipient: the form was answered (the first answer wins, on any surface), timed out, or its execution ended. Clear it from view.',
    fields: inputResolvedFields,
    example: { inputId: INPUT, status: 'answered', answeredBy: USER, decision: 'approve' },
  },
} satisfies EventCatalog<CanvasServerEvents>;

export const deviceClientCatalog = {
  'auth:refresh': authRefreshDoc,
  device_hello: {
    summary:
      'Sent on every connection (and reconnection): which of your local agents this device runs. Devices only count as online for runs after it.',
    fields: {
      deviceId: 'the same id as in the handshake',
      agentIds: 'local agent ids (default `[]`)',
      project: 'the project folder served to the coding agents (optional)',
      tables:
        '`false` when the device has no local tables (a project folder only): the assistant then chooses another device for its task and note tools (optional)',
      allTurns:
        "`true`: also receive `text_chunk`, `final`, `chat_error` and `cancelled` of every chat turn that runs on this device (one started over HTTP for it, or by another connection). Unsaid or `false`: only those of this socket's own `chat_request`s (optional)",
    },
    example: { deviceId: 'laptop-1', agentIds: ['agent-a'] },
    schema: deviceHelloSchema,
    ack: {
      description: '`{ok:true}` or `{ok:false, error:{code}}` (`validation_failed`, `invalid_device`).',
      examples: [
        { ok: true },
        { ok: false, error: { code: 'invalid_device', message: 'deviceId differs from the one given in the handshake' } },
      ],
    },
  },
  chat_request: {
    summary: 'Ask the assistant; tools run on this device; the answer streams back as `text_chunk` then `final` (or `chat_error`).',
    fields: {
      message: '1-8,000 characters',
      sessionId: 'continue a session (optional)',
      config: '`{provider, model}`: the model to answer with, one the deployment configures (else `unknown_model`; optional)',
      context:
        'a JSON object (≤ 8,000 characters) about where the user is in the app, kept on the session and given to the model every turn; `{}` clears it (optional)',
      multitask:
        "what the message does while a turn of its session runs: `enqueue` (runs after it and reads its answer), `reject` (ack `{error: {code: 'turn_in_progress'}}`, nothing written), `interrupt` (stops it, keeping what it said), `rollback` (stops it and removes its messages); else the session's strategy, else `enqueue` (optional)",
    },
    example: { message: 'How many todo tasks do I have?' },
    schema: chatRequestSchema,
    ack: {
      description: '`{sessionId, messageId}` once the turn is queued, or `{error:{code}}`.',
      examples: [
        { sessionId: SESSION, messageId: 'c3f1a2b4-5d6e-4f70-8a9b-0c1d2e3f4a5b' },
        { error: { code: 'validation_failed', message: 'message: Too small' } },
      ],
    },
  },
  chat_cancel: {
    summary:
      'Stop a running assistant turn: the model request is aborted, tool calls waiting on the device are abandoned (a late answer is ignored), ' +
      'its pending approvals become `rejected` (`decisionReason: "cancelled"`), and the turn ends with `cancelled {sessionId}`; the partial answer is kept ' +
      'in the history marked `cancelled`.',
    fields: { sessionId: 'the session whose turn to stop (optional: without it, the running turn this device asked for)' },
    example: { sessionId: SESSION },
    schema: chatCancelSchema,
    ack: {
      description:
        'Optional; `{ok:true}` once the stop is under way, or `{ok:false, error:{code}}` (`not_running`, `not_found`, `validation_failed`).',
      examples: [{ ok: true }, { ok: false, error: { code: 'not_running' } }],
    },
  },
  tool_approval: {
    summary:
      'Your decision on an `approval_requested`. Only a device connected with a session token (a signed-in person) decides; one connected with an API key serves tools but gets `person_required`, and the request stays pending.',
    fields: {
      approvalId: 'from `approval_requested`',
      approved: 'boolean',
      arguments:
        "optional, with `approved: true`: the arguments to run the call with instead of the model's (checked against the tool's schema; the audit records the edit)",
      message: "optional, with `approved: false`: a reply the model reads as the tool's result, and the turn goes on",
    },
    example: { approvalId: APPROVAL, approved: true },
    schema: toolApprovalSchema,
    ack: {
      description:
        'Optional; `{ok:true, status}` or `{error:{code}}` (`person_required`, `not_found`, `already_decided`, `expired`, `validation_failed`).',
      examples: [{ ok: true, status: 'approved' }, { error: { code: 'not_found' } }, { error: { code: 'person_required' } }],
    },
  },
  agent_data: {
    summary: 'Some of the files read for an `agent_run`; a run may send any number of frames (keep each well under 1 MB).',
    fields: { runId: 'from `agent_run`', files: '`[{path, name, content, metadata?}]`, text content' },
    example: {
      runId: 'run-1',
      files: [{ path: '/home/ada/notes/launch.md', name: 'launch.md', content: 'TODO book venue\n', metadata: { size: 16 } }],
    },
    schema: agentDataSchema,
    ack: {
      description: 'Optional; `{ok:true}` or `{ok:false, error:{code}}`. The SDK waits for it before sending the next frame.',
      examples: [{ ok: true }],
    },
  },
  agent_complete: {
    summary: 'Every file of the run was sent.',
    fields: {
      runId: 'from `agent_run`',
      filesRead: 'files sent in `agent_data`',
      errors: 'files or folders that could not be read, and why',
    },
    example: { runId: 'run-1', filesRead: 1, errors: ['/home/ada/notes/huge.pdf: 9000000 bytes is over the limit of 1000000 per file'] },
    schema: agentCompleteSchema,
    ack: { description: 'Optional; `{ok:true}` or `{ok:false, error:{code}}`.', examples: [{ ok: true }] },
  },
  agent_cancel: {
    summary:
      'Stop an agent run of your own (`POST /agents/runs/:runId/cancel` over the socket): queued or waiting for its device it ends at once; ' +
      'running, its model call and any device call it waits on are aborted. It ends with status `cancelled`; suggestions already delivered stay.',
    fields: { runId: 'the run to stop (from `agent_run`, or `POST /agents/:id/run`)' },
    example: { runId: '7d1e4c2a-9b3f-4e8d-a6c5-1f2e3d4c5b6a' },
    schema: agentCancelSchema,
    ack: {
      description:
        'Optional; `{ok:true}` once the stop is under way, or `{ok:false, error:{code}}` (`not_running`, `not_found`, `validation_failed`).',
      examples: [{ ok: true }, { ok: false, error: { code: 'not_running' } }],
    },
  },
} satisfies EventCatalog<DeviceClientEvents>;

export const deviceServerCatalog = {
  'auth:expired': authExpiredDoc,
  tool_call: {
    summary: "Run one operation on the device's local tables; answer through the ack within `DEVICE_RPC_TIMEOUT_MS` (30 s).",
    fields: {
      id: 'correlation id, echoed in the reply',
      idempotencyKey:
        'optional; the same for a call repeated because the server re-ran an assistant turn after a crash (same turn, step, tool and arguments). A device must answer a write (`insert update delete vector_upsert`) it has already run with this key from memory, without running it again',
      action: '`select get insert update delete vector_upsert vector_search`',
      table: '`tasks projects checkpoints notes taskComments clients`',
      data: 'row data (`insert`), `{id}` (`get`, `delete`), `{id, updates}` (`update`), `{id, content, ...}` (`vector_upsert`)',
      'filters / vector / limit': 'for `select`, `vector_search`',
    },
    example: { id: 'rpc-1', action: 'select', table: 'tasks', filters: { status: 'todo' }, limit: 50 },
    schema: toolCallSchema,
    ack: {
      description:
        '`{id, rows}` (select), `{id, row}` (get/insert/update), `{id, deleted}`, `{id, ok}` (vector_upsert), `{id, results}` (vector_search), or `{id, error}`. The device adds ids and timestamps.',
      examples: [
        { id: 'rpc-1', rows: [{ id: 't-1', title: 'Book venue', status: 'todo', createdAt: 1763807742779, updatedAt: 1763807742779 }] },
        { id: 'rpc-1', error: 'tasks t-9 not found' },
      ],
      schemas: [replySchemas.select, errorReplySchema],
    },
  },
  text_chunk: {
    summary:
      "A piece of the assistant's answer; the pieces of a turn concatenate to its `final` response. Sent to the device whose `chat_request` started the turn (each of its connections, so an app that reconnected still gets its answer) and to sockets that said `device_hello {allTurns: true}`, as are `final`, `chat_error` and `cancelled`; a turn started over HTTP reaches only the latter.",
    fields: { sessionId: 'the chat session', text: 'the piece' },
    example: { sessionId: SESSION, text: 'You have 2 ' },
  },
  approval_requested: {
    summary:
      'A dangerous tool call waits for your decision (`tool_approval` or `PUT /hitl/requests/:id/approve|reject`) until `expiresAt`.',
    fields: approvalRequestedFields,
    example: APPROVAL_REQUESTED,
  },
  approval_resolved: {
    summary: 'An approval request of this user was decided on some surface (first decision wins), or timed out.',
    fields: approvalResolvedFields,
    example: { approvalId: APPROVAL, status: 'timeout', decidedBy: null },
  },
  input_requested: {
    summary:
      "An agentflow's form waits for this user's answer (`POST /hitl/inputs/:id/answer`, a signed-in person only) until `expiresAt`. Sent to every connected device of each recipient.",
    fields: inputRequestedFields,
    example: INPUT_REQUESTED,
  },
  input_resolved: {
    summary: 'A form of this user was answered on some surface (first answer wins), timed out, or its execution ended.',
    fields: inputResolvedFields,
    example: { inputId: INPUT, status: 'timeout', answeredBy: null, decision: null },
  },
  final: {
    summary: "The assistant's whole answer; the turn is over.",
    fields: { sessionId: 'the chat session', response: 'the answer' },
    example: { sessionId: SESSION, response: 'You have 2 todo tasks.' },
  },
  chat_error: {
    summary: 'The turn failed (model unreachable, ...); no `final` follows.',
    fields: { sessionId: 'the chat session', code: 'e.g. `llm_unavailable`', message: 'readable' },
    example: { sessionId: SESSION, code: 'llm_unavailable', message: 'The model did not answer' },
  },
  cancelled: {
    summary: 'The running turn of the session was stopped (`POST /chat/sessions/:id/cancel` or `chat_cancel`); no `final` follows.',
    fields: { sessionId: 'the chat session' },
    example: { sessionId: SESSION },
  },
  tool_cancel: {
    summary:
      'The server stopped waiting for that `tool_call` (its turn was cancelled): a device stops it if it still runs (the device kit kills a running command). No ack.',
    fields: { id: 'the `tool_call` id' },
    example: { id: '5d0c1f9e-2f7b-4d53-9a8e-7c1e0b6f4a21' },
  },
  agent_run: {
    summary: 'Run a local agent: read its folders within the bounds, answer with `agent_data` frames, then `agent_complete`.',
    fields: {
      runId: 'the run',
      agentId: 'the local agent',
      'config.paths': 'folders or files',
      'config.fileExtensions': 'extensions to read (empty: all)',
      'config.promptTemplate / dataTypes': 'how the server extracts items (informational)',
      'config.maxFiles / maxBytes / maxFileBytes': 'bounds the server enforces',
    },
    example: {
      runId: 'run-1',
      agentId: 'agent-a',
      config: {
        paths: ['/home/ada/notes'],
        fileExtensions: ['.md', '.txt'],
        promptTemplate: 'Extract my tasks',
        dataTypes: ['tasks'],
        maxFiles: 200,
        maxBytes: 5_000_000,
        maxFileBytes: 1_000_000,
      },
    },
    schema: agentRunSchema,
  },
  agent_cancelled: {
    summary:
      'The agent run was cancelled (`POST /agents/runs/:runId/cancel` or `agent_cancel`): stop reading and sending its files; `agent_data` and `agent_complete` for it are no longer used.',
    fields: { runId: 'from `agent_run`' },
    example: { runId: 'run-1' },
  },
} satisfies EventCatalog<DeviceServerEvents>;

/** Node ↔ node through the adapter (`serverSideEmit`); clients never see these. */
export const canvasNodeCatalog = {
  'canvas:presence-users': {
    summary:
      "Asked by the node announcing a canvas's presence, answered by every process with the namespace (workers answer an empty list): the users with a socket in the canvas's room there, each once.",
    fields: { canvasId: 'the canvas whose room is asked about' },
    example: CANVAS,
    ack: {
      description: 'The users in the room on the answering node.',
      examples: [[{ userId: USER, name: 'Ada' }]],
    },
  },
} satisfies EventCatalog<CanvasServerSideEvents>;

export const deviceNodeCatalog = {
  'device:online': {
    summary: 'A device said `device_hello` on some node.',
    fields: { userId: 'owner', deviceId: 'device', socketId: 'its socket', agentIds: 'from the hello' },
    example: { userId: USER, deviceId: 'laptop-1', socketId: 'k3Jd9xQ2', agentIds: ['agent-a'] },
  },
  'device:gone': {
    summary: 'A device disconnected from some node (calls waiting on it end at once).',
    fields: { userId: 'owner', deviceId: 'device', socketId: 'its socket', reason: 'Socket.IO disconnect reason' },
    example: { userId: USER, deviceId: 'laptop-1', socketId: 'k3Jd9xQ2', reason: 'transport close' },
  },
} satisfies EventCatalog<DeviceServerSideEvents>;

/**
 * How a `/canvas` client keeps an exact copy of a canvas: the rules docs/protocol.md
 * states under "Catch-up". The SDK (packages/client/src/canvas-sync.ts; the console uses it through web/canvas-sync.js)
 * and the raw client of test/faults/churn.test.ts follow them.
 */
export const canvasCatchUpRules = [
  'Every room event of a canvas (`block_added`, `block_updated`, `block_deleted`, `blocks_bulk_added_chunk`, `generation_status`,',
  '`generation_undone`, `blocks_reranked`) carries `seq`: strictly increasing per canvas across every API and worker process, never reused. Each is',
  "kept in the canvas's replay log for `CANVAS_LOG_TTL_SECONDS` (default 600, at least the 2-minute recovery window), at most",
  "about `CANVAS_LOG_MAX_EVENTS` (default 1000) of them. Socket.IO's connection state recovery replays most of what a dropped",
  'client missed, but not all of it: the guarantee is `seq` plus `canvas:sync`. A client keeps `last`, the seq of the',
  'last event it applied, per canvas, and:',
  '',
  '1. **Joins, then loads.** `canvas:join` answers `seq`; set `last = seq`, then load the blocks over HTTP',
  '   (`GET /canvases/:id/blocks`, following its pages). Events that arrive meanwhile wait until the load is in.',
  '2. **Applies in order, once.** An event with `seq <= last` is a repeat: skip it. `seq == last + 1`: apply it, `last = seq`,',
  '   then apply any held event that now follows. `seq > last + 1`: a gap; hold the event, and call `canvas:sync` when the gap',
  '   is still open after a short grace (the SDK waits 250 – 500 ms, at random): events of one canvas can arrive a few',
  "   milliseconds out of order (a change's event is sent after its transaction commits), and asking at once would send every",
  '   client of the canvas to the server together.',
  '3. **Catches up after EVERY reconnect**, whether or not `socket.recovered` is true: if it is not, `canvas:join` again',
  '   first (the rooms were lost); then `canvas:sync {canvasId, afterSeq: last}` and apply its events by rule 2. A catch-up',
  '   that times out is asked again.',
  '4. **Reloads on `resync`.** The events after `last` are no longer kept (or are too many): load the blocks over HTTP (the load',
  '   is read after the answer, so it holds every event up to `lastSeq`), set `last = lastSeq` (unless `last` is past it',
  '   already: events a recovered connection replayed while the sync was asked were applied, and are not applied again), then',
  '   apply the held events by rule 2. Live events that arrive during the load wait for it; applying them first would let the load wipe them.',
  "5. **Reloads on `blocks_reranked`** the same way, when it is applied by rule 2 (with `last` = its seq): the canvas's ranks",
  '   were rewritten, and the ranks the client holds no longer compare correctly with new ones.',
  '',
  'Replaying an event over a load that already holds it converges: each event states the full block (or its deletion).',
];

/** Every catalog with where it applies, in document order. */
export const protocolCatalog = {
  sockets: [
    { namespace: '/canvas', direction: 'client → server', events: canvasClientCatalog },
    { namespace: '/canvas', direction: 'server → client', events: canvasServerCatalog },
    { namespace: '/device', direction: 'device → server', events: deviceClientCatalog },
    { namespace: '/device', direction: 'server → device', events: deviceServerCatalog },
  ],
  nodes: [
    { namespace: '/canvas', direction: 'node → node (adapter)', events: canvasNodeCatalog },
    { namespace: '/device', direction: 'node → node (adapter)', events: deviceNodeCatalog },
  ],
  websocket: { client: wsClientCatalog, server: wsServerCatalog },
  sse: { generation: generationSseCatalog, chat: chatSseCatalog, notes: notesSseCatalog },
} as const;

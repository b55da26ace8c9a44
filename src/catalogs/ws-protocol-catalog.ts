import { z } from 'zod';
import { chatRequestSchema } from '../assistant/chat-service';
import {
  agentCompleteSchema,
  agentDataSchema,
  deviceHelloSchema,
  errorReplySchema,
  replySchemas,
  toolCallSchema,
} from '../schemas/device-protocol';
import { camelPayload, type WsClientFrames, type WsClientType, type WsFrame, type WsServerFrames } from '../devices/ws-frames';
import { INPUT, INPUT_REQUESTED } from './catalog-examples';
import { toolApprovalSchema } from '../turns/approvals';

/**
 * The plain-WebSocket device protocol for docs/protocol.md, typed by the frame
 * maps in src/devices/ws-frames.ts: a frame type added there without an entry here fails the type
 * check. Client frame examples are checked by test/unit/protocol-doc.test.ts against the schemas the
 * server validates them with (after the snake_case → camelCase step it applies).
 */

export interface WsFrameDoc<F> {
  summary: string;
  fields: Record<string, string>;
  example: F;
  /** Validates the whole wire frame, as the server reads it. */
  schema?: z.ZodType;
}
export type WsCatalog<M> = { [K in keyof M]-?: WsFrameDoc<WsFrame<M, K>> };

/** A wire frame of `type` whose converted payload passes `schema`. */
const wire = (type: Exclude<WsClientType, 'tool_result'>, schema: z.ZodType) =>
  z.custom((frame) => {
    const converted = camelPayload(type, frame as Record<string, unknown>);
    return 'payload' in converted && schema.safeParse(converted.payload).success;
  });

const SESSION = '5a0c7e52-18d4-4f3b-b6a9-2e7f1c0d9b44';
const APPROVAL = '9e3b5d17-6c2a-4f80-b4d1-8a7c0e2f6b55';

export const wsClientCatalog = {
  device_hello: {
    summary:
      'Must be the first frame (before it only `pong` and `ping` are accepted). Makes the device online for its user on every node; a newer connection of the same `device_id`, on either transport, replaces this one (closed with 4000).',
    fields: {
      device_id: '1-128 of `A-Z a-z 0-9 . _ : -`, stable per installation',
      agent_ids: 'local agents this device runs',
      tables: '`false` when the device has no local tables (it serves a project folder only; optional)',
      all_turns:
        "`true`: also receive `text_chunk`, `final`, `error` and `cancelled` of every chat turn that runs on this device (one started over HTTP for it). Unsaid or `false`: only those of this connection's own `chat_request`s (optional)",
    },
    example: { type: 'device_hello', device_id: 'laptop-1', agent_ids: ['agent-a'] },
    schema: wire('device_hello', deviceHelloSchema),
  },
  chat_request: {
    summary:
      'Asks the assistant; tools run on this device; the answer streams back as `text_chunk` frames then `final` (or `error` with `session_id`).',
    fields: {
      message: '1-8,000 characters',
      session_id: 'continue a session (optional)',
      config: '`{provider, model}`: the model to answer with, one the deployment configures (else `error unknown_model`; optional)',
      context:
        'a JSON object (≤ 8,000 characters) about where the user is in the app, kept on the session and given to the model every turn; `{}` clears it (optional)',
      agent:
        'a coding agent (`orchestrator`, `ask`, `coder`, `debug`, `architect`): the turn works on the project this device serves (optional; docs/coding-agents.md)',
      multitask:
        "what the message does while a turn of its session runs: `enqueue` (runs after it and reads its answer), `reject` (`error turn_in_progress`, nothing written), `interrupt` (stops it, keeping what it said), `rollback` (stops it and removes its messages); else the session's strategy, else `enqueue` (optional)",
    },
    example: { type: 'chat_request', message: 'How many todo tasks do I have?' },
    schema: wire('chat_request', chatRequestSchema),
  },
  tool_result: {
    summary:
      'The answer to a `tool_call`, matched by `id`; within `DEVICE_RPC_TIMEOUT_MS` (30 s). A result for an id not waiting on this connection (unknown, answered, or past its timeout) gets `error unknown_call`.',
    fields: {
      id: 'the `tool_call` id',
      'rows / row / deleted / ok / results': 'per action, as on Socket.IO',
      error: 'what went wrong on the device',
    },
    example: {
      type: 'tool_result',
      id: 'rpc-1',
      rows: [{ id: 't-1', title: 'Book venue', status: 'todo', createdAt: 1763807742779, updatedAt: 1763807742779 }],
    },
    schema: z.custom((frame) => {
      const { type: _type, ...reply } = frame as Record<string, unknown>;
      return replySchemas.select.safeParse(reply).success || errorReplySchema.safeParse(reply).success;
    }),
  },
  agent_data: {
    summary: 'Some of the files read for an `agent_run` (any number of frames per run, each under 1 MB).',
    fields: { run_id: 'from `agent_run`', files: '`[{path, name, content, metadata?}]`, text content' },
    example: {
      type: 'agent_data',
      run_id: 'run-1',
      files: [{ path: '/home/ada/notes/launch.md', name: 'launch.md', content: 'TODO book venue\n', metadata: { size: 16 } }],
    },
    schema: wire('agent_data', agentDataSchema),
  },
  agent_complete: {
    summary: 'Every file of the run was sent.',
    fields: {
      run_id: 'from `agent_run`',
      files_read: 'files sent in `agent_data`',
      errors: 'files or folders that could not be read, and why',
    },
    example: { type: 'agent_complete', run_id: 'run-1', files_read: 1, errors: [] },
    schema: wire('agent_complete', agentCompleteSchema),
  },
  pong: {
    summary: 'The answer to `ping`; without it within `DEVICE_WS_PONG_TIMEOUT_MS` (10 s) the connection is closed (4001).',
    fields: {},
    example: { type: 'pong' },
  },
  ping: {
    summary: "The app's own heartbeat, at any time (before `device_hello` too): answered with `pong`; it never counts as a bad frame.",
    fields: {},
    example: { type: 'ping' },
  },
  tool_approval: {
    summary:
      'Your decision on an `approval_requested`; every surface then gets `approval_resolved`. An already decided request gets `error already_decided`. The endpoint opens only with an access token, so its decisions are those of a signed-in person (an API key, which never decides, is refused at the upgrade).',
    fields: {
      approval_id: 'from `approval_requested`',
      approved: 'boolean',
      arguments: "optional, with `approved: true`: the arguments to run the call with instead of the model's",
      message: "optional, with `approved: false`: a reply the model reads as the tool's result",
    },
    example: { type: 'tool_approval', approval_id: APPROVAL, approved: true },
    schema: wire('tool_approval', toolApprovalSchema),
  },
  chat_cancel: {
    summary: "Stops a running turn: the one of `session_id`, else this device's running turn; the turn ends with `cancelled`.",
    fields: { session_id: 'the session (optional)' },
    example: { type: 'chat_cancel', session_id: SESSION },
  },
} satisfies WsCatalog<WsClientFrames>;

export const wsServerCatalog = {
  tool_call: {
    summary: "Run one operation on the device's local tables; answer with `tool_result` and the same `id`.",
    fields: {
      id: 'correlation id',
      action: '`select get insert update delete vector_upsert vector_search`',
      table: '`tasks projects checkpoints notes taskComments clients`',
      'data / filters / vector / limit': 'per action, camelCase row fields',
    },
    example: { type: 'tool_call', id: 'rpc-1', action: 'select', table: 'tasks', filters: { status: 'todo' }, limit: 50 },
    schema: z.custom((frame) => {
      const { type: _type, ...call } = frame as Record<string, unknown>;
      return toolCallSchema.safeParse(call).success;
    }),
  },
  text_chunk: {
    summary:
      "A piece of the assistant's answer; the pieces concatenate to `final.response`. Sent for this device's own `chat_request`s (to each of its connections, so an app that reconnected still gets its answer), and for every turn on the device after `device_hello {all_turns: true}`.",
    fields: { text: 'the piece', session_id: 'the session' },
    example: { type: 'text_chunk', text: 'You have 2 ', session_id: SESSION },
  },
  final: {
    summary:
      'The whole answer; the turn is over. Like `text_chunk`, only for the turns this device started (unless it said `all_turns: true`): a turn started over HTTP for this device never ends a `chat_request` of its own.',
    fields: { response: 'the answer', session_id: 'the session' },
    example: { type: 'final', response: 'You have 2 todo tasks.', session_id: SESSION },
  },
  ping: { summary: 'Heartbeat every `DEVICE_WS_PING_INTERVAL_MS` (30 s): answer `pong`.', fields: {}, example: { type: 'ping' } },
  pong: { summary: "The answer to the app's own `ping`.", fields: {}, example: { type: 'pong' } },
  agent_run: {
    summary:
      'Run a local agent: read its folders within the bounds, answer with `agent_data` frames, then `agent_complete`. A run waiting for this device starts when it says `device_hello`.',
    fields: {
      run_id: 'the run',
      agent_id: 'the local agent',
      'config.paths / file_extensions': 'what to read',
      'config.prompt_template / data_types': 'how the server extracts (informational)',
      'config.max_files / max_bytes / max_file_bytes': 'bounds the server enforces (Switchboard addition)',
    },
    example: {
      type: 'agent_run',
      run_id: 'run-1',
      agent_id: 'agent-a',
      config: {
        paths: ['/home/ada/notes'],
        file_extensions: ['.md'],
        prompt_template: 'Extract my tasks',
        data_types: ['tasks'],
        max_files: 200,
        max_bytes: 5_000_000,
        max_file_bytes: 1_000_000,
      },
    },
  },
  approval_requested: {
    summary:
      'A dangerous tool call waits for the decision (`tool_approval`, or any other surface) until `expires_at`. Sent to every connected device of the user.',
    fields: {
      approval_id: 'the request',
      session_id: 'the session',
      tool_name: 'e.g. `delete_task`',
      parameters: 'the arguments',
      reason: 'why it needs approval',
      expires_at: 'ISO time',
    },
    example: {
      type: 'approval_requested',
      approval_id: APPROVAL,
      session_id: SESSION,
      tool_name: 'delete_task',
      parameters: { task_id: 't-1' },
      reason: 'delete_task permanently deletes data on your device',
      expires_at: '2026-11-22T10:40:42.779Z',
    },
  },
  approval_resolved: {
    summary: 'The request was decided on some surface (first decision wins) or timed out.',
    fields: { approval_id: 'the request', status: '`approved`, `rejected` or `timeout`' },
    example: { type: 'approval_resolved', approval_id: APPROVAL, status: 'approved' },
  },
  input_requested: {
    summary:
      "An agentflow's form waits for this user's answer (over HTTP: `POST /hitl/inputs/:id/answer`, a signed-in person only) until `expires_at`. Sent to every connected device of each recipient.",
    fields: {
      input_id: 'the form request',
      execution_id: 'the execution that waits',
      flow_id: 'its flow',
      node_id: 'the human_input node',
      owner_id: "the flow's owner, who asks",
      prompt: 'what to answer (may be empty)',
      form: 'a JSON Schema of an object: its properties are the fields',
      decisions: '`[{name, label}]`: the decision buttons',
      expires_at: 'ISO time',
    },
    example: {
      type: 'input_requested',
      input_id: INPUT,
      execution_id: INPUT_REQUESTED.executionId,
      flow_id: INPUT_REQUESTED.flowId,
      node_id: INPUT_REQUESTED.nodeId,
      owner_id: INPUT_REQUESTED.ownerId,
      prompt: INPUT_REQUESTED.prompt,
      form: INPUT_REQUESTED.form,
      decisions: INPUT_REQUESTED.decisions,
      expires_at: INPUT_REQUESTED.expiresAt,
    },
  },
  input_resolved: {
    summary: 'The form was answered on some surface (first answer wins), timed out, or its execution ended.',
    fields: {
      input_id: 'the form request',
      status: '`answered`, `timeout` or `cancelled`',
      answered_by: 'who answered, or `null`',
      decision: 'the decision, or `null`',
    },
    example: { type: 'input_resolved', input_id: INPUT, status: 'answered', answered_by: INPUT_REQUESTED.ownerId, decision: 'approve' },
  },
  cancelled: {
    summary: 'The running turn of the session was stopped; no `final` follows.',
    fields: { session_id: 'the session' },
    example: { type: 'cancelled', session_id: SESSION },
  },
  agent_cancelled: {
    summary:
      'The agent run was cancelled (`POST /agents/runs/:runId/cancel` or `agent_cancel`): stop reading and sending its files; `agent_data` and `agent_complete` for it are no longer used.',
    fields: { run_id: 'from `agent_run`' },
    example: { type: 'agent_cancelled', run_id: 'run-1' },
  },
  tool_cancel: {
    summary:
      'The server stopped waiting for that `tool_call` (its turn was cancelled): stop it if it still runs. No `tool_result` is expected.',
    fields: { id: 'the `tool_call` id' },
    example: { type: 'tool_cancel', id: '5d0c1f9e-2f7b-4d53-9a8e-7c1e0b6f4a21' },
  },
  error: {
    summary:
      'A refused frame (the connection stays; 10 bad frames in a row close it with 1008; `turn_in_progress` is no bad frame), or a failed turn (with `session_id`).',
    fields: {
      code: '`hello_required`, `unknown_type`, `invalid_json`, `invalid_frame`, `invalid_text` (lone surrogate or NUL), `too_large`, `validation_failed`, `unknown_call`, `unknown_run`, `already_decided`, `not_found`, `not_supported`, `turn_in_progress` (a `chat_request` with `multitask: "reject"` while a turn of its session runs); for turns e.g. `llm_unavailable`',
      message: 'readable',
      session_id: 'only for a failed turn',
    },
    example: { type: 'error', code: 'unknown_type', message: 'Unknown frame type "rm_rf"' },
  },
} satisfies WsCatalog<WsServerFrames>;

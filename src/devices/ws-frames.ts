import { MAX_JSON_DEPTH } from '../lib/json-depth';
import type { ApprovalRequested, ApprovalResolved, DeviceServerEvents, InputRequested, InputResolved } from '../schemas/socket-events';
import type { AgentFile, ToolCall } from '../schemas/device-protocol';

/**
 * The plain-WebSocket device protocol of desktop apps: one JSON text frame per message,
 * `{type, ...payload}`, snake_case envelope fields, camelCase row fields. These maps type both the
 * server and the catalog that docs/protocol.md is rendered from.
 */

/** Device → server frames (without `type`). */
export interface WsClientFrames {
  device_hello: {
    device_id: string;
    agent_ids: string[];
    project?: { name: string; root?: string };
    tables?: boolean;
    /** Also the chat frames of turns this connection did not start (a turn started over HTTP for this device). */
    all_turns?: boolean;
  };
  chat_request: {
    message: string;
    context?: Record<string, unknown>;
    session_id?: string;
    config?: { provider: string; model: string };
    agent?: string;
    /** What this message does while a turn of its session runs: `enqueue` (default), `reject`, `interrupt`, `rollback`. */
    multitask?: 'enqueue' | 'reject' | 'interrupt' | 'rollback';
  };
  tool_result: {
    id: string;
    row?: Record<string, unknown> | null;
    rows?: Array<Record<string, unknown>>;
    results?: Array<{ id: string; score: number; content?: string }>;
    deleted?: boolean;
    ok?: boolean;
    error?: string;
  };
  agent_data: { run_id: string; files: AgentFile[] };
  agent_complete: { run_id: string; files_read: number; errors: string[] };
  pong: Record<never, never>;
  /** The device's own heartbeat: answered with `pong`. */
  ping: Record<never, never>;
  tool_approval: { approval_id: string; approved: boolean; arguments?: Record<string, unknown>; message?: string };
  chat_cancel: { session_id?: string };
}

/** Server → device frames (without `type`). */
export interface WsServerFrames {
  tool_call: ToolCall;
  text_chunk: { text: string; session_id: string };
  final: { response: string; session_id: string };
  ping: Record<never, never>;
  /** The answer to the device's `ping`. */
  pong: Record<never, never>;
  agent_run: {
    run_id: string;
    agent_id: string;
    config: {
      paths: string[];
      file_extensions: string[];
      prompt_template: string;
      data_types: string[];
      max_files: number;
      max_bytes: number;
      max_file_bytes: number;
    };
  };
  approval_requested: {
    approval_id: string;
    session_id: string;
    tool_name: string;
    parameters: Record<string, unknown>;
    reason: string;
    expires_at: string;
  };
  approval_resolved: { approval_id: string; status: ApprovalResolved['status'] };
  input_requested: {
    input_id: string;
    execution_id: string;
    flow_id: string;
    node_id: string;
    owner_id: string;
    prompt: string;
    form: Record<string, unknown>;
    decisions: InputRequested['decisions'];
    expires_at: string;
  };
  input_resolved: { input_id: string; status: InputResolved['status']; answered_by: string | null; decision: string | null };
  cancelled: { session_id: string };
  agent_cancelled: { run_id: string };
  /** The server stopped waiting for that `tool_call`: stop it if it still runs. */
  tool_cancel: { id: string };
  /** A refused frame, or a failed turn (`session_id` set). */
  error: { code: string; message: string; session_id?: string };
}

export type WsFrame<M, K extends keyof M> = { type: K } & M[K];
export type WsClientType = keyof WsClientFrames;
export const WS_CLIENT_TYPES = [
  'device_hello',
  'chat_request',
  'tool_result',
  'agent_data',
  'agent_complete',
  'pong',
  'ping',
  'tool_approval',
  'chat_cancel',
] as const satisfies readonly WsClientType[];

/**
 * Envelope field names per client frame: snake_case on the wire → the camelCase the shared
 * handlers (and Socket.IO) use. A field not listed is refused, so a frame is read exactly as the
 * seed writes it.
 */
const CLIENT_FIELDS: Record<Exclude<WsClientType, 'tool_result'>, Record<string, string>> = {
  device_hello: { device_id: 'deviceId', agent_ids: 'agentIds', project: 'project', tables: 'tables', all_turns: 'allTurns' },
  chat_request: {
    message: 'message',
    context: 'context',
    session_id: 'sessionId',
    config: 'config',
    agent: 'agent',
    multitask: 'multitask',
  },
  agent_data: { run_id: 'runId', files: 'files' },
  agent_complete: { run_id: 'runId', files_read: 'filesRead', errors: 'errors' },
  pong: {},
  ping: {},
  tool_approval: { approval_id: 'approvalId', approved: 'approved', arguments: 'arguments', message: 'message' },
  chat_cancel: { session_id: 'sessionId' },
};

/** A client frame's payload in the handlers' camelCase, or the name of the first field it should not have. */
export function camelPayload(
  type: Exclude<WsClientType, 'tool_result'>,
  frame: Record<string, unknown>,
): { payload: Record<string, unknown> } | { unknownField: string } {
  const names = CLIENT_FIELDS[type];
  const payload: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(frame)) {
    if (key === 'type') continue;
    const name = names[key];
    if (!name) return { unknownField: key };
    payload[name] = value;
  }
  return { payload };
}

type Message<E extends keyof DeviceServerEvents> = Parameters<DeviceServerEvents[E]>[0];

/** A server → device message as the plain-WebSocket frame of the same meaning; null when it has none. */
export function toWsFrame(event: string, payload: unknown): Record<string, unknown> | null {
  switch (event) {
    case 'text_chunk': {
      const p = payload as Message<'text_chunk'>;
      return { type: 'text_chunk', text: p.text, session_id: p.sessionId };
    }
    case 'final': {
      const p = payload as Message<'final'>;
      return { type: 'final', response: p.response, session_id: p.sessionId };
    }
    case 'chat_error': {
      const p = payload as Message<'chat_error'>;
      return { type: 'error', code: p.code, message: p.message, session_id: p.sessionId };
    }
    case 'cancelled':
      return { type: 'cancelled', session_id: (payload as Message<'cancelled'>).sessionId };
    case 'agent_cancelled':
      return { type: 'agent_cancelled', run_id: (payload as Message<'agent_cancelled'>).runId };
    case 'tool_cancel':
      return { type: 'tool_cancel', id: (payload as Message<'tool_cancel'>).id };
    case 'agent_run': {
      const p = payload as Message<'agent_run'>;
      const c = p.config;
      return {
        type: 'agent_run',
        run_id: p.runId,
        agent_id: p.agentId,
        config: {
          paths: c.paths,
          file_extensions: c.fileExtensions,
          prompt_template: c.promptTemplate,
          data_types: c.dataTypes,
          max_files: c.maxFiles,
          max_bytes: c.maxBytes,
          max_file_bytes: c.maxFileBytes,
        },
      };
    }
    case 'approval_requested': {
      const p = payload as ApprovalRequested;
      return {
        type: 'approval_requested',
        approval_id: p.approvalId,
        session_id: p.sessionId,
        tool_name: p.toolName,
        parameters: p.parameters,
        reason: p.reason,
        expires_at: p.expiresAt,
      };
    }
    case 'approval_resolved': {
      const p = payload as ApprovalResolved;
      return { type: 'approval_resolved', approval_id: p.approvalId, status: p.status };
    }
    case 'input_requested': {
      const p = payload as InputRequested;
      return {
        type: 'input_requested',
        input_id: p.inputId,
        execution_id: p.executionId,
        flow_id: p.flowId,
        node_id: p.nodeId,
        owner_id: p.ownerId,
        prompt: p.prompt,
        form: p.form,
        decisions: p.decisions,
        expires_at: p.expiresAt,
      };
    }
    case 'input_resolved': {
      const p = payload as InputResolved;
      return { type: 'input_resolved', input_id: p.inputId, status: p.status, answered_by: p.answeredBy, decision: p.decision };
    }
    default:
      return null;
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when every string in the value (keys too) is well-formed UTF-16 without NUL characters. */
export function cleanText(value: unknown, depth = 0): boolean {
  if (depth > MAX_JSON_DEPTH) return false;
  if (typeof value === 'string') return !LONE_SURROGATE.test(value) && !value.includes('\u0000');
  if (Array.isArray(value)) return value.every((item) => cleanText(item, depth + 1));
  if (value && typeof value === 'object')
    return Object.entries(value).every(([key, item]) => cleanText(key, depth + 1) && cleanText(item, depth + 1));
  return true;
}

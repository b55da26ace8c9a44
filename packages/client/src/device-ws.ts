import type { AgentFile, AgentRunRequest, ToolReply } from './protocol';
import type { DeviceConnectOptions, ReadAgentFiles } from './device-types';
import { deviceStore } from './device-store';
import type { TokenSource } from './sockets';

/** Server → device frames the application may listen to (snake_case, as on the wire). */
export type DeviceWsEvent = 'text_chunk' | 'final' | 'approval_requested' | 'approval_resolved' | 'cancelled' | 'agent_cancelled' | 'error';
export type DeviceWsFrame = { type: string } & Record<string, unknown>;

/** A device connected over the plain WebSocket protocol (`transport: 'ws'`). */
export interface DeviceWsConnection {
  transport: 'ws';
  deviceId: string;
  /** Listens to one kind of server frame; returns the unsubscribe function. */
  on(event: DeviceWsEvent, listener: (frame: DeviceWsFrame) => void): () => void;
  /** Says `device_hello` again (done on every connection already). */
  hello(): void;
  /** `chat_request`: the answer streams back as `text_chunk` frames, then `final` (or `error`). */
  chat(payload: {
    message: string;
    context?: Record<string, unknown>;
    session_id?: string;
    config?: { provider: string; model: string };
    agent?: string;
    multitask?: 'enqueue' | 'reject' | 'interrupt' | 'rollback';
  }): void;
  /**
   * `tool_approval`; every surface then gets `approval_resolved` (a refusal arrives as `error`).
   * The endpoint opens with an access token only, so the decision is a signed-in person's.
   */
  decide(approvalId: string, approved: boolean): void;
  /** `chat_cancel`: stops the session's running turn (without one: this device's); it ends with `cancelled`, a refusal arrives as `error`. */
  cancelChat(sessionId?: string): void;
  close(): void;
}

const currentToken = (source: TokenSource) => Promise.resolve(typeof source === 'function' ? source() : source);
const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The platform's WebSocket (browsers, Node 22+), else the `ws` package (Node 20). */
async function webSocketClass(): Promise<typeof WebSocket> {
  if (typeof globalThis.WebSocket === 'function') return globalThis.WebSocket;
  return (await import('ws')).WebSocket as unknown as typeof WebSocket;
}

/**
 * `connectDevice({transport: 'ws'})`: the plain-WebSocket device protocol at `/api/v1/ws/device?token=`. Says
 * `device_hello` on every connection, answers `ping` and `tool_call` (validated, answered from
 * `store`), serves `agent_run` with `readAgentFiles`, and reconnects after a drop unless
 * `reconnection: false` (not after a replacement by a newer connection, code 4000). Resolves once
 * the first connection is open and the hello is sent.
 */
export async function connectDeviceWs(options: DeviceConnectOptions): Promise<DeviceWsConnection> {
  const {
    agentFileSchema,
    agentRunSchema,
    CODE_ACTIONS,
    describeIssues,
    errorReplySchema,
    IdempotentReplies,
    replySchemas,
    toolCallSchema,
  } = await import('./protocol');
  const store = deviceStore(options.store, options.project, CODE_ACTIONS);
  const Socket = await webSocketClass();
  // A write repeated with the same idempotency key (the server re-ran a turn) is not run twice.
  const writes = new IdempotentReplies();
  const listeners = new Map<string, Set<(frame: DeviceWsFrame) => void>>();
  const runs = new Map<string, AbortController>();
  let ws: WebSocket | undefined;
  let closedByUs = false;
  let attempt = 0;

  const send = (frame: object) => ws?.readyState === 1 && ws.send(JSON.stringify(frame));
  const hello = () =>
    send({
      type: 'device_hello',
      device_id: options.deviceId,
      agent_ids: options.agentIds ?? [],
      ...(options.project ? { project: options.project.project } : {}),
      ...(options.project && !options.store ? { tables: false } : {}),
      ...(options.allTurns ? { all_turns: true } : {}),
    });

  async function answer(frame: DeviceWsFrame): Promise<void> {
    const { type: _type, ...payload } = frame;
    const parsed = toolCallSchema.safeParse(payload);
    let reply: ToolReply;
    if (!parsed.success)
      reply = { id: typeof payload.id === 'string' ? payload.id : '', error: `invalid tool_call: ${describeIssues(parsed.error)}` };
    else if (writes.replay(parsed.data)) reply = writes.replay(parsed.data) as ToolReply;
    else {
      try {
        reply = await store.execute(parsed.data);
        const schema = 'error' in (reply ?? {}) ? errorReplySchema : replySchemas[parsed.data.action];
        const checked = schema.safeParse(reply);
        if (!checked.success)
          reply = { id: parsed.data.id, error: `the device store answered in the wrong shape: ${describeIssues(checked.error)}` };
      } catch (error) {
        reply = { id: parsed.data.id, error: errorMessage(error) };
      }
      writes.remember(parsed.data, reply);
      options.onCall?.(parsed.data, reply);
    }
    send({ type: 'tool_result', ...reply });
  }

  async function runAgent(frame: DeviceWsFrame): Promise<void> {
    const config = (frame.config ?? {}) as Record<string, unknown>;
    // The handlers and schemas speak camelCase: convert the seed's snake_case run once.
    const request = agentRunSchema.safeParse({
      runId: frame.run_id,
      agentId: frame.agent_id,
      config: {
        paths: config.paths,
        fileExtensions: config.file_extensions,
        promptTemplate: config.prompt_template,
        dataTypes: config.data_types,
        maxFiles: config.max_files,
        maxBytes: config.max_bytes,
        maxFileBytes: config.max_file_bytes,
      },
    });
    const runId = typeof frame.run_id === 'string' ? frame.run_id : '';
    if (!runId) return;
    const controller = new AbortController();
    runs.get(runId)?.abort(new Error('replaced by a new agent_run'));
    runs.set(runId, controller);
    const errors: string[] = [];
    let filesRead = 0;
    try {
      if (!request.success) errors.push(`invalid agent_run: ${describeIssues(request.error)}`);
      else if (!options.readAgentFiles) errors.push('this device cannot read files (no readAgentFiles)');
      else filesRead = await sendFiles(request.data, options.readAgentFiles, controller.signal, errors);
    } catch (error) {
      errors.push(errorMessage(error));
    }
    if (!controller.signal.aborted)
      send({ type: 'agent_complete', run_id: runId, files_read: filesRead, errors: errors.slice(0, 1_000).map((e) => e.slice(0, 2_000)) });
    if (runs.get(runId) === controller) runs.delete(runId);
  }

  /** Frames of at most `frameFiles` files and about `frameBytes` bytes, within the run's bounds. */
  async function sendFiles(run: AgentRunRequest, read: ReadAgentFiles, signal: AbortSignal, errors: string[]): Promise<number> {
    const { maxFiles, maxBytes, maxFileBytes } = run.config;
    const frameFiles = Math.max(1, Math.min(options.frameFiles ?? 50, 1_000));
    const frameBytes = Math.min(options.frameBytes ?? 256 * 1024, 900_000);
    let batch: AgentFile[] = [];
    let batchBytes = 0;
    let total = 0;
    let count = 0;
    const flush = () => {
      if (batch.length) send({ type: 'agent_data', run_id: run.runId, files: batch });
      batch = [];
      batchBytes = 0;
    };
    for await (const item of await read(run.config, { runId: run.runId, agentId: run.agentId, signal })) {
      if (signal.aborted) return count;
      if ('error' in item) {
        errors.push(item.path ? `${item.path}: ${item.error}` : item.error);
        continue;
      }
      const file = agentFileSchema.safeParse(item);
      if (!file.success) {
        errors.push(`${(item as { path?: string }).path ?? 'a file'}: ${describeIssues(file.error)}`);
        continue;
      }
      const size = new TextEncoder().encode(file.data.content).length;
      if (size > maxFileBytes) {
        errors.push(`${file.data.path}: ${size} bytes is over the limit of ${maxFileBytes} per file`);
        continue;
      }
      if (count >= maxFiles || total + size > maxBytes) {
        errors.push(`stopped at the run's limit (${maxFiles} files, ${maxBytes} bytes)`);
        break;
      }
      if (batch.length >= frameFiles || (batch.length && batchBytes + size > frameBytes)) flush();
      batch.push(file.data);
      batchBytes += size;
      total += size;
      count += 1;
    }
    if (!signal.aborted) flush();
    return count;
  }

  function onFrame(raw: unknown): void {
    let frame: DeviceWsFrame;
    try {
      frame = JSON.parse(String(raw)) as DeviceWsFrame;
    } catch {
      return;
    }
    if (frame.type === 'ping') send({ type: 'pong' });
    else if (frame.type === 'tool_call') void answer(frame);
    else if (frame.type === 'agent_run') void runAgent(frame);
    else if (frame.type === 'agent_cancelled' && typeof frame.run_id === 'string')
      runs.get(frame.run_id)?.abort(new Error('agent run cancelled'));
    else if (frame.type === 'tool_cancel' && typeof frame.id === 'string') options.project?.cancel?.(frame.id);
    listeners.get(frame.type)?.forEach((listener) => listener(frame));
  }

  async function open(): Promise<void> {
    const token = await currentToken(options.token);
    const url = `${options.url.replace(/\/+$/, '').replace(/^http/, 'ws')}/api/v1/ws/device?token=${encodeURIComponent(token ?? '')}`;
    const socket = new Socket(url);
    ws = socket;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => (socket.close(), reject(new Error('the device websocket did not open in time'))),
        options.timeoutMs ?? 10_000,
      );
      socket.onopen = () => (clearTimeout(timer), resolve());
      // A refused upgrade (401, 429) surfaces as an error before open; the status is not exposed to browsers.
      socket.onerror = () => (
        clearTimeout(timer),
        reject(new Error('the device websocket was refused (bad token, too many sockets, or unreachable)'))
      );
    });
    attempt = 0;
    socket.onmessage = (event) => onFrame(event.data);
    socket.onclose = (event) => {
      for (const controller of runs.values()) controller.abort(new Error('disconnected'));
      if (closedByUs || options.reconnection === false || event.code === 4000) return;
      const delay = Math.min(1_000 * 2 ** attempt++, 30_000);
      setTimeout(() => void open().catch(() => void socket.onclose?.(event)), delay);
    };
    hello();
  }

  await open();
  return {
    transport: 'ws',
    deviceId: options.deviceId,
    on(event, listener) {
      const set = listeners.get(event) ?? new Set();
      listeners.set(event, set.add(listener));
      return () => void set.delete(listener);
    },
    hello,
    chat: (payload) => void send({ type: 'chat_request', ...payload }),
    decide: (approvalId, approved) => void send({ type: 'tool_approval', approval_id: approvalId, approved }),
    cancelChat: (sessionId) => void send(sessionId ? { type: 'chat_cancel', session_id: sessionId } : { type: 'chat_cancel' }),
    close() {
      closedByUs = true;
      ws?.close();
    },
  };
}

import type { AgentFile, AgentFrameAck, AgentRunRequest, DeviceHelloAck, ToolCall, ToolReply } from './protocol';
import type { ChatCancelAck, ChatRequestAck, ChatRequestPayload, ToolApprovalAck } from './events';
import type { DeviceWsConnection } from './device-ws';
import type { AgentRunOutcome, DeviceConnectOptions, ReadAgentFiles } from './device-types';
import { connected, createSocket, type DeviceSocket } from './sockets';
import { deviceStore, type TableStore } from './device-store';

export { deviceStore, type ProjectServer, type TableStore } from './device-store';
export type { AgentReadItem, AgentRunConfig, AgentRunOutcome, DeviceConnectOptions, DeviceTestHooks, ReadAgentFiles } from './device-types';

type Awaitable<T> = T | Promise<T>;
type Call<A extends ToolCall['action']> = Extract<ToolCall, { action: A }>;

/** Per-action handlers for `tableStore()`; a thrown error becomes `{id, error: message}`. */
export interface TableHandlers {
  select(
    table: Call<'select'>['table'],
    filters: Record<string, string | number | boolean>,
    limit?: number,
  ): Awaitable<Array<Record<string, unknown>>>;
  get(table: Call<'get'>['table'], id: string): Awaitable<(Record<string, unknown> & { id: string }) | null>;
  insert(table: Call<'insert'>['table'], data: Record<string, unknown>): Awaitable<Record<string, unknown> & { id: string }>;
  /** `null` when there is no such row. */
  update(
    table: Call<'update'>['table'],
    id: string,
    updates: Record<string, unknown>,
  ): Awaitable<(Record<string, unknown> & { id: string }) | null>;
  delete(table: Call<'delete'>['table'], id: string): Awaitable<boolean>;
  vectorUpsert?(call: Omit<Call<'vector_upsert'>, 'id' | 'action'>): Awaitable<void>;
  vectorSearch?(call: Omit<Call<'vector_search'>, 'id' | 'action'>): Awaitable<Array<{ id: string; score: number; content?: string }>>;
}

/** A `TableStore` from per-action functions. */
export function tableStore(handlers: TableHandlers): TableStore {
  return {
    async execute(call) {
      try {
        switch (call.action) {
          case 'select':
            return { id: call.id, rows: await handlers.select(call.table, call.filters ?? {}, call.limit) };
          case 'get':
            return { id: call.id, row: await handlers.get(call.table, call.data.id) };
          case 'insert':
            return { id: call.id, row: await handlers.insert(call.table, call.data) };
          case 'update': {
            const row = await handlers.update(call.table, call.data.id, call.data.updates);
            return row ? { id: call.id, row } : { id: call.id, error: `${call.table} ${call.data.id} not found` };
          }
          case 'delete':
            return { id: call.id, deleted: await handlers.delete(call.table, call.data.id) };
          case 'vector_upsert': {
            if (!handlers.vectorUpsert) return { id: call.id, error: 'this device has no vector index' };
            const { id: _id, action: _action, ...rest } = call;
            await handlers.vectorUpsert(rest);
            return { id: call.id, ok: true };
          }
          case 'vector_search': {
            if (!handlers.vectorSearch) return { id: call.id, error: 'this device has no vector index' };
            const { id: _id, action: _action, ...rest } = call;
            return { id: call.id, results: await handlers.vectorSearch(rest) };
          }
          default:
            return { id: call.id, error: `this device serves no project (${call.action})` };
        }
      } catch (error) {
        return { id: call.id, error: errorMessage(error) };
      }
    },
  };
}

/** A connected device. */
export interface DeviceConnection {
  socket: DeviceSocket;
  deviceId: string;
  /** Says `device_hello` again (done on every connection already). */
  hello(): Promise<DeviceHelloAck>;
  /** Asks the assistant; its tools run on this device. Answers stream back as `text_chunk` / `final`. */
  chat(payload: ChatRequestPayload): Promise<ChatRequestAck>;
  /** Stops the running turn of `sessionId`, or this device's running turn; it then ends with `cancelled`. */
  cancelChat(sessionId?: string): Promise<ChatCancelAck>;
  /**
   * Decides an `approval_requested`. Only a connection opened with an access token (a signed-in
   * person) decides; one opened with an API key is answered `{error: {code: 'person_required'}}`.
   */
  decide(approvalId: string, approved: boolean): Promise<ToolApprovalAck>;
  close(): void;
}

/**
 * Connects a device to `/device` (`auth: {token, deviceId}`), says `device_hello` on every
 * connection, answers `tool_call`s from `store` after validating them with the protocol schemas,
 * and serves `agent_run`s with `readAgentFiles`. Resolves once the first hello is acknowledged.
 */
export async function connectDevice(options: DeviceConnectOptions & { transport: 'ws' }): Promise<DeviceWsConnection>;
export async function connectDevice(options: DeviceConnectOptions & { transport?: 'socket.io' }): Promise<DeviceConnection>;
export async function connectDevice(options: DeviceConnectOptions): Promise<DeviceConnection | DeviceWsConnection> {
  if (options.transport === 'ws') return (await import('./device-ws')).connectDeviceWs(options);
  // The protocol schemas (and zod) load with the first device, not with the HTTP client.
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
  const socket = await createSocket<DeviceSocket>(options, '/device', { deviceId: options.deviceId });
  const ackTimeoutMs = options.ackTimeoutMs ?? 30_000;
  const runs = new Map<string, AbortController>();
  let firstHello: Promise<DeviceHelloAck> | undefined;

  const hello = () =>
    socket.timeout(ackTimeoutMs).emitWithAck('device_hello', {
      deviceId: options.deviceId,
      agentIds: options.agentIds ?? [],
      ...(options.project ? { project: options.project.project } : {}),
      ...(options.project && !options.store ? { tables: false } : {}),
      ...(options.allTurns ? { allTurns: true } : {}),
    });
  socket.on('connect', () => {
    const pending = hello();
    firstHello ??= pending;
    // eslint-disable-next-line no-restricted-syntax -- the first hello is awaited below; a later one that fails is sent again on the next connect
    pending.catch(() => undefined);
  });
  socket.on('disconnect', () => {
    for (const controller of runs.values()) controller.abort(new Error('disconnected'));
  });
  const writes = new IdempotentReplies();
  const hooks = options.testHooks ?? {};
  socket.on(
    'tool_call',
    (payload, ack) => void answer(payload).then((reply) => reply !== undefined && typeof ack === 'function' && ack(reply as ToolReply)),
  );
  socket.on('agent_run', (payload) => void runAgent(payload));
  // A cancelled run stops reading its files at once, and sends no agent_complete.
  socket.on('agent_cancelled', (payload) => runs.get(payload?.runId)?.abort(new Error('agent run cancelled')));
  socket.on('tool_cancel', (payload) => {
    if (typeof payload?.id === 'string') options.project?.cancel?.(payload.id);
  });

  async function answer(payload: unknown): Promise<unknown> {
    const parsed = toolCallSchema.safeParse(payload);
    if (!parsed.success) {
      const id = (payload as { id?: unknown } | null)?.id;
      const invalid = `invalid tool_call: ${describeIssues(parsed.error)}`;
      hooks.onReceive?.({ payload, repeated: false, invalid });
      return { id: typeof id === 'string' ? id : '', error: invalid };
    }
    const call = parsed.data;
    // A write repeated with the same idempotency key (the server re-ran a turn) is not run twice.
    const repeated = writes.replay(call);
    hooks.onReceive?.({ payload, call, repeated: Boolean(repeated) });
    if (repeated) return repeated;
    const run = async (): Promise<ToolReply> => {
      try {
        const reply = await store.execute(call);
        const schema = 'error' in (reply ?? {}) ? errorReplySchema : replySchemas[call.action];
        const checked = schema.safeParse(reply);
        return checked.success
          ? reply
          : { id: call.id, error: `the device store answered in the wrong shape: ${describeIssues(checked.error)}` };
      } catch (error) {
        return { id: call.id, error: errorMessage(error) };
      }
    };
    let reply: unknown;
    try {
      reply = hooks.respond ? await hooks.respond(call, run) : await run();
    } catch (error) {
      reply = { id: call.id, error: errorMessage(error) };
    }
    writes.remember(call, reply);
    options.onCall?.(call, reply as ToolReply);
    return reply;
  }

  async function runAgent(payload: unknown): Promise<void> {
    const parsed = agentRunSchema.safeParse(payload);
    const runId = parsed.success ? parsed.data.runId : (payload as { runId?: unknown } | null)?.runId;
    if (typeof runId !== 'string' || !runId) return;
    const controller = new AbortController();
    runs.get(runId)?.abort(new Error('replaced by a new agent_run'));
    runs.set(runId, controller);
    const outcome: AgentRunOutcome = {
      runId,
      agentId: parsed.success ? parsed.data.agentId : '',
      filesRead: 0,
      errors: [],
      frames: 0,
      aborted: false,
    };
    try {
      if (!parsed.success) outcome.errors.push(`invalid agent_run: ${describeIssues(parsed.error)}`);
      else if ((hooks.onAgentRunStart?.(parsed.data), !options.readAgentFiles))
        outcome.errors.push('this device cannot read files (no readAgentFiles)');
      else await sendFiles(parsed.data, options.readAgentFiles, controller.signal, outcome);
    } catch (error) {
      outcome.errors.push(errorMessage(error));
    }
    if (controller.signal.aborted) outcome.aborted = true;
    else {
      const ack = (await socket
        .timeout(ackTimeoutMs)
        .emitWithAck('agent_complete', {
          runId,
          filesRead: outcome.filesRead,
          errors: outcome.errors.slice(0, 1_000).map((e) => e.slice(0, 2_000)),
        })
        .catch((error: unknown) => ({ ok: false, error: { code: 'no_ack', message: errorMessage(error) } }))) as AgentFrameAck;
      if (!ack.ok) outcome.errors.push(`agent_complete refused: ${ack.error.code}`);
    }
    if (runs.get(runId) === controller) runs.delete(runId);
    options.onAgentRun?.(outcome);
  }

  /**
   * Streams the files in frames within the run's bounds; the ack of each frame paces the next. A
   * refused frame ends the run's sending, reported as `agent_data refused (<code>): N file(s) not sent`.
   */
  async function sendFiles(run: AgentRunRequest, read: ReadAgentFiles, signal: AbortSignal, outcome: AgentRunOutcome): Promise<void> {
    const { maxFiles, maxBytes, maxFileBytes } = run.config;
    const limits = hooks.enforceRunLimits !== false;
    const frameFiles = Math.max(1, Math.min(options.frameFiles ?? 50, 1_000));
    const frameBytes = options.frameBytes ?? 256 * 1024;
    let batch: AgentFile[] = [];
    let batchBytes = 0;
    let totalBytes = 0;
    let seen = 0;
    const source = await read(run.config, { runId: run.runId, agentId: run.agentId, signal });
    /** Sends the batch; false when the server refused it (then nothing more is sent). `unreadFrom`: the index of the first item not batched. */
    const flush = async (unreadFrom: number): Promise<boolean> => {
      if (!batch.length) return true;
      const files = batch;
      batch = [];
      batchBytes = 0;
      const ack = (await socket.timeout(ackTimeoutMs).emitWithAck('agent_data', { runId: run.runId, files })) as AgentFrameAck;
      outcome.frames += 1;
      if (ack.ok) return true;
      outcome.filesRead -= files.length;
      // Files still unread are counted when the reader gave a list; an iterator is just not read on.
      const unread = Array.isArray(source) ? source.slice(unreadFrom).filter((item) => !('error' in item)).length : 0;
      const more = Array.isArray(source) ? '' : ', reading stopped';
      outcome.errors.push(
        `agent_data refused (${ack.error.code}): ${files.length + unread} file(s) not sent${more}${ack.error.message ? ` (${ack.error.message})` : ''}`,
      );
      return false;
    };
    for await (const item of source) {
      seen += 1;
      if (signal.aborted) return;
      if ('error' in item) {
        outcome.errors.push(item.path ? `${item.path}: ${item.error}` : item.error);
        continue;
      }
      const file = agentFileSchema.safeParse(item);
      if (!file.success) {
        outcome.errors.push(`${(item as { path?: string }).path ?? 'a file'}: ${describeIssues(file.error)}`);
        continue;
      }
      const size = new TextEncoder().encode(file.data.content).length;
      if (limits && size > maxFileBytes) {
        outcome.errors.push(`${file.data.path}: ${size} bytes is over the limit of ${maxFileBytes} per file`);
        continue;
      }
      if (limits && (outcome.filesRead >= maxFiles || totalBytes + size > maxBytes)) {
        outcome.errors.push(`stopped at the run's limit (${maxFiles} files, ${maxBytes} bytes)`);
        break;
      }
      if ((batch.length >= frameFiles || (batch.length && batchBytes + size > frameBytes)) && !(await flush(seen - 1))) return;
      batch.push(file.data);
      batchBytes += size;
      totalBytes += size;
      outcome.filesRead += 1;
    }
    if (!signal.aborted) await flush(seen);
  }

  await connected(socket, options.timeoutMs ?? 10_000);
  const ack = await firstHello!;
  if (!ack.ok) {
    socket.close();
    throw new Error(`device_hello refused: ${ack.error.code}${ack.error.message ? ` (${ack.error.message})` : ''}`);
  }
  const connection: DeviceConnection = {
    socket,
    deviceId: options.deviceId,
    hello,
    chat: (payload) => socket.timeout(ackTimeoutMs).emitWithAck('chat_request', payload),
    cancelChat: (sessionId) =>
      socket.timeout(ackTimeoutMs).emitWithAck('chat_cancel', sessionId ? { sessionId } : {}) as Promise<ChatCancelAck>,
    decide: (approvalId, approved) => socket.timeout(ackTimeoutMs).emitWithAck('tool_approval', { approvalId, approved }),
    close: () => socket.close(),
  };
  return connection;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

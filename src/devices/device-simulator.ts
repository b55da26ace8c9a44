import { io, type Socket } from 'socket.io-client';
import type { DeviceClientEvents, DeviceServerEvents } from '../realtime/events';
import { MemoryStore, type StoreSeed } from './memory-store';
import { agentRunSchema, describeIssues, IdempotentReplies, toolCallSchema, type AgentFile, type AgentFrameAck, type AgentRunRequest, type DeviceHelloAck, type ToolCall } from './protocol';

export type DeviceClient = Socket<DeviceServerEvents, DeviceClientEvents>;

/**
 * Produces the ack for a call. Returning `undefined` sends no ack at all (a device that hangs);
 * anything else is sent as-is, so tests can answer with a wrong id or shape.
 */
export type Responder = (call: ToolCall, store: MemoryStore) => unknown | Promise<unknown>;

/** Answers from the store, like the desktop app. */
export const answerFromStore: Responder = (call, store) => store.execute(call);

export interface DeviceSimulatorOptions {
  /** Switchboard base URL, e.g. http://127.0.0.1:3000. */
  url: string;
  accessToken: string;
  deviceId: string;
  agentIds?: string[];
  /** A store to answer from (default: a new one with `seed`). */
  store?: MemoryStore;
  seed?: StoreSeed;
  /** Reconnect after a dropped connection (default true; tests turn it off). */
  reconnection?: boolean;
  connectTimeoutMs?: number;
  /** Told of every call and the ack sent (`undefined` = none). */
  onCall?: (call: ToolCall, reply: unknown) => void;
  /**
   * Answers `agent_run`: the files of the agent's folders (errors are reported in
   * `agent_complete`). Without it the device ignores agent runs, like an app without agents.
   */
  readAgentFiles?: (request: AgentRunRequest) => Promise<{ files: AgentFile[]; errors?: string[] }>;
  /** Files per `agent_data` frame (default 20). */
  agentFilesPerFrame?: number;
}

/**
 * A device in software: connects to `/device` with a token and a device id, says `device_hello`
 * on every (re)connection, and answers `tool_call`s from an in-memory copy of the desktop app's
 * tables. Used by tests, by `examples/device-simulator.ts`, and usable in a browser.
 */
export class DeviceSimulator {
  /** Every valid call received, in order. */
  readonly calls: ToolCall[] = [];
  /** Payloads that failed validation (answered with `{id, error}`). */
  readonly invalidCalls: unknown[] = [];
  /** Every valid `agent_run` received, in order. */
  readonly agentRuns: AgentRunRequest[] = [];
  /** How calls are answered; replace it to hang or to send malformed acks. */
  responder: Responder = answerFromStore;
  /** Writes answered from memory because their idempotency key was seen before (0078). */
  readonly repeatedCalls: ToolCall[] = [];
  private readonly writes = new IdempotentReplies();
  readonly store: MemoryStore;
  private readonly callWaiters = new Set<() => void>();
  private lastHello?: Promise<DeviceHelloAck>;

  private constructor(
    readonly socket: DeviceClient,
    private readonly options: DeviceSimulatorOptions,
  ) {
    this.store = options.store ?? new MemoryStore(options.seed);
    socket.on('tool_call', (payload, ack) => void this.answer(payload, ack));
    socket.on('agent_run', (payload) => void this.runAgent(payload).catch(() => undefined));
    socket.on('connect', () => void this.hello().catch(() => undefined));
  }

  /** Connects and waits for the server to acknowledge `device_hello`. Rejects with the server's `connect_error` message. */
  static async connect(options: DeviceSimulatorOptions): Promise<DeviceSimulator> {
    const socket: DeviceClient = io(`${options.url.replace(/\/$/, '')}/device`, {
      auth: { token: options.accessToken, deviceId: options.deviceId },
      transports: ['websocket'],
      reconnection: options.reconnection ?? true,
      forceNew: true,
      autoConnect: false,
    });
    const simulator = new DeviceSimulator(socket, options);
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`device did not connect within ${timeoutMs} ms`)), timeoutMs);
      const fail = (error: Error) => (clearTimeout(timer), socket.off('connect', ok), socket.close(), reject(error));
      const ok = () => (clearTimeout(timer), socket.off('connect_error', fail), resolve());
      socket.once('connect', ok);
      socket.once('connect_error', fail);
      socket.connect();
    });
    const ack = await simulator.lastHello!;
    if (!ack.ok) {
      socket.close();
      throw new Error(`device_hello refused: ${ack.error.code}`);
    }
    return simulator;
  }

  get deviceId(): string {
    return this.options.deviceId;
  }

  /** Says `device_hello` (done on every connect already) and returns the server's ack. */
  hello(timeoutMs = 10_000): Promise<DeviceHelloAck> {
    this.lastHello = this.socket.timeout(timeoutMs).emitWithAck('device_hello', { deviceId: this.options.deviceId, agentIds: this.options.agentIds ?? [] });
    return this.lastHello;
  }

  /** Resolves with the first received call (past or future) that satisfies `predicate`. */
  waitForCall(predicate: (call: ToolCall) => boolean = () => true, timeoutMs = 10_000): Promise<ToolCall> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.calls.find(predicate);
        if (!found) return false;
        clearTimeout(timer);
        this.callWaiters.delete(check);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => (this.callWaiters.delete(check), reject(new Error(`no matching tool_call within ${timeoutMs} ms`))), timeoutMs);
      if (!check()) this.callWaiters.add(check);
    });
  }

  /** Closes the connection (the server sees a disconnect at once). */
  close(): void {
    this.socket.close();
  }

  /** Reads the files of an `agent_run` and sends them in `agent_data` frames, then `agent_complete`. */
  private async runAgent(payload: unknown): Promise<void> {
    const parsed = agentRunSchema.safeParse(payload);
    if (!parsed.success || !this.options.readAgentFiles) return;
    const request = parsed.data;
    this.agentRuns.push(request);
    let result: { files: AgentFile[]; errors?: string[] };
    try {
      result = await this.options.readAgentFiles(request);
    } catch (error) {
      result = { files: [], errors: [error instanceof Error ? error.message : String(error)] };
    }
    const perFrame = this.options.agentFilesPerFrame ?? 20;
    const errors = [...(result.errors ?? [])];
    let sent = 0;
    for (let i = 0; i < result.files.length; i += perFrame) {
      const ack: AgentFrameAck = await this.socket.timeout(10_000).emitWithAck('agent_data', { runId: request.runId, files: result.files.slice(i, i + perFrame) });
      if (!ack.ok) {
        // The server refused the frame (e.g. too_large): stop sending and say so.
        errors.push(`agent_data refused (${ack.error.code}): ${result.files.length - sent} file(s) not sent`);
        break;
      }
      sent += Math.min(perFrame, result.files.length - i);
    }
    await this.socket.timeout(10_000).emitWithAck('agent_complete', { runId: request.runId, filesRead: sent, errors });
  }

  private async answer(payload: unknown, ack: (reply: unknown) => void): Promise<void> {
    const parsed = toolCallSchema.safeParse(payload);
    if (!parsed.success) {
      this.invalidCalls.push(payload);
      const id = (payload as { id?: unknown } | null)?.id;
      return ack({ id: typeof id === 'string' ? id : '', error: `invalid tool_call: ${describeIssues(parsed.error)}` });
    }
    const call = parsed.data;
    this.calls.push(call);
    this.callWaiters.forEach((check) => check());
    // A write repeated with the same idempotency key (a re-run turn) is answered from memory.
    const repeated = this.writes.replay(call);
    if (repeated) {
      this.repeatedCalls.push(call);
      return ack(repeated);
    }
    let reply: unknown;
    try {
      reply = await this.responder(call, this.store);
    } catch (error) {
      reply = { id: call.id, error: error instanceof Error ? error.message : String(error) };
    }
    this.writes.remember(call, reply);
    this.options.onCall?.(call, reply);
    if (reply !== undefined) ack(reply);
  }
}

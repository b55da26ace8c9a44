import { connectDevice, type AgentReadItem, type DeviceConnection } from '../device';
import type { AgentFile, AgentRunRequest, DeviceHelloAck, ToolCall } from '../protocol';
import type { DeviceSocket } from '../sockets';
import { MemoryStore, type StoreSeed } from './memory-store';

export type DeviceClient = DeviceSocket;

/**
 * Produces the ack for a call. Returning `undefined` sends no ack at all (a device that hangs);
 * anything else is sent as-is, so tests can answer with a wrong id or shape.
 */
export type Responder = (call: ToolCall, store: MemoryStore) => unknown; // a reply, or a promise of one

/** Answers from the store, like the desktop app (through the SDK's checked path). */
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
  /** Told of every call and the ack sent (`undefined` = none). Repeated writes answered from memory are not told. */
  onCall?: (call: ToolCall, reply: unknown) => void;
  /**
   * Answers `agent_run`: the files of the agent's folders (errors are reported in
   * `agent_complete`). Without it a run completes at once with an error, as with the SDK.
   */
  readAgentFiles?: (request: AgentRunRequest) => Promise<{ files: AgentFile[]; errors?: string[] }>;
  /** Files per `agent_data` frame (default 20). The run's limits are NOT enforced here: the server's are under test. */
  agentFilesPerFrame?: number;
}

/**
 * A device in software for tests and demos (`@switchboard/client/testing`). It is the SDK's own
 * device helper, `connectDevice`, answering from an in-memory copy of the desktop app's tables
 * ({@link MemoryStore}): the same hello on every (re)connection, tool_call validation, acks and
 * idempotent replies. On top it records what it received (`calls`, `invalidCalls`,
 * `repeatedCalls`, `agentRuns`) and lets a test replace the `responder` to hang or to send
 * malformed acks, through the SDK's documented test hooks. Runs in Node and in browsers.
 */
export class DeviceSimulator {
  /** Every valid call received, in order (repeats included). */
  readonly calls: ToolCall[] = [];
  /** Payloads that failed validation (answered with `{id, error}`). */
  readonly invalidCalls: unknown[] = [];
  /** Every valid `agent_run` received, in order. */
  readonly agentRuns: AgentRunRequest[] = [];
  /** How calls are answered; replace it to hang or to send malformed acks. */
  responder: Responder = answerFromStore;
  /** Writes answered from memory because their idempotency key was seen before. */
  readonly repeatedCalls: ToolCall[] = [];
  readonly store: MemoryStore;
  private readonly callWaiters = new Set<() => void>();
  private connection?: DeviceConnection;

  private constructor(private readonly options: DeviceSimulatorOptions) {
    this.store = options.store ?? new MemoryStore(options.seed);
  }

  /** Connects and waits for the server to acknowledge `device_hello`. Rejects with the server's `connect_error` message. */
  static async connect(options: DeviceSimulatorOptions): Promise<DeviceSimulator> {
    const simulator = new DeviceSimulator(options);
    const read = options.readAgentFiles;
    simulator.connection = await connectDevice({
      url: options.url,
      token: options.accessToken,
      deviceId: options.deviceId,
      agentIds: options.agentIds,
      reconnection: options.reconnection ?? true,
      timeoutMs: options.connectTimeoutMs ?? 10_000,
      ackTimeoutMs: 10_000,
      store: simulator.store,
      frameFiles: options.agentFilesPerFrame ?? 20,
      frameBytes: Number.MAX_SAFE_INTEGER,
      onCall: (call, reply) => options.onCall?.(call, reply),
      readAgentFiles:
        read &&
        (async (_config, { runId }) => {
          const request = [...simulator.agentRuns].reverse().find((run) => run.runId === runId)!;
          const { files, errors = [] } = await read(request);
          return [...errors.map((error): AgentReadItem => ({ error })), ...files];
        }),
      testHooks: {
        enforceRunLimits: false,
        onAgentRunStart: (request) => void simulator.agentRuns.push(request),
        onReceive: ({ payload, call, repeated }) => {
          if (!call) return void simulator.invalidCalls.push(payload);
          simulator.calls.push(call);
          if (repeated) simulator.repeatedCalls.push(call);
          simulator.callWaiters.forEach((check) => check());
        },
        respond: (call, answer) => (simulator.responder === answerFromStore ? answer() : simulator.responder(call, simulator.store)),
      },
    });
    return simulator;
  }

  /** The `/device` socket (to emit `chat_request`, listen to `final`, ...). */
  get socket(): DeviceClient {
    return this.connection!.socket;
  }

  get deviceId(): string {
    return this.options.deviceId;
  }

  /** Says `device_hello` (done on every connect already) and returns the server's ack. */
  hello(): Promise<DeviceHelloAck> {
    return this.connection!.hello();
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
      const timer = setTimeout(
        () => (this.callWaiters.delete(check), reject(new Error(`no matching tool_call within ${timeoutMs} ms`))),
        timeoutMs,
      );
      if (!check()) this.callWaiters.add(check);
    });
  }

  /** Closes the connection (the server sees a disconnect at once). */
  close(): void {
    this.connection?.close();
  }
}

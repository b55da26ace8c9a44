import type { AgentFile, AgentRunRequest, ToolCall, ToolReply } from './protocol';
import type { ProjectServer, TableStore } from './device-store';
import type { SocketConnectOptions } from './sockets';

/*
 * What a device is connected with and what its agent runs read and report: shared by both
 * transports, the Socket.IO one (device.ts) and the plain WebSocket one (device-ws.ts).
 */

/** A file read for an agent run, or a problem with one (reported in `agent_complete.errors`). */
export type AgentReadItem = AgentFile | { path?: string; error: string };
export type AgentRunConfig = AgentRunRequest['config'];
/** Reads the files of an agent run. Node: `readFolderFiles` from `./node-files`. */
export type ReadAgentFiles = (
  config: AgentRunConfig,
  context: { runId: string; agentId: string; signal: AbortSignal },
) => AsyncIterable<AgentReadItem> | Iterable<AgentReadItem> | Promise<AgentReadItem[]>;

/** How an agent run ended on this device. */
export interface AgentRunOutcome {
  runId: string;
  agentId: string;
  filesRead: number;
  /** What went wrong with single files, or with the run (as sent in `agent_complete`). */
  errors: string[];
  frames: number;
  /** Set when the run stopped without `agent_complete` (disconnected, or the run was cancelled: `agent_cancelled`). */
  aborted: boolean;
}

export interface DeviceConnectOptions extends SocketConnectOptions {
  /**
   * `socket.io` (default): the `/device` namespace. `ws`: the desktop apps' plain WebSocket protocol
   * at `/api/v1/ws/device`, for apps that do not ship Socket.IO; it resolves to a
   * `DeviceWsConnection` (device-ws.ts).
   */
  transport?: 'socket.io' | 'ws';
  /** 1-128 of `[A-Za-z0-9._:-]`, stable for this installation. */
  deviceId: string;
  /** The local tables the assistant's task, project, checkpoint and note tools work on. */
  store?: TableStore;
  /** The project folder the coding assistant works on (announced in `device_hello`). */
  project?: ProjectServer;
  /** Local agents this device runs (sent in `device_hello`). */
  agentIds?: string[];
  /**
   * Receive the answer messages of every chat turn that runs on this device, not only of the turns
   * this connection started (sent in `device_hello`). Default false.
   */
  allTurns?: boolean;
  /** Reads the files of an `agent_run`; without it runs complete at once with an error. */
  readAgentFiles?: ReadAgentFiles;
  /** Told of every valid call and the ack sent. */
  onCall?: (call: ToolCall, reply: ToolReply) => void;
  /** Told of every `agent_run` once it has ended. */
  onAgentRun?: (outcome: AgentRunOutcome) => void;
  /** Files per `agent_data` frame (default 50) and content bytes per frame (default 256 KiB; one larger file goes alone). */
  frameFiles?: number;
  frameBytes?: number;
  /** How long to wait for acks of `device_hello`, `agent_data`, `agent_complete` (default 30 s). */
  ackTimeoutMs?: number;
  /**
   * Test hooks (Socket.IO transport only). A real device leaves them unset; the device simulator of
   * `@switchboard/client/testing` uses them to watch the protocol and to misbehave on purpose, so a
   * server's handling of broken devices can be tested against this one implementation.
   */
  testHooks?: DeviceTestHooks;
}

/** See {@link DeviceConnectOptions.testHooks}. */
export interface DeviceTestHooks {
  /** Told of every `tool_call` as received: `call` when valid (`repeated` when answered from the idempotency memory), `invalid` (the reason) otherwise. */
  onReceive?(event: { payload: unknown; call?: ToolCall; repeated: boolean; invalid?: string }): void;
  /**
   * Replaces the answer to a valid, non-repeated call. `answer()` runs it on `store` as usual
   * (checked against the reply schemas). Whatever this returns is sent as the ack UNCHECKED (a
   * wrong id or shape), and `undefined` sends no ack at all (a device that hangs).
   */
  respond?(call: ToolCall, answer: () => Promise<ToolReply>): unknown;
  /** Told of every valid `agent_run` as it starts. */
  onAgentRunStart?(request: AgentRunRequest): void;
  /** `false`: send every file read, past the run's bounds (files, bytes, bytes per file), leaving the limits to the server. */
  enforceRunLimits?: boolean;
}

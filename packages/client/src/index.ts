/**
 * `@switchboard/client`: HTTP API, SSE streams, and the `/canvas` and `/device` Socket.IO
 * namespaces, typed (the types are checked against the server's own schemas and event maps by
 * test/types/client-contract.ts). Runs in browsers and Node 22+. Node-only helpers live in
 * `./node-files` (`@switchboard/client/node`), not re-exported here.
 */
export {
  createSwitchboardClient,
  type CanvasFeedEvent,
  type ChatStreamOptions,
  type ExecutionStream,
  type GenerateOptions,
  type GenerationStream,
  type SwitchboardClient,
  type SwitchboardClientOptions,
} from './client';
export { AgenticRAGClient, type AgenticRAGChatRequest, type APIConfig } from './agenticrag';
export { CLIENT_OPERATIONS, type ClientOperationId } from './operations';
export { isApiError, SwitchboardApiError } from './errors';
export { EventStream, readSseMessages, SseParser, type EventStreamOptions, type ReconnectInfo, type SseMessage } from './sse';
export { CanvasSequencer } from './canvas-sync';
export {
  followThread,
  type FollowThreadOptions,
  type RoomThreadFollower,
  type RoomThreadItem,
  type ThreadEventPayload,
} from './room-thread';
export {
  connectCanvas,
  type CanvasConnection,
  type CanvasRoomEvent,
  type CanvasSocket,
  type ResyncListener,
  type DeviceSocket,
  type SocketConnectOptions,
  type TokenSource,
} from './sockets';
export {
  connectDevice,
  tableStore,
  type AgentReadItem,
  type AgentRunConfig,
  type AgentRunOutcome,
  type DeviceConnection,
  type DeviceConnectOptions,
  type ReadAgentFiles,
  type TableHandlers,
  type TableStore,
  type ProjectServer,
} from './device';
export { unifiedDiff } from './code-diff';
export type { DeviceWsConnection, DeviceWsEvent, DeviceWsFrame } from './device-ws';
export { Transport, type ClientTokens, type RequestOptions, type TransportOptions } from './transport';
export type * from './types';
export { CANVAS_NAMESPACE, CANVAS_ROOM_EVENTS, DEVICE_NAMESPACE } from './events';
export type {
  ApprovalRequested,
  ApprovalResolved,
  CanvasClientEvents,
  CanvasLogEntry,
  CanvasRoomEventName,
  CanvasServerEvents,
  DeviceClientEvents,
  DeviceServerEvents,
  GenerationStage,
  InputDecision,
  InputRequested,
  InputResolved,
  JoinAck,
  PresenceUser,
  SyncAck,
  ThreadAssistantState,
  ThreadEventBody,
} from './events';
export type { AgentFile, AgentRunRequest, DeviceHelloAck, DeviceProject, DeviceReply, ToolCall, ToolReply } from './protocol';

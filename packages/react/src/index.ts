/**
 * `@switchboard/react`: hooks over `@switchboard/client`. Put a `SwitchboardProvider` with a
 * signed-in client at the top; below it `useCanvas`, `useGeneration`, `useApprovals`, `useChat`, `useRoomThread`.
 */
export { SwitchboardProvider, useSwitchboard, type SwitchboardContextValue, type SwitchboardProviderProps } from './context';
export { byRank, useCanvas, type CanvasState, type CanvasStatus, type RoomGeneration } from './use-canvas';
export { useGeneration, type GenerationControls, type GenerationState, type GenerationStatus } from './use-generation';
export { useApprovals, type ApprovalsState, type PendingApproval } from './use-approvals';
export { useChat, type ChatMessageItem, type ChatState, type ChatStatus } from './use-chat';
export {
  applyThreadItem,
  TYPING_SHOWN_MS,
  useRoomThread,
  type RoomThreadData,
  type RoomThreadMessage,
  type RoomThreadState,
} from './use-room-thread';

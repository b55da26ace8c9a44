import type { Block } from '../schemas/blocks';

/**
 * Every Socket.IO event, typed per namespace and direction. Server code and the tests' clients
 * share these maps so a renamed event or field fails to compile.
 */
export type GenerationStage = 'queued' | 'thinking' | 'tool' | 'persisting' | 'broadcasting';

export interface PresenceUser {
  userId: string;
  name: string;
}

export type Ack<T> = (response: T) => void;
export type JoinAck = { ok: true; presence: PresenceUser[] } | { ok: false; error: { code: string; message?: string } };

/** `/canvas`: client → server. */
export interface CanvasClientEvents {
  'canvas:join': (canvasId: string, ack: Ack<JoinAck>) => void;
  'canvas:leave': (canvasId: string, ack?: Ack<{ ok: boolean }>) => void;
  'canvas:cursor': (payload: { canvasId: string; x: number; y: number }) => void;
}

/** `/canvas`: server → client. */
export interface CanvasServerEvents {
  block_added: (payload: { canvasId: string; block: Block }) => void;
  block_updated: (payload: { canvasId: string; block: Block }) => void;
  block_deleted: (payload: { canvasId: string; blockId: string }) => void;
  blocks_bulk_added_chunk: (payload: { canvasId: string; generationId: string; chunkIndex: number; chunkCount: number; blocks: Block[] }) => void;
  generation_status: (payload: { canvasId: string; generationId: string; stage: GenerationStage }) => void;
  generation_undone: (payload: { canvasId: string; generationId: string; blockIds: string[] }) => void;
  presence: (payload: { canvasId: string; users: PresenceUser[] }) => void;
  cursor: (payload: { userId: string; x: number; y: number }) => void;
}

/** What a `/canvas` socket carries after authentication. */
export interface CanvasSocketData {
  user: { id: string; name: string; email: string };
}

/** Room names, from one place. */
export const rooms = {
  canvas: (canvasId: string) => `canvas:${canvasId}`,
  device: (deviceId: string) => `device:${deviceId}`,
  user: (userId: string) => `user:${userId}`,
};

export const CANVAS_NAMESPACE = '/canvas';

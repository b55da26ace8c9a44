import type { Block, CanvasRoomEvent, GenerationStage, PresenceUser } from '@switchboard/client';
import { useEffect, useState } from 'react';
import { useSwitchboard } from './context';

export type CanvasStatus = 'connecting' | 'live' | 'offline' | 'error';

/** The last generation the room reported on this canvas (anyone's). */
export interface RoomGeneration {
  generationId: string;
  stage: GenerationStage | 'undone' | 'redone';
  /** Chunks of blocks broadcast so far, of `chunkCount`. */
  chunkIndex?: number;
  chunkCount?: number;
}

export interface CanvasState {
  /** The canvas's blocks in rank order. */
  blocks: Block[];
  /** Who has the canvas open. */
  presence: PresenceUser[];
  status: CanvasStatus;
  /** Why `status` is `error` (e.g. `forbidden` for a non-member). */
  error?: string;
  generation?: RoomGeneration;
}

/** Rank order (LexoRank strings compare as text), then id, as the server lists blocks. */
export function byRank(a: Block, b: Block): number {
  if (a.rank !== b.rank) return a.rank < b.rank ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * A live canvas: its blocks in rank order, kept from the room's events; who is present; and the
 * room's latest generation. Reconnect-safe: the SDK rejoins the room after a reconnect and hands
 * over every missed event in order exactly once (or asks for a reload, which this hook does).
 */
export function useCanvas(canvasId: string | undefined): CanvasState {
  const { client, canvasSocket } = useSwitchboard();
  const [state, setState] = useState<CanvasState>({ blocks: [], presence: [], status: 'connecting' });

  useEffect(() => {
    if (!canvasId) return undefined;
    let active = true;
    const blocks = new Map<string, Block>();
    const cleanups: Array<() => void> = [];
    const update = (change: Partial<CanvasState>) => active && setState((previous) => ({ ...previous, ...change }));
    const publish = (change: Partial<CanvasState> = {}) => update({ blocks: [...blocks.values()].sort(byRank), ...change });
    setState({ blocks: [], presence: [], status: 'connecting' });

    const load = async () => {
      const all = await client.blocks.listAll(canvasId);
      blocks.clear();
      for (const block of all) blocks.set(block.id, block);
      publish();
    };
    const apply = ({ event, payload }: CanvasRoomEvent) => {
      if (payload.canvasId !== canvasId) return;
      switch (event) {
        case 'block_added':
        case 'block_updated':
          blocks.set(payload.block.id, payload.block);
          return publish();
        case 'block_deleted':
          blocks.delete(payload.blockId);
          return publish();
        case 'blocks_bulk_added_chunk':
          for (const block of payload.blocks) blocks.set(block.id, block);
          return publish({
            generation: {
              generationId: payload.generationId,
              stage: 'broadcasting',
              chunkIndex: payload.chunkIndex,
              chunkCount: payload.chunkCount,
            },
          });
        case 'generation_status':
          return update({ generation: { generationId: payload.generationId, stage: payload.stage } });
        case 'generation_undone':
          for (const id of payload.blockIds) blocks.delete(id);
          return publish({ generation: { generationId: payload.generationId, stage: 'undone' } });
        case 'generation_redone':
          for (const block of payload.blocks) blocks.set(block.id, block);
          return publish({ generation: { generationId: payload.generationId, stage: 'redone' } });
      }
    };

    void (async () => {
      const room = await canvasSocket();
      if (!active) return;
      cleanups.push(room.onEvent(apply));
      cleanups.push(room.onResync((id) => (id === canvasId ? load() : undefined)));
      const onPresence = (payload: { canvasId: string; users: PresenceUser[] }) =>
        payload.canvasId === canvasId && update({ presence: payload.users });
      const onConnect = () => update({ status: 'live' });
      const onDisconnect = () => update({ status: 'offline' });
      room.on('presence', onPresence);
      room.on('connect', onConnect);
      room.on('disconnect', onDisconnect);
      cleanups.push(() => {
        room.off('presence', onPresence);
        room.off('connect', onConnect);
        room.off('disconnect', onDisconnect);
        // eslint-disable-next-line no-restricted-syntax -- leaving on unmount: a socket already gone has left the room
        void room.leave(canvasId).catch(() => undefined);
      });
      const ack = await room.join(canvasId, 10_000, load);
      if (ack.ok) update({ status: room.connected ? 'live' : 'offline', presence: ack.presence });
      else update({ status: 'error', error: ack.error.code });
    })().catch((error: unknown) => update({ status: 'error', error: error instanceof Error ? error.message : String(error) }));

    return () => {
      active = false;
      cleanups.forEach((cleanup) => cleanup());
    };
  }, [canvasId, client, canvasSocket]);

  return state;
}

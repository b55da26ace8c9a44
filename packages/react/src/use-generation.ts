import type { Block, BlockInput, GenerationStage } from '@switchboard/client';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useSwitchboard } from './context';

export type GenerationStatus = 'idle' | 'starting' | 'running' | 'stopping' | 'completed' | 'cancelled' | 'failed' | 'undone';

export interface GenerationState {
  status: GenerationStatus;
  canvasId?: string;
  generationId?: string;
  /** The latest stage the stream reported. */
  stage?: GenerationStage;
  /** Blocks as the model produces them (`tool_output`), before they are stored. */
  drafts: BlockInput[];
  /** How many blocks the stream has produced (drafts are cleared at the end; this stays). */
  streamed: number;
  /** The stored blocks, once `completed`. */
  blocks: Block[];
  truncated?: boolean;
  /** `code: message` of a failed generation, stop or undo. */
  error?: string;
  /** The generation `undo()` would undo: the last one that completed. */
  undoable?: { canvasId: string; generationId: string };
}

export interface GenerationControls extends GenerationState {
  /** Starts a generation on `canvasId` and streams it (a dropped stream resumes by itself); resolves when it ends. */
  start(canvasId: string, prompt: string, options?: { afterId?: string }): Promise<void>;
  /** Stops the running generation on the server (any node runs it); its stream then ends `cancelled`. */
  stop(): Promise<void>;
  /** Removes a completed generation's blocks (the last completed one by default), for everyone on the canvas. */
  undo(target?: { canvasId: string; generationId: string }): Promise<void>;
}

const initial: GenerationState = { status: 'idle', drafts: [], streamed: 0, blocks: [] };
const describe = (error: unknown) =>
  error instanceof Error ? ('code' in error ? `${String(error.code)}: ${error.message}` : error.message) : String(error);

/** One generation at a time: start, its stream, stop, undo, and its status. */
export function useGeneration(): GenerationControls {
  const { client } = useSwitchboard();
  const [state, setState] = useState<GenerationState>(initial);
  const current = useRef<{ canvasId: string; generationId?: string; controller: AbortController } | null>(null);
  const mounted = useRef(true);
  const update = useCallback((change: Partial<GenerationState> | ((previous: GenerationState) => Partial<GenerationState>)) => {
    if (mounted.current) setState((previous) => ({ ...previous, ...(typeof change === 'function' ? change(previous) : change) }));
  }, []);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      current.current?.controller.abort();
    };
  }, []);

  const start = useCallback(
    async (canvasId: string, prompt: string, options: { afterId?: string } = {}) => {
      current.current?.controller.abort();
      const run = { canvasId, controller: new AbortController() } as {
        canvasId: string;
        generationId?: string;
        controller: AbortController;
      };
      current.current = run;
      update((previous) => ({ ...initial, undoable: previous.undoable, status: 'starting', canvasId }));
      const mine = () => current.current === run;
      try {
        const stream = client.generations.generate(
          canvasId,
          { prompt, ...options },
          {
            signal: run.controller.signal,
            onStart: ({ generationId }) => {
              run.generationId = generationId;
              if (mine()) update((previous) => ({ generationId, status: previous.status === 'starting' ? 'running' : previous.status }));
            },
          },
        );
        for await (const { event } of stream) {
          if (!mine()) break;
          switch (event.type) {
            case 'status':
              update((previous) => ({ stage: event.stage, status: previous.status === 'stopping' ? 'stopping' : 'running' }));
              break;
            case 'tool_output':
              update((previous) => ({ drafts: [...previous.drafts, event.block], streamed: previous.streamed + 1 }));
              break;
            case 'rollback':
              // A model failed mid-turn: the outputs it had sent are redone by the next one.
              update((previous) => ({
                drafts: previous.drafts.slice(0, event.fromIndex),
                streamed: Math.min(previous.streamed, event.fromIndex),
              }));
              break;
            case 'complete':
              update({
                status: 'completed',
                blocks: event.blocks,
                truncated: event.truncated,
                drafts: [],
                undoable: { canvasId, generationId: event.generationId },
              });
              break;
            case 'cancelled':
              update({ status: 'cancelled', drafts: [] });
              break;
            case 'error':
              update({ status: 'failed', drafts: [], error: `${event.code}: ${event.message}` });
              break;
          }
        }
      } catch (error) {
        if (!run.controller.signal.aborted && mine()) update({ status: 'failed', drafts: [], error: describe(error) });
      } finally {
        if (mine()) current.current = null;
      }
    },
    [client, update],
  );

  const stop = useCallback(async () => {
    const run = current.current;
    if (!run) return;
    if (!run.generationId) {
      // Not accepted yet: dropping the request is the stop.
      run.controller.abort();
      current.current = null;
      return update({ status: 'cancelled', drafts: [] });
    }
    update({ status: 'stopping' });
    try {
      await client.generations.cancel(run.canvasId, run.generationId);
    } catch (error) {
      // 409 not_running: it ended first; the stream says how.
      if (!(error instanceof Error && 'code' in error && error.code === 'not_running')) update({ error: describe(error) });
    }
  }, [client, update]);

  const undo = useCallback(
    async (target?: { canvasId: string; generationId: string }) => {
      const which = target ?? state.undoable;
      if (!which) return;
      try {
        await client.generations.undo(which.canvasId, which.generationId);
        update((previous) => ({
          status: 'undone',
          undoable: previous.undoable?.generationId === which.generationId ? undefined : previous.undoable,
        }));
      } catch (error) {
        update({ error: describe(error) });
      }
    },
    [client, update, state.undoable],
  );

  return { ...state, start, stop, undo };
}

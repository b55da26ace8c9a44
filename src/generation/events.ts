import type { Block, BlockInput } from '../schemas/blocks';
import type { GenerationStage } from '../realtime/events';

/** What the SSE stream of a generation carries; `type` is also the SSE `event:` name. */
export type GenerationEvent =
  | { type: 'status'; generationId: string; stage: GenerationStage }
  | { type: 'tool_output'; generationId: string; index: number; block: BlockInput }
  | { type: 'complete'; generationId: string; blocks: Block[]; truncated: boolean; usage?: Record<string, unknown> }
  | { type: 'error'; generationId: string; code: string; message: string }
  /** Stopped by a cancel (SPEC §11): terminal, nothing of it was persisted. */
  | { type: 'cancelled'; generationId: string };

/** A stored event with its sequence number (the SSE `id:`). */
export interface SequencedEvent {
  seq: number;
  event: GenerationEvent;
}

export const isTerminal = (event: GenerationEvent) => event.type === 'complete' || event.type === 'error' || event.type === 'cancelled';

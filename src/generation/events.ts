import type { Block, BlockInput } from '../schemas/blocks';
import { MODEL_FAILURE_TEXT } from '../ai/llm';
import type { GenerationStage } from '../schemas/socket-events';

/** What the SSE stream of a generation carries; `type` is also the SSE `event:` name. */
export type GenerationEvent =
  | { type: 'status'; generationId: string; stage: GenerationStage }
  | { type: 'tool_output'; generationId: string; index: number; block: BlockInput }
  /**
   * A model failed mid-turn and the turn is asked again (the same model once, then the next model of
   * the chain): every `tool_output` whose `index` is `fromIndex` or more is discarded (the redo
   * sends its own from that index on).
   */
  | { type: 'rollback'; generationId: string; fromIndex: number }
  | { type: 'complete'; generationId: string; blocks: Block[]; truncated: boolean; usage?: Record<string, unknown> }
  | { type: 'error'; generationId: string; code: string; message: string }
  /** Stopped by a cancel: terminal, nothing of it was persisted. */
  | { type: 'cancelled'; generationId: string };

/** A stored event with its sequence number (the SSE `id:`). */
export interface SequencedEvent {
  seq: number;
  event: GenerationEvent;
}

/** Whether an event of this type ends a generation's stream. */
export const isTerminalType = (type: string) => type === 'complete' || type === 'error' || type === 'cancelled';

export const isTerminal = (event: GenerationEvent) => isTerminalType(event.type);

/**
 * The fixed texts clients read for a generation's error codes. A cause's own message (provider
 * text, SQL, a stack) never reaches the SSE `error` event or the generation's row.
 */
export const GENERATION_ERROR_MESSAGES: Record<string, string> = {
  generation_failed: 'The generation failed; please try again',
  llm_unavailable: MODEL_FAILURE_TEXT.llm_unavailable,
  llm_auth_failed: MODEL_FAILURE_TEXT.llm_auth_failed,
  queue_unavailable: 'The generation could not be queued; please try again',
  budget_exceeded: "The user's model budget is spent; it frees up when its window resets",
  llm_content_filter: "The model provider's content filter stopped the answer (finish_reason content_filter); nothing was kept",
  llm_output_truncated: 'The model reached its output limit before finishing the answer (finish_reason length); nothing was kept',
};

/** The client-facing text of a generation error code. */
export const generationErrorMessage = (code: string) => GENERATION_ERROR_MESSAGES[code] ?? GENERATION_ERROR_MESSAGES.generation_failed;

import { loadMessages, storeMessages, type StoredModelMessage } from '../ai/model-messages';
import type { LoopCall, ParkedLoop } from './tool-loop';
import type { TurnUsage } from './chat-events';

/*
 * A parked assistant turn as JSON (approvals, 0021). Worker side only: it needs the model gateway's
 * message mapping, which the API process never loads.
 */

/** What a parked turn keeps in `hitl_requests.continuation` (JSON). */
export interface StoredContinuation {
  version: 1;
  messages: StoredModelMessage[];
  calls: LoopCall[];
  iteration: number;
  response: string;
  toolCalls: number;
  /** The toolsets the turn was routed to (the same tools are offered after the resume). Stored as `agents` before 0105. */
  toolsets?: string[];
  agents?: string[];
  usage: TurnUsage;
}

export const storeContinuation = (parked: ParkedLoop, toolsets: string[], usage: TurnUsage): StoredContinuation => ({
  version: 1,
  messages: storeMessages(parked.messages),
  calls: parked.calls,
  iteration: parked.iteration,
  response: parked.response,
  toolCalls: parked.toolCalls,
  toolsets,
  usage,
});

export const loadContinuation = (stored: StoredContinuation): { parked: ParkedLoop; toolsets: string[]; usage: TurnUsage } => ({
  parked: {
    messages: loadMessages(stored.messages),
    calls: stored.calls,
    iteration: stored.iteration,
    response: stored.response,
    toolCalls: stored.toolCalls,
  },
  toolsets: stored.toolsets ?? stored.agents ?? [],
  usage: stored.usage,
});

import { mapChatMessagesToStoredMessages, mapStoredMessagesToChatMessages, type StoredMessage } from '@langchain/core/messages';
import type { LoopCall, ParkedLoop } from './agent-loop';
import type { TurnUsage } from './chat-events';

/*
 * A parked assistant turn as JSON (approvals, 0021). Worker side only: it needs LangChain's message
 * mapping, which the API process never loads.
 */

/** What a parked turn keeps in `hitl_requests.continuation` (JSON). */
export interface StoredContinuation {
  version: 1;
  messages: StoredMessage[];
  calls: LoopCall[];
  iteration: number;
  response: string;
  toolCalls: number;
  /** The agents the turn was routed to (the same tools are offered after the resume). */
  agents: string[];
  usage: TurnUsage;
}

export const storeContinuation = (parked: ParkedLoop, agents: string[], usage: TurnUsage): StoredContinuation => ({
  version: 1,
  messages: mapChatMessagesToStoredMessages(parked.messages),
  calls: parked.calls,
  iteration: parked.iteration,
  response: parked.response,
  toolCalls: parked.toolCalls,
  agents,
  usage,
});

export const loadContinuation = (stored: StoredContinuation): { parked: ParkedLoop; agents: string[]; usage: TurnUsage } => ({
  parked: { messages: mapStoredMessagesToChatMessages(stored.messages), calls: stored.calls, iteration: stored.iteration, response: stored.response, toolCalls: stored.toolCalls },
  agents: stored.agents,
  usage: stored.usage,
});


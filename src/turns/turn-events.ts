import type { RedisClient } from '../lib/redis';
import { JsonEventLog } from '../lib/redis-streams';
import type { StreamFollower } from '../lib/stream-follower';
import type { ApprovalRequested, ApprovalResolved } from '../schemas/socket-events';
import { redisKeys } from '../lib/redis-keys';
import type { Citation } from '../knowledge/retrieval';

/** Usage of one turn, summed over its model calls. */
export interface TurnUsage {
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** A turn's usage as its answer's row holds it (a model the row does not name is `unknown`). */
export const usageOf = (row: {
  provider: string | null;
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}): TurnUsage => ({
  provider: row.provider ?? 'unknown',
  model: row.model ?? 'unknown',
  inputTokens: row.inputTokens,
  outputTokens: row.outputTokens,
  costUsd: row.costUsd,
});

/** Where a step of the Orchestrator's plan is. */
export type PlanStepStatus = 'pending' | 'running' | 'done' | 'cancelled';

/** What a coding agent is doing: thinking (the model), waiting for an approval, running a tool, done, failed. */
export type AgentState = 'processing' | 'waiting' | 'executing' | 'idle' | 'error';

/** What a turn tells its HTTP listener; devices get `text_chunk` and `final` over Socket.IO too. */
export type ChatEvent =
  | { type: 'text_chunk'; sessionId: string; text: string }
  /**
   * A tool call about to run on the turn's device: its arguments as the model gave them, long
   * strings cut; `agent` on a coding turn.
   */
  | { type: 'tool_call'; sessionId: string; callId: string; name: string; arguments: Record<string, unknown>; agent?: string }
  /**
   * What the call gave the model: `ok` false when it is an error (refused, failed, timed out);
   * `content` cut at 4,000 characters; `changeId` when it changed a file (the undo's id).
   */
  | {
      type: 'tool_result';
      sessionId: string;
      callId: string;
      name: string;
      ok: boolean;
      content: string;
      agent?: string;
      changeId?: string;
    }
  /** The turn waits for the user's decision on a dangerous tool call. */
  | ({ type: 'approval_requested' } & ApprovalRequested)
  /** The decision (or timeout); the turn goes on and ends with `final`. */
  | ({ type: 'approval_resolved'; sessionId: string } & ApprovalResolved)
  | { type: 'final'; sessionId: string; response: string; usage: TurnUsage }
  | { type: 'error'; sessionId: string; code: string; message: string }
  /** A coding turn: which agent works now, and what it is doing. */
  | { type: 'agent'; sessionId: string; agent: string; state: AgentState }
  /** The Orchestrator's plan: its steps, who does each and where each is (sent as it changes). */
  | { type: 'plan'; sessionId: string; steps: Array<{ agent: string; task: string; status: PlanStepStatus }> }
  /**
   * The sources the answer may cite, numbered as the model read them (`[1]`, `[2]`, …): the document,
   * its page or section, and the quoted snippet. Sent before the text that cites them.
   */
  | { type: 'citations'; sessionId: string; sources: Citation[] }
  /** Stopped by a cancel: the answer as far as it got, kept in history marked cancelled. */
  | { type: 'cancelled'; sessionId: string; response: string; usage: TurnUsage };

/** The events that end a turn's stream. */
export const isChatTerminal = (event: ChatEvent): boolean => event.type === 'final' || event.type === 'error' || event.type === 'cancelled';

/**
 * A chat turn's events in one Redis stream per turn (keyed by the user message id), the same
 * design as the generation event log: the worker appends, any API node follows from the
 * start, so a listener that subscribes late loses nothing.
 */
export class ChatEventLog extends JsonEventLog<ChatEvent> {
  constructor(redis: RedisClient, keyPrefix: string, ttlSeconds = 3_600, follower?: StreamFollower) {
    super(redis, (messageId) => redisKeys(keyPrefix).chatEvents(messageId), isChatTerminal, ttlSeconds, follower);
  }

  /**
   * Hands every stored batch of a turn's events to `mirror` as well (a room thread's turns are room
   * events too), before the batch's appends resolve; `mirror` must not reject.
   */
  mirrorTo(mirror: (messageId: string, events: ChatEvent[]) => Promise<void>): void {
    this.afterWrite = mirror;
  }
}

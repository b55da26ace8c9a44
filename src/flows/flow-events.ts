import type { RedisClient } from '../lib/redis';
import { MODEL_FAILURE_TEXT } from '../ai/llm';
import { SequencedEventLog } from '../lib/sequenced-event-log';
import type { StreamFollower } from '../lib/stream-follower';
import { redisKeys } from '../lib/redis-keys';

/** Tokens and cost of one node (the provider and model it ran on). */
export interface NodeUsage {
  provider: string | null;
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** Tokens and cost of a whole execution (the sum over its nodes). */
export interface ExecutionUsage {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** A failure as clients read it: a stable code and a fixed text (never a provider's words). */
export interface FlowError {
  code: string;
  message: string;
  /** On `execution_failed`: the node whose failure ended it. */
  nodeId?: string;
}

/**
 * What the SSE stream of an agentflow execution carries; `type` is also the SSE `event:`
 * name and every event names its execution.
 */
export type FlowEvent =
  /** A replay names the ended execution and the node it starts from. */
  | { type: 'execution_started'; executionId: string; flowId: string; replayOf?: { executionId: string; fromNode: string } }
  | { type: 'node_started'; executionId: string; nodeId: string; attempt: number }
  /**
   * `truncated`: the text answer was longer than a node output may be and was cut. `reused`: a
   * replay's node that did not run: its output is the one its source execution committed.
   */
  | { type: 'node_completed'; executionId: string; nodeId: string; output: unknown; usage: NodeUsage; truncated?: true; reused?: true }
  | { type: 'node_failed'; executionId: string; nodeId: string; error: FlowError }
  /** No branch taken leads to the node (nor to any node it depends on that ran): it does not run. */
  | { type: 'node_skipped'; executionId: string; nodeId: string }
  /** One element of a foreach (or one iteration of a loop, `index` from 0) answered. */
  | { type: 'item_completed'; executionId: string; nodeId: string; index: number; output: unknown }
  /** A subflow node started its child execution (whose own events are at its id). */
  | { type: 'subflow_started'; executionId: string; nodeId: string; childExecutionId: string }
  /**
   * One tool call of a node: its arguments, its result as the model read it (cut to
   * {@link MAX_TOOL_RESULT_EVENT_CHARS}), whether it succeeded, when it started and how long it took.
   */
  | {
      type: 'tool_called';
      executionId: string;
      nodeId: string;
      tool: string;
      kind: 'device' | 'http' | 'mcp' | 'knowledge';
      args: unknown;
      result: string;
      ok: boolean;
      truncated?: true;
      startedAt: string;
      durationMs: number;
      approvalId?: string;
    }
  /** A node's dangerous tool call waits for the owner's decision (`PUT /hitl/requests/:id/approve|reject`). */
  | { type: 'approval_requested'; executionId: string; nodeId: string; approvalId: string; tool: string; expiresAt: string }
  /** A human_input node waits for a form's answer (`POST /hitl/inputs/:id/answer`) from one of its recipients. */
  | { type: 'input_requested'; executionId: string; nodeId: string; inputId: string; expiresAt: string }
  | { type: 'execution_completed'; executionId: string; output: unknown; usage: ExecutionUsage }
  | { type: 'execution_failed'; executionId: string; error: FlowError }
  /** Stopped by a cancel: terminal. */
  | { type: 'cancelled'; executionId: string };

/** A tool result as the execution's events show it. */
export const MAX_TOOL_RESULT_EVENT_CHARS = 2_000;

/** Whether an event of this type ends an execution's stream. */
export const isFlowTerminalType = (type: string) => type === 'execution_completed' || type === 'execution_failed' || type === 'cancelled';

export const isFlowTerminal = (event: FlowEvent) => isFlowTerminalType(event.type);

/** The fixed texts of flow error codes (a cause's own message never reaches clients). */
export const FLOW_ERROR_MESSAGES: Record<string, string> = {
  node_failed: 'A node of the flow failed; see its error',
  invalid_output: "The model did not return JSON matching the node's outputSchema, even when asked again",
  llm_unavailable: MODEL_FAILURE_TEXT.llm_unavailable,
  llm_auth_failed: MODEL_FAILURE_TEXT.llm_auth_failed,
  llm_content_filter: "The model provider's content filter stopped the answer (finish_reason content_filter)",
  llm_output_truncated: 'The model reached its output limit before finishing the answer (finish_reason length)',
  queue_unavailable: 'The execution could not be queued; please try again',
  interrupted: 'The execution was interrupted and could not be resumed',
  prompt_too_large: "The node's prompt, with its inputs and the outputs it reads filled in, is larger than a model request may be",
  budget_exceeded: "The user's model budget is spent; the flow can run again once its window resets",
  approval_not_possible: "A tool call needed the owner's approval, but approvals are not available for this execution",
  approval_rejected: "The owner rejected the node's tool call; it was not run",
  approval_expired: "The owner did not decide on the node's tool call in time; it was not run",
  not_a_list: "The foreach node's items are not a list",
  too_many_items: "The foreach node's list is longer than a foreach may run over",
  subflow_not_found: 'The flow a subflow node runs is gone, or is not an agentflow of the same owner',
  subflow_too_deep: 'Subflows nest deeper than allowed',
  subflow_refused: 'The subflow could not start with this input (missing or invalid input, or a limit)',
  subflow_failed: 'The subflow (the child execution) failed or was cancelled',
  unsupported_schema: "The node's outputSchema uses a regular expression (pattern), which is not supported; update the flow",
  no_recipients: 'None of the people a human_input node names may be asked any more (they no longer share a canvas with the owner)',
  input_timeout: 'Nobody answered the human_input node in time',
};
export const flowError = (code: string): FlowError => ({ code, message: FLOW_ERROR_MESSAGES[code] ?? FLOW_ERROR_MESSAGES.node_failed });

/** One sequenced log per execution: ids from 1, replay after `Last-Event-ID`, live on any node (the generation machinery). */
export class FlowEventLog extends SequencedEventLog<FlowEvent> {
  constructor(redis: RedisClient, keyPrefix: string, ttlSeconds: number, follower?: StreamFollower) {
    super(redis, (executionId) => redisKeys(keyPrefix).flowExecutionEvents(executionId), ttlSeconds, isFlowTerminal, follower);
  }
}

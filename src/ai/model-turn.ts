import type { BudgetTicket } from '../budget/budget-door';
import type { ModelMessage, ModelToolCall } from './model-messages';
import type { ModelTool } from './model-tools';

/*
 * The contract of one model turn, as every caller of the gateway sees it: which model, what is
 * asked, what comes back and what it cost. The modules behind the gateway share these types;
 * callers import them from src/ai/model-gateway.ts.
 */

/** An OpenAI-compatible endpoint and the models a deployment may use on it. */
export interface ModelProvider {
  name: string;
  baseURL: string;
  apiKey: string;
  models: string[];
  /** Accepts Anthropic-style `cache_control` on message parts (see {@link ModelTurnRequest.cacheSystemPrompt}). */
  promptCache?: boolean;
}

/** One model of one provider. */
export interface ModelRef {
  provider: string;
  model: string;
}

/** What a model call was for: a label of the latency metrics and of recorded usage. */
export type ModelPurpose = 'generation' | 'chat' | 'extraction' | 'journey' | 'notes' | 'flow' | 'chatflow' | 'evaluation';

/** Tokens and cost of one model call; `estimated` when the provider reported none (about 4 characters a token). */
export interface ModelUsage extends ModelRef {
  inputTokens: number;
  outputTokens: number;
  /** Of `inputTokens`, those the provider said it read from its prompt cache (priced at the cached rate). */
  cachedInputTokens?: number;
  costUsd: number;
  estimated: boolean;
}

export type { ModelToolCall } from './model-messages';

export interface ModelTurnRequest {
  purpose: ModelPurpose;
  /** The conversation, built with src/ai/model-messages.ts. */
  messages: ModelMessage[];
  /** Tools the model may call (src/ai/model-tools.ts). */
  tools?: ModelTool[];
  /** Forces one tool by name. */
  toolChoice?: string;
  /** A model chosen by the request (validated by the caller); else the deployment's default. */
  model?: ModelRef;
  /** Sampling temperature (a chatflow's `temperature`); unset = the provider's default. */
  temperature?: number;
  /** The most output tokens this call may produce (`max_tokens`), below the deployment's `LLM_MAX_TOKENS` when that is lower. */
  maxTokens?: number;
  /**
   * The system prompt is fixed text worth caching: on a provider configured with `promptCache` its
   * system messages are sent as text parts marked `cache_control: {type: "ephemeral"}`. Others are
   * sent the plain message (OpenAI caches long prefixes by itself).
   */
  cacheSystemPrompt?: boolean;
  signal?: AbortSignal;
  /** Each text delta, in order. */
  onText?(text: string): void;
  /** A tool call's first delta arrived (its arguments are still streaming). */
  onToolCallStart?(index: number): void;
  /** Each tool call, the moment its arguments close (or when the stream moves past it). */
  onToolCall?(call: ModelToolCall, index: number): void;
  /**
   * Output already went out and the model failed. Without this hook the failure is final (the user
   * saw part of an answer); with it the caller discards what it got and the turn is asked again
   * (of the same model once when its stream had opened, else of the next model).
   */
  onRestart?(): void;
  /** Records the call's usage for this user (and counts tokens and cost in the metrics). */
  account?: {
    userId: string;
    tier: string;
    sessionId?: string;
    /**
     * Whether the answering attempt's usage line is left to the caller (asked once it answered):
     * then it is not written here but handed back as `ModelTurn.unrecorded`, for the caller to
     * write with the run's end, in its transaction. Attempts that failed, were cancelled or stopped
     * early are recorded here as always.
     */
    leaveLine?(turn: Pick<ModelTurn, 'toolCalls'>): boolean;
  };
  /**
   * The budget the call is reserved under before it is sent (the run's ticket: its first call takes
   * over the request's reservation). Without it, `account`'s user is budgeted with a ticket of its own.
   */
  budget?: BudgetTicket;
}

export interface ModelTurn {
  text: string;
  toolCalls: ModelToolCall[];
  /** The model's hidden reasoning (`reasoning_content`): never shown or stored as text, only sent back to the same model. */
  reasoning?: string;
  /** The usage of the model that answered. */
  usage: ModelUsage;
  /**
   * Why the model stopped, as the provider said (`stop`, `tool_calls`, `length`, ...); undefined
   * when it said nothing. `length` and `content_filter` never reach a caller as a turn: they throw
   * ModelOutputTruncated and ModelContentFiltered (both ModelStoppedEarly).
   */
  finishReason?: string;
  /**
   * Every attempt that cost something, in order, each with its own provider and model: a model that
   * failed mid-stream before a fallback answered, then `usage`. All of it is accounted.
   */
  spent: ModelUsage[];
  /** The answering attempt's usage line when the request's `account.leaveLine` kept it from being written here: the caller writes it. */
  unrecorded?: UsageLine;
}

/** One usage line: what a model call of one user cost, as `llm_usage` keeps it (a type, so a plain record takes it). */
export type UsageLine = {
  userId: string;
  sessionId?: string;
  purpose: ModelPurpose;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  estimated?: boolean;
};

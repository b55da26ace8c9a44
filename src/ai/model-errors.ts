import type { MODEL_FAILURE_TEXT } from './llm';
import type { ModelUsage } from './model-turn';

/** No model of the chain answered. `code` says whether to retry later (`llm_unavailable`) or to fix the key (`llm_auth_failed`). */
export class ModelUnavailableError extends Error {
  readonly code: keyof typeof MODEL_FAILURE_TEXT = 'llm_unavailable';

  constructor(
    readonly cause: unknown,
    models: string[],
    /** What the attempts that streamed before failing cost (each was paid for what it streamed); already settled with the budget. */
    readonly spent: ModelUsage[] = [],
    what = 'The language model could not be reached',
  ) {
    super(`${what} (${models.join(', ')}): ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'ModelUnavailableError';
  }
}

/**
 * The provider answered 401 or 403: the key is wrong, revoked or lacks access to the model. Never
 * retried (no retry mends a key); its message is for the operator who must fix it.
 */
export class ModelAuthFailedError extends ModelUnavailableError {
  override readonly code = 'llm_auth_failed';

  constructor(cause: unknown, models: string[], spent: ModelUsage[] = []) {
    super(cause, models, spent, "The model provider refused this deployment's API key");
    this.name = 'ModelAuthFailedError';
  }
}

/** Whether a provider's answer refused the request's credentials (HTTP 401 or 403). */
export function isAuthRefusal(error: unknown): boolean {
  const status = (error as { status?: unknown } | null)?.status;
  return status === 401 || status === 403;
}

/**
 * The provider ended the answer before the model finished it, as its `finish_reason` says: what
 * came is not the model's whole answer, so it is never handed back as a turn. Every path ends with
 * the error's `code` and a message naming the reason; the call's usage is still accounted. No other
 * model is tried: the same prompt under the same limits would most likely stop the same way.
 */
export abstract class ModelStoppedEarly extends Error {
  /** The error code a run ends with. */
  abstract readonly code: string;

  constructor(
    /** The provider's `finish_reason`. */
    readonly finishReason: string,
    readonly usage: ModelUsage,
    message: string,
  ) {
    super(message);
  }
}

/** `finish_reason: "content_filter"`: the provider's content filter withheld the rest of the answer. */
export class ModelContentFiltered extends ModelStoppedEarly {
  readonly code = 'llm_content_filter';

  constructor(usage: ModelUsage) {
    super('content_filter', usage, "The model provider's content filter stopped the answer (finish_reason content_filter)");
    this.name = 'ModelContentFiltered';
  }
}

/**
 * `finish_reason: "length"`: the output limit (the `max_tokens` a budgeted call is sent with, or
 * the model's own) cut the answer before the model finished it.
 */
export class ModelOutputTruncated extends ModelStoppedEarly {
  readonly code = 'llm_output_truncated';

  constructor(usage: ModelUsage) {
    super('length', usage, 'The model reached its output limit before finishing the answer (finish_reason length)');
    this.name = 'ModelOutputTruncated';
  }
}

/**
 * The call was stopped through its `AbortSignal` (a cancel); its HTTP request to the
 * provider is closed. `usage` is what it cost up to then: the provider's figures when it sent them,
 * else an estimate from the prompt and the streamed text (`estimated: true`).
 */
export class ModelCallCancelled extends Error {
  constructor(
    readonly usage: ModelUsage,
    readonly reason?: unknown,
  ) {
    super('The model call was cancelled');
    this.name = 'ModelCallCancelled';
  }
}

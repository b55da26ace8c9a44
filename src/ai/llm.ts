/** Where the models are and which to use; built by the worker entrypoint from config. */
export interface LlmEndpoint {
  baseURL: string;
  apiKey: string;
  /** Recorded with usage: `openai`, `ollama`, ... or `demo` for the offline model. */
  provider: string;
  /** The primary model, then the fallbacks tried in order when a model keeps failing. */
  models: string[];
  /** Accepts Anthropic-style `cache_control` on message parts. */
  promptCache?: boolean;
}

/** Attempts per model call: the first try plus two retries with backoff (LangChain's AsyncCaller). */
export const MODEL_ATTEMPTS = 3;

/**
 * What a user reads when no model answered, by code: the code's fixed text (the cause stays in the
 * log). `llm_auth_failed` (the provider refused the key) is for an operator to fix; import-light,
 * for the event logs the API reads.
 */
export const MODEL_FAILURE_TEXT = {
  llm_unavailable: 'The language model could not be reached; please try again later',
  llm_auth_failed:
    "The model provider refused this deployment's API key: an operator must fix the key (OPENAI_API_KEY, or the variable LLM_PROVIDERS names); retrying will not help",
} as const;

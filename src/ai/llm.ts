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

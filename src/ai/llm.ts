import { ChatOpenAI } from '@langchain/openai';

/** Where the models are and which to use; built by the worker entrypoint from config. */
export interface LlmEndpoint {
  baseURL: string;
  apiKey: string;
  /** Recorded with usage: `openai`, `ollama`, ... or `demo` for the offline model. */
  provider: string;
  /** The primary model, then the fallbacks tried in order when a model keeps failing. */
  models: string[];
}

/** Attempts per model call: the first try plus two retries with backoff (LangChain's AsyncCaller). */
export const MODEL_ATTEMPTS = 3;

const cache = new Map<string, ChatOpenAI>();

/** A streaming chat model for one model name (clients are reused: they hold keep-alive sockets). */
export function chatModel(endpoint: LlmEndpoint, model: string): ChatOpenAI {
  const key = `${endpoint.baseURL}|${model}`;
  let chat = cache.get(key);
  if (!chat) {
    chat = new ChatOpenAI({
      model,
      apiKey: endpoint.apiKey,
      configuration: { baseURL: endpoint.baseURL },
      streaming: true,
      streamUsage: true,
      maxRetries: MODEL_ATTEMPTS - 1,
      timeout: 120_000,
    });
    cache.set(key, chat);
  }
  return chat;
}

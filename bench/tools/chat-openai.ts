import { ChatOpenAI } from '@langchain/openai';
import { MODEL_ATTEMPTS, type LlmEndpoint } from '../../src/ai/llm';

const cache = new Map<string, ChatOpenAI>();

/**
 * LangChain's streaming ChatOpenAI for one model name, with the retry and timeout settings the server uses.
 * Only these measurements use it (to compare against the server's own stream reader): the server no
 * longer does, so its processes never load it for this.
 */
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

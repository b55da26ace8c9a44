import type { BaseMessage } from '@langchain/core/messages';
import type { StructuredToolInterface } from '@langchain/core/tools';
import { convertToOpenAITool } from '@langchain/core/utils/function_calling';
import { ChatOpenAICompletions, convertMessagesToCompletionsMessageParams, type OpenAIClient } from '@langchain/openai';
import { MODEL_ATTEMPTS } from './llm';

/** One raw chunk of an OpenAI-compatible chat completion stream. */
export type CompletionChunk = OpenAIClient.Chat.Completions.ChatCompletionChunk;

/** A tool already in OpenAI's wire form. */
export type ToolDefinition = OpenAIClient.Chat.Completions.ChatCompletionFunctionTool;

/** Where the model is. */
export interface CompletionTarget {
  baseURL: string;
  apiKey: string;
}

const clients = new Map<string, ChatOpenAICompletions>();

/** The @langchain/openai completions client for one endpoint (reused: it holds keep-alive sockets). */
function completionsClient(endpoint: CompletionTarget): ChatOpenAICompletions {
  const key = `${endpoint.baseURL}|${endpoint.apiKey}`;
  let client = clients.get(key);
  if (!client) {
    client = new ChatOpenAICompletions({
      apiKey: endpoint.apiKey,
      configuration: { baseURL: endpoint.baseURL },
      maxRetries: MODEL_ATTEMPTS - 1,
      timeout: 120_000,
    });
    clients.set(key, client);
  }
  return client;
}

/**
 * Streams one model turn as the provider's raw chunks, through @langchain/openai's own client
 * (its retrying caller opens the request; LangChain's message and tool converters build it).
 *
 * Why not `ChatOpenAI.stream()`: it re-concatenates every chunk into a growing aggregate message,
 * which is quadratic in the number of chunks (about a second of CPU for a 200-block turn streamed
 * one token at a time), and even `_streamResponseChunks` builds a LangChain message per chunk.
 * Callers accumulate tool-call arguments per index themselves (decision 0055).
 */
export async function streamCompletion(
  endpoint: CompletionTarget,
  model: string,
  messages: BaseMessage[],
  options: { tools?: Array<StructuredToolInterface | ToolDefinition>; toolChoice?: string; temperature?: number; signal?: AbortSignal } = {},
): Promise<AsyncIterable<CompletionChunk>> {
  return completionsClient(endpoint).completionWithRetry(
    {
      model,
      messages: convertMessagesToCompletionsMessageParams({ messages, model }),
      ...(options.tools?.length ? { tools: options.tools.map((tool) => convertToOpenAITool(tool) as ToolDefinition) } : {}),
      ...(options.toolChoice ? { tool_choice: { type: 'function' as const, function: { name: options.toolChoice } } } : {}),
      ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
      stream: true,
      stream_options: { include_usage: true },
    },
    { signal: options.signal },
  );
}

/** Lets timers and sockets run between bursts of buffered chunks, at most every `budgetMs` of work. */
export class EventLoopYielder {
  private last = performance.now();

  constructor(private readonly budgetMs = 4) {}

  /** Resolves at once while within budget; otherwise after one turn of the event loop. */
  maybeYield(): Promise<void> | undefined {
    const now = performance.now();
    if (now - this.last < this.budgetMs) return undefined;
    return new Promise((resolve) =>
      setImmediate(() => {
        this.last = performance.now();
        resolve();
      }),
    );
  }
}

import { Readable } from 'node:stream';
import type { BaseMessage } from '@langchain/core/messages';
import type { StructuredToolInterface } from '@langchain/core/tools';
import { AsyncCaller, classifyRateLimitError } from '@langchain/core/utils/async_caller';
import { convertToOpenAITool } from '@langchain/core/utils/function_calling';
import type { OpenAI } from 'openai';
import { langchainOpenAI, openaiSdk } from './langchain-openai';
import { MODEL_ATTEMPTS } from './llm';
import { completionMessages } from './model-messages';
import { modelFetch, NodeStreamResponse } from './model-fetch';
import { CompletionChunks, type CompletionBatch } from './completion-chunks';

export type { CompletionBatch, CompletionChunk } from './completion-chunks';
export { ArgumentsDelta } from './arguments-shortcut';

/** A tool already in OpenAI's wire form. */
export type ToolDefinition = OpenAI.Chat.Completions.ChatCompletionFunctionTool;

/** Where the model is. */
export interface CompletionTarget {
  baseURL: string;
  apiKey: string;
}

/** How long one attempt may wait for the response's headers. */
const REQUEST_TIMEOUT_MS = 120_000;

const clients = new Map<string, OpenAI>();

/**
 * Statuses no retry can change: the request itself, its key or its model is wrong, the account has
 * no credit (402), or the request is larger than the plan allows at all (413).
 */
const FINAL_STATUSES = new Set([400, 401, 402, 403, 404, 409, 413, 422]);

/**
 * Retries a failed request with LangChain's policy, as every LangChain model call does: up to
 * MODEL_ATTEMPTS in all, exponential backoff, no retry of an exhausted quota or of an abort, a
 * 429 retried after its Retry-After (up to a minute). Two changes to it: a 4xx that cannot change
 * (400, 401, 402, 403, 404, 409, 413, 422) is never retried, and a 429 without Retry-After gets the normal
 * backoff retries (many providers send none) rather than going straight to the next model.
 * It runs no call itself and limits no concurrency, so one serves every endpoint.
 */
const retrying = new (class ProviderRetries extends AsyncCaller {
  constructor() {
    super({ maxRetries: MODEL_ATTEMPTS - 1 });
    // LangChain's own policy decides everything else (it throws for a failure it does not retry).
    const langchainPolicy = this.onFailedAttempt;
    this.onFailedAttempt = (error: unknown) => {
      const status = (error as { status?: unknown } | null)?.status;
      if (typeof status === 'number' && FINAL_STATUSES.has(status)) throw error;
      if (classifyRateLimitError(error)?.reason === 'headerless_429') return;
      return langchainPolicy?.(error) as unknown;
    };
  }
})();

/**
 * Endpoints that refused `stream_options` (Mistral answers 422 to it): later requests to them
 * leave it out, and their usage comes from the last chunk when they send it, else is estimated.
 */
const withoutStreamOptions = new Set<string>();

/** The `openai` SDK client for one endpoint (reused: its fetch keeps sockets alive per origin). */
function sdkClient(endpoint: CompletionTarget): OpenAI {
  const key = `${endpoint.baseURL}|${endpoint.apiKey}`;
  let client = clients.get(key);
  if (!client) {
    // The SDK's own retries are off: `retrying` decides, so a failure is classified once.
    client = new (openaiSdk().OpenAI)({
      apiKey: endpoint.apiKey,
      baseURL: endpoint.baseURL,
      fetch: modelFetch,
      maxRetries: 0,
      timeout: REQUEST_TIMEOUT_MS,
    });
    clients.set(key, client);
  }
  return client;
}

/**
 * Streams one model turn as the provider's raw chunks. The `openai` SDK opens the request (auth,
 * headers, timeout, its `APIError` for a non-2xx status), LangChain's public converters build the
 * body, LangChain's `AsyncCaller` retries, `wrapOpenAIClientError` classifies a failure as every
 * LangChain model call does (timeout, abort, context overflow, authentication, rate limit, not
 * found), and the response body is read here.
 *
 * Why not `ChatOpenAI.stream()`: it re-concatenates every chunk into a growing aggregate message,
 * which is quadratic in the number of chunks (about a second of CPU for a 200-block turn streamed
 * one token at a time), and even `_streamResponseChunks` builds a LangChain message per chunk.
 * Why not the SDK's own stream iterator either: its line decoder copies its
 * buffer on every read, which costs ~2.5 × a plain SSE split of the same bytes and grows faster
 * than the stream when the model is ahead of the reader. Why the SDK itself and
 * not @langchain/openai's client: that one is reachable only through its private members
 *.
 */
export async function streamCompletion(
  endpoint: CompletionTarget,
  model: string,
  messages: BaseMessage[],
  options: {
    tools?: Array<StructuredToolInterface | ToolDefinition>;
    toolChoice?: string;
    temperature?: number;
    /** The most output tokens the model may produce (what the budget door reserved). */
    maxTokens?: number;
    /** Send system messages as text parts marked `cache_control: {type: "ephemeral"}` (providers that accept it). */
    cacheSystem?: boolean;
    signal?: AbortSignal;
    /** How long the stream may send nothing before it is abandoned as a failed attempt; unset = no limit. */
    idleTimeoutMs?: number;
  } = {},
): Promise<AsyncIterable<CompletionBatch>> {
  const { wrapOpenAIClientError } = langchainOpenAI();
  const sdk = sdkClient(endpoint);
  const endpointKey = endpoint.baseURL;
  const request: OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming = {
    model,
    messages: options.cacheSystem ? markSystemForCaching(completionMessages(messages, model)) : completionMessages(messages, model),
    ...(options.tools?.length ? { tools: options.tools.map((tool) => convertToOpenAITool(tool) as ToolDefinition) } : {}),
    ...(options.toolChoice ? { tool_choice: { type: 'function' as const, function: { name: options.toolChoice } } } : {}),
    ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
    ...(options.maxTokens === undefined ? {} : { max_tokens: options.maxTokens }),
    stream: true,
    ...(withoutStreamOptions.has(endpointKey) ? {} : { stream_options: { include_usage: true } }),
  };
  // The raw response rather than the SDK's stream iterator: a non-2xx status still throws its APIError.
  const send = (body: OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming) =>
    retrying.callWithOptions({ signal: options.signal }, async () => {
      try {
        return await sdk.chat.completions.create(body, { signal: options.signal }).asResponse();
      } catch (error) {
        throw wrapOpenAIClientError(error);
      }
    });
  let response: Response;
  try {
    response = await send(request);
  } catch (error) {
    if (!request.stream_options || !refusesStreamOptions(error)) throw error;
    // Sent once more without it; the endpoint is remembered, so its next requests skip the refusal.
    withoutStreamOptions.add(endpointKey);
    const { stream_options: _refused, ...plain } = request;
    response = await send(plain);
  }
  return readCompletionBatches(response, options.signal, options.idleTimeoutMs);
}

/** A 400 or 422 whose message names `stream_options`: the endpoint does not take the field. */
function refusesStreamOptions(error: unknown): boolean {
  const { status, message } = (error ?? {}) as { status?: unknown; message?: unknown };
  return (status === 400 || status === 422) && typeof message === 'string' && message.includes('stream_options');
}

/** The provider sent nothing for longer than the idle timeout: the attempt failed (the next model is tried). */
export class ModelStreamStalled extends Error {
  constructor(readonly idleMs: number) {
    super(`The model stream sent nothing for ${idleMs} ms`);
    this.name = 'ModelStreamStalled';
  }
}

/**
 * The chunks of a chat completion event stream, parsed as they arrive and handed over in batches:
 * every chunk a read brought, in order, in one batch (cut every YIELD_BYTES), so the consumer pays
 * one await per read, not one per chunk. `data: [DONE]` ends it, and a chunk carrying `error` (a
 * provider failing mid-stream) throws as the SDK would. A consumer that stops early closes the
 * body, which closes the request.
 */
export async function* readCompletionBatches(
  response: Response,
  signal?: AbortSignal,
  idleTimeoutMs?: number,
): AsyncGenerator<CompletionBatch> {
  // The Node stream itself when modelFetch brought it (no web stream in between), else the body.
  const source: AsyncIterable<Uint8Array> | null = response instanceof NodeStreamResponse ? response.incoming : response.body;
  if (!source) return;
  const reader = source[Symbol.asyncIterator]();
  // One timer for the whole stream, re-armed on every read: a stall rejects the pending read.
  let stall: ((error: Error) => void) | undefined;
  const idle = idleTimeoutMs ? setTimeout(() => stall?.(new ModelStreamStalled(idleTimeoutMs)), idleTimeoutMs) : undefined;
  const next = (): Promise<IteratorResult<Uint8Array>> => {
    if (!idle) return reader.next();
    idle.refresh();
    return new Promise((resolve, reject) => {
      stall = reject;
      reader.next().then(resolve, reject);
    });
  };
  const decoder = new TextDecoder();
  const chunks = new CompletionChunks(response.headers);
  let done = false;
  try {
    while (!done) {
      const read = await next();
      chunks.push(read.done ? decoder.decode() : decoder.decode(read.value, { stream: true }), read.done);
      for (;;) {
        const batch: CompletionBatch = [];
        const end = chunks.fill(batch, YIELD_BYTES);
        // The chunks before a failed one reach the consumer first, as they would one by one.
        if (batch.length) yield batch;
        if (chunks.failed) throw chunks.failure;
        if (end === 'done') done = true;
        if (end !== 'full') break;
        // A turn of the event loop for everything else every YIELD_BYTES: a provider streaming
        // faster than it is parsed would otherwise keep the loop on this socket for dozens of reads
        // in a row, and every other reply (the event log's writes, the SSE streams, Redis) would
        // wait behind the whole burst. A stream that arrives slower is parsed with no pause.
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (read.done) break;
    }
  } catch (error) {
    // Cancelled by the caller: end quietly, as the SDK's iterator does; the caller sees its signal.
    if (signal?.aborted) return;
    throw error;
  } finally {
    clearTimeout(idle);
    // After [DONE] the rest of the body (usually only the end of the chunked response, already
    // received) is read, so the keep-alive connection goes back to the pool instead of being
    // closed: the next model request, often the very next thing the agent does, then skips a TCP
    // handshake. The turn waits for that one event-loop turn at most; a body that goes on is read
    // in the background (and closed after DRAIN_AFTER_DONE_MS). Stopping early closes the body,
    // and with it the request.
    if (done) await Promise.race([drainRest(reader, source), new Promise((resolve) => setImmediate(resolve))]);
    // A Node stream is destroyed directly: its iterator's return() would wait for a stalled read.
    else if (source instanceof Readable) source.destroy();
    // eslint-disable-next-line no-restricted-syntax -- closing a body the turn no longer reads: a failed close leaves nothing to do
    else await Promise.resolve(reader.return?.()).catch(() => undefined);
  }
}

/** How much of a stream is parsed before the event loop gets a turn for other work. */
const YIELD_BYTES = 64 * 1024;

/** How long the body may go on after [DONE] before its connection is closed instead of reused. */
const DRAIN_AFTER_DONE_MS = 1_000;

async function drainRest(reader: AsyncIterator<Uint8Array>, source: AsyncIterable<Uint8Array>): Promise<void> {
  // A Node stream is destroyed directly: its iterator's return() would wait for the pending read.
  // eslint-disable-next-line no-restricted-syntax -- closing a body the turn no longer reads: a failed close leaves nothing to do
  const close = () => (source instanceof Readable ? source.destroy() : void Promise.resolve(reader.return?.()).catch(() => undefined));
  const deadline = setTimeout(close, DRAIN_AFTER_DONE_MS);
  deadline.unref();
  try {
    while (!(await reader.next()).done);
  } catch {
    // The connection failed or was closed by the deadline: nothing to reuse.
  } finally {
    clearTimeout(deadline);
  }
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

/**
 * System messages as one text part carrying Anthropic's `cache_control` marker, which providers that
 * pass Anthropic's prompt caching through an OpenAI-compatible API (OpenRouter, LiteLLM) read; the
 * rest of the conversation is unchanged.
 */
function markSystemForCaching(messages: ReturnType<typeof completionMessages>): ReturnType<typeof completionMessages> {
  return messages.map((message) =>
    message.role === 'system' && typeof message.content === 'string'
      ? ({
          ...message,
          content: [{ type: 'text', text: message.content, cache_control: { type: 'ephemeral' } }],
        } as unknown as typeof message)
      : message,
  );
}

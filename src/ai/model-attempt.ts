import { findUnstorableText, StorableTextStream, toStorable } from '../lib/text-safety';
import type { Pricing } from '../budget/pricing';
import type { ModelCallMetrics } from './call-usage';
import { ModelCallCancelled, ModelContentFiltered, ModelOutputTruncated } from './model-errors';
import { JsonObjectScanner } from './json-object-scanner';
import { ProviderEchoCollector, type ModelMessage, type ModelToolCall } from './model-messages';
import { ArgumentsDelta, EventLoopYielder, streamCompletion, type CompletionBatch, type CompletionChunk } from './model-stream';
import type { ModelProvider, ModelRef, ModelTurn, ModelTurnRequest, ModelUsage } from './model-turn';

/** What one attempt hands back: the turn without the usage of the attempts before it. */
export type AttemptTurn = Omit<ModelTurn, 'spent'>;

/** What an attempt has done so far: whether its stream opened (HTTP 2xx), whether output went out, and what it has cost up to now. */
export interface AttemptProgress {
  opened: boolean;
  any: boolean;
  usage?: () => ModelUsage;
}

/** What every attempt of one gateway is read with: built once, with the gateway. */
export interface AttemptSettings {
  /** The prices the attempt's usage is priced with. */
  pricing: Pricing;
  /** How long the stream may send nothing before the attempt is abandoned; unset = no limit. */
  idleTimeoutMs?: number;
  /** Where the call's latency and time to first token are observed. */
  metrics?: Pick<ModelCallMetrics, 'observeModelCall'>;
}

/**
 * One call to one model: streams the completion from the provider's raw chunks (model-stream.ts),
 * hands back text deltas and each tool call as soon as its JSON closes, prices the usage (the
 * provider's figures, else an estimate) and observes the call's latency. Stops on the request's
 * `AbortSignal` with ModelCallCancelled; a `finish_reason` of `content_filter` or `length` throws
 * ModelContentFiltered or ModelOutputTruncated. `delivered` tells the caller, even when this
 * throws, whether the stream opened, whether output went out and what it cost so far. Work per
 * chunk is constant.
 */
export async function streamAttempt(
  provider: ModelProvider,
  ref: ModelRef,
  request: ModelTurnRequest,
  delivered: AttemptProgress,
  maxTokens: number | undefined,
  settings: AttemptSettings,
): Promise<AttemptTurn> {
  const started = performance.now();
  let firstTokenAt: number | undefined;
  type OpenCall = ModelToolCall & { done: boolean; scanner: JsonObjectScanner; position: number };
  const calls: OpenCall[] = [];
  const byIndex = new Map<number, OpenCall>();
  let text = '';
  // Provider text is cleaned as it streams: PostgreSQL could not store NUL or lone surrogates.
  const cleaner = new StorableTextStream();
  let reported: ReportedUsage | undefined;
  let finishReason: string | undefined;
  let open: OpenCall | undefined;
  const usageSoFar = (): ModelUsage => {
    const inputTokens = reported?.prompt_tokens ?? estimateTokens(request.messages);
    const outputTokens =
      reported?.completion_tokens ?? Math.ceil((text.length + calls.reduce((sum, call) => sum + call.args.length, 0)) / 4);
    const cachedInputTokens = cachedTokensOf(reported);
    return {
      ...ref,
      inputTokens,
      outputTokens,
      ...(cachedInputTokens ? { cachedInputTokens } : {}),
      costUsd: settings.pricing.costOf({ model: ref.model, inputTokens, outputTokens, cachedInputTokens }),
      estimated: !reported,
    };
  };
  delivered.usage = usageSoFar;
  const echoes = new ProviderEchoCollector();
  const cancelled = () => new ModelCallCancelled(usageSoFar(), request.signal?.reason);

  /** The call is complete: its arguments parsed (once: `parsed` when the caller just parsed them), validated and announced. */
  const close = (call: OpenCall, parsed?: Record<string, unknown>) => {
    if (call.done) return;
    call.done = true;
    call.parsed = parsed ?? parseObject(call.args);
    // Model output is provider data: NUL and lone surrogates (JSON escapes in the arguments) are
    // cleaned before anything stores them; `args` follows, for callers that parse it again.
    if (call.parsed && findUnstorableText(call.parsed)) {
      call.parsed = toStorable(call.parsed);
      call.args = JSON.stringify(call.parsed);
    }
    delivered.any = true;
    request.onToolCall?.(call, call.position);
  };

  /** One delta of a tool call: its first opens the call, its argument pieces are followed until the object closes. */
  const toolCallPart = (index: number | undefined, id: string | undefined, name: string | undefined, piece: string) => {
    firstTokenAt ??= performance.now();
    // Deltas of one call share its `index`; providers that send each call whole (Mistral,
    // Gemini, some Ollama versions) give no index, or the same one, but a new `id` per call.
    let call = index === undefined ? open : byIndex.get(index);
    if (!call || (id && call.id && id !== call.id)) {
      // A call of a new index leaves the others open: a provider may interleave the deltas of
      // parallel calls, each closing when its own object does (or at the end of the stream).
      if (open && (index === undefined || call)) close(open);
      call = {
        id: id ?? '',
        name: name ?? '',
        args: '',
        done: false,
        scanner: new JsonObjectScanner(),
        position: calls.length,
      };
      if (index !== undefined) byIndex.set(index, call);
      calls.push(call);
      request.onToolCallStart?.(call.position);
    }
    if (!call.id && id) call.id = id;
    if (!call.name && name) call.name = name;
    if (call.done) return;
    call.args += piece;
    open = call;
    // The scanner follows the object's structure piece by piece: the arguments are parsed once,
    // when their object closed, not per chunk. Text that does not parse then waits for the end.
    if (call.scanner.push(piece)) {
      const parsed = parseObject(call.args);
      if (parsed) close(call, parsed);
    }
  };

  /**
   * One batch of the stream: a plain function, not the loop of the async function around it, so
   * V8 optimizes it while the first stream of a process runs.
   */
  const take = (batch: CompletionBatch) => {
    for (const item of batch) {
      // An argument delta read without a parse: all the chunk carried.
      if (item instanceof ArgumentsDelta) {
        toolCallPart(item.index, undefined, undefined, item.text);
        continue;
      }
      const chunk = item as ProviderChunk;
      // Groq reports usage in `x_groq.usage` of its last chunk rather than in `usage`.
      const usage = chunk.usage ?? chunk.x_groq?.usage;
      if (usage) reported = usage;
      const choice = chunk.choices?.[0];
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      const delta = choice?.delta;
      if (!delta) continue;
      echoes.observe(delta);
      // The answer only: `reasoning_content` (DeepSeek, vLLM, ...) and thinking parts never join it.
      const content = answerText(delta.content);
      if (content) {
        firstTokenAt ??= performance.now();
        const piece = cleaner.push(content);
        if (piece) {
          text += piece;
          delivered.any = true;
          request.onText?.(piece);
        }
      }
      if (delta.tool_calls)
        for (const part of delta.tool_calls)
          toolCallPart(
            typeof part.index === 'number' ? part.index : undefined,
            part.id,
            part.function?.name,
            part.function?.arguments ?? '',
          );
    }
  };

  try {
    const stream = await streamCompletion(provider, ref.model, request.messages, {
      tools: request.tools,
      toolChoice: request.toolChoice,
      temperature: request.temperature,
      maxTokens,
      cacheSystem: request.cacheSystemPrompt === true && provider.promptCache === true,
      signal: request.signal,
      idleTimeoutMs: settings.idleTimeoutMs,
    });
    delivered.opened = true;
    const yielder = new EventLoopYielder();
    for await (const batch of stream) {
      take(batch);
      const pause = yielder.maybeYield();
      if (pause) await pause;
    }
  } catch (error) {
    if (request.signal?.aborted) throw cancelled();
    throw error;
  }
  if (request.signal?.aborted) throw cancelled();
  const tail = cleaner.end();
  if (tail) {
    text += tail;
    request.onText?.(tail);
  }
  for (const call of calls) close(call);
  calls.forEach((call, position) => (call.id ||= `call_${position}`));

  const seconds = (performance.now() - started) / 1000;
  settings.metrics?.observeModelCall(
    { provider: ref.provider, model: ref.model, purpose: request.purpose },
    seconds,
    firstTokenAt === undefined ? undefined : (firstTokenAt - started) / 1000,
  );
  if (finishReason === 'content_filter') throw new ModelContentFiltered(usageSoFar());
  if (finishReason === 'length') throw new ModelOutputTruncated(usageSoFar());
  const toolCalls = echoes.attach(calls.map(({ done: _done, scanner: _scanner, position: _position, ...call }) => call));
  return { text, toolCalls, reasoning: echoes.reasoning, usage: usageSoFar(), finishReason };
}

/**
 * A call's usage as providers report it: OpenAI's fields, with the prompt-cache hits in
 * `prompt_tokens_details.cached_tokens` (OpenAI, Azure OpenAI, and the compatible endpoints that copy
 * it) and DeepSeek's `prompt_cache_hit_tokens`.
 */
type ReportedUsage = {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
  prompt_cache_hit_tokens?: number;
};

/** The cached input tokens a provider reported, if any. */
function cachedTokensOf(usage: ReportedUsage | undefined): number | undefined {
  const cached = usage?.prompt_tokens_details?.cached_tokens ?? usage?.prompt_cache_hit_tokens;
  return typeof cached === 'number' && cached > 0 ? cached : undefined;
}

/** A stream chunk with the fields some providers add to OpenAI's shape. */
type ProviderChunk = Omit<CompletionChunk, 'choices' | 'usage'> & {
  usage?: ReportedUsage | null;
  /** Groq: the usage of the call, in the last chunk. */
  x_groq?: { usage?: ReportedUsage };
  choices?: Array<{
    finish_reason?: string | null;
    delta?: Omit<NonNullable<CompletionChunk['choices'][number]['delta']>, 'content'> & {
      /** A string, or (Mistral's Magistral) a list of parts: `text` parts are the answer, `thinking` parts are not. */
      content?: string | Array<{ type?: string; text?: unknown }> | null;
    };
  }>;
};

/** The answer text of a delta's `content`: the string itself, or the `text` parts of a part list. */
function answerText(content: string | Array<{ type?: string; text?: unknown }> | null | undefined): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) if (part?.type === 'text' && typeof part.text === 'string') text += part.text;
  return text;
}

/** The arguments as an object when they are a complete JSON object, else undefined. */
export function parseObject(text: string): Record<string, unknown> | undefined {
  if (!text.trim()) return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** About 4 characters a token, for a provider that reported no usage. */
function estimateTokens(messages: ModelMessage[]): number {
  const chars = messages.reduce(
    (sum, message) => sum + (typeof message.content === 'string' ? message.content.length : JSON.stringify(message.content).length),
    0,
  );
  return Math.ceil(chars / 4);
}

import { convertToOpenAITool } from '@langchain/core/utils/function_calling';
import { findUnstorableText, StorableTextStream, toStorable } from '../lib/text-safety';
import { Pricing, type PriceTable } from '../budget/pricing';
import { MODEL_FAILURE_TEXT, type LlmEndpoint } from './llm';
import { ProviderEchoCollector, type ModelMessage, type ModelToolCall } from './model-messages';
import { EventLoopYielder, streamCompletion, type CompletionChunk } from './model-stream';
import type { ModelTool } from './model-tools';
import type { Logger } from '../lib/logger';
import { withSpan, type ActiveSpan } from '../observability/tracing';
import { promptTokenBound, type BudgetTicket, type CallActual, type CallEstimate } from '../budget/budget-door';
import { capturedContent, genAiContentCaptured } from '../observability/genai';

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
export type ModelPurpose = 'generation' | 'chat' | 'extraction' | 'journey' | 'notes' | 'flow' | 'chatflow';

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

/** What an attempt has done so far: whether its stream opened (HTTP 2xx), whether output went out, and what it has cost up to now. */
interface AttemptProgress {
  opened: boolean;
  any: boolean;
  usage?: () => ModelUsage;
}

/**
 * How many more times a model whose stream failed once open (an error after HTTP 200, a stall) is
 * asked before the next model of the chain: the request itself was accepted, so the failure is
 * most likely the provider's passing trouble. A request refused before its stream opened has had
 * the client's retries already.
 */
const MID_STREAM_RETRIES = 1;

/** Where usage goes (the usage repository) and what is counted (Metrics); both optional. */
export interface ModelGatewayDeps {
  /** The deployment's prices (config `llm.pricing`); every call's usage is priced with them. */
  pricing: PriceTable;
  /** How long a model stream may send nothing before the attempt is abandoned (`LLM_STREAM_IDLE_TIMEOUT_MS`); unset = no limit. */
  streamIdleTimeoutMs?: number;
  /** Where a usage line that could not be written is reported. */
  logger?: Pick<Logger, 'warn'>;
  /** `max_tokens` a budgeted call reserves and is sent with (`LLM_MAX_TOKENS`); unset = no budget door. Unbudgeted calls keep the provider's default. */
  maxTokens?: number;
  /** The budget door (src/budget/budget-door.ts): a call is reserved before it is sent and settled when it ends. */
  budget?: {
    forCall(ticket: BudgetTicket, estimate: () => CallEstimate): Promise<{ id: string } | null>;
    settle(reservation: { id: string; userId: string }, actual: CallActual): Promise<void>;
  };
  usage?: {
    record(entry: UsageLine): Promise<void>;
  };
  metrics?: {
    countModelCall(
      labels: { provider: string; model: string; tier: string },
      tokens: { inputTokens: number; outputTokens: number },
      costUsd: number,
    ): void;
    observeModelCall(labels: { provider: string; model: string; purpose: string }, seconds: number, ttftSeconds?: number): void;
  };
}

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

/**
 * The one door every model call goes through (canvas turn, assistant tool loop, extraction, journey,
 * ticket notes): it streams one turn from the provider's raw chunks (model-stream.ts), hands back
 * text deltas and each tool call as soon as its JSON closes, retries (inside the client; a stream
 * that failed once open, once more on the same model), falls back across models and providers
 * (`LLM_FALLBACK`), stops on `AbortSignal`, prices the usage and records the latency metrics. Work
 * per chunk is constant.
 */
export class ModelGateway {
  private readonly providers: Map<string, ModelProvider>;
  /** What a token count costs: the prices every call of this gateway is accounted with. */
  readonly pricing: Pricing;

  constructor(
    providers: ModelProvider[],
    /** The default model, then the fallbacks tried in order. */
    readonly chain: ModelRef[],
    private readonly deps: ModelGatewayDeps,
  ) {
    this.providers = new Map(providers.map((provider) => [provider.name, provider]));
    this.pricing = Pricing.of(deps.pricing);
    if (!chain.length) throw new Error('ModelGateway: no model configured');
    for (const ref of chain) this.provider(ref);
  }

  /** One provider with its models in order (the short form: OPENAI_BASE_URL + LLM_MODEL + fallbacks). */
  static fromEndpoint(endpoint: LlmEndpoint, deps: ModelGatewayDeps): ModelGateway {
    const provider = {
      name: endpoint.provider,
      baseURL: endpoint.baseURL,
      apiKey: endpoint.apiKey,
      models: endpoint.models,
      promptCache: endpoint.promptCache,
    };
    return new ModelGateway(
      [provider],
      endpoint.models.map((model) => ({ provider: endpoint.provider, model })),
      deps,
    );
  }

  /** The default model (what a request gets when it names none). */
  get defaultModel(): ModelRef {
    return this.chain[0];
  }

  /** Whether `ref` names a configured provider and one of its models. */
  knows(ref: ModelRef): boolean {
    return this.providers.get(ref.provider)?.models.includes(ref.model) ?? false;
  }

  /** Streams one turn on the first model of the chain that works. */
  async streamTurn(request: ModelTurnRequest): Promise<ModelTurn> {
    const candidates = request.model
      ? [request.model, ...this.chain.filter((ref) => ref.provider !== request.model!.provider || ref.model !== request.model!.model)]
      : this.chain;
    const reservation = await this.reserve(request, candidates);
    // Each attempt that produced output is charged to its own model, whichever model answers in the end.
    const spent: ModelUsage[] = [];
    try {
      let lastError: unknown;
      // A provider that refused its key is not asked again for another of its models (same key).
      let refusedKey: unknown;
      const refusedProviders = new Set<string>();
      for (const ref of candidates) {
        if (refusedProviders.has(ref.provider)) continue;
        for (let retry = 0; retry <= MID_STREAM_RETRIES; retry += 1) {
          const delivered: AttemptProgress = { opened: false, any: false };
          try {
            // A budgeted call is sent the `max_tokens` it reserved; an unbudgeted one keeps the provider's default.
            const turn = await this.attempt(
              ref,
              request,
              delivered,
              capOf(request.maxTokens, reservation ? this.deps.maxTokens : undefined),
            );
            spent.push(turn.usage);
            if (request.account?.leaveLine?.(turn)) {
              this.count(request, turn.usage);
              return { ...turn, spent, unrecorded: usageLine(request, request.account, turn.usage) };
            }
            await this.account(request, turn.usage);
            return { ...turn, spent };
          } catch (error) {
            if (error instanceof ModelCallCancelled || error instanceof ModelStoppedEarly) {
              spent.push(error.usage);
              // What an aborted, filtered or cut call spent is still the user's usage.
              // The cancellation rethrown below is what the caller handles: a failed usage write is logged, not thrown over it.
              await this.account(request, error.usage).catch((failure: unknown) => this.usageNotRecorded(failure, error.usage));
              throw error;
            }
            // A model that failed after streaming output was paid for what it streamed: its own line.
            const partial = delivered.any ? delivered.usage?.() : undefined;
            if (partial) {
              spent.push(partial);
              // The model's failure handled below is what matters: a failed usage write is logged, not thrown over it.
              await this.account(request, partial).catch((failure: unknown) => this.usageNotRecorded(failure, partial));
            }
            if (request.signal?.aborted) throw error;
            if (delivered.any && !request.onRestart) throw error;
            if (delivered.any) request.onRestart?.();
            lastError = error;
            if (isAuthRefusal(error)) {
              refusedKey = error;
              refusedProviders.add(ref.provider);
              this.deps.logger?.warn(
                { err: error, provider: ref.provider, model: ref.model },
                'model provider refused the API key; fix the key of this provider',
              );
            }
            // Refused before its stream opened: the client retried it already; the next model is tried.
            if (!delivered.opened) break;
            this.deps.logger?.warn(
              { err: error, provider: ref.provider, model: ref.model, attempt: retry + 1 },
              'model stream failed once open',
            );
          }
        }
      }
      const models = candidates.map((ref) => `${ref.provider}:${ref.model}`);
      // A refused key needs an operator, whatever else failed: that is what the run ends with.
      if (refusedKey !== undefined) throw new ModelAuthFailedError(refusedKey, models, [...spent]);
      throw new ModelUnavailableError(lastError, models, [...spent]);
    } finally {
      // The reservation is replaced by what the call used (nothing, when every model failed before answering).
      if (reservation && this.deps.budget) {
        const used = spent.reduce(
          (sum, usage) => ({
            inputTokens: sum.inputTokens + usage.inputTokens,
            outputTokens: sum.outputTokens + usage.outputTokens,
            costUsd: sum.costUsd + usage.costUsd,
          }),
          { inputTokens: 0, outputTokens: 0, costUsd: 0 },
        );
        // One turn is one request, as reserved, however many models it took.
        await this.deps.budget.settle(reservation, { ...used, requests: spent.length ? 1 : 0 });
      }
    }
  }

  /**
   * Reserves the call before it is sent: the prompt counted from above, the `max_tokens` it is sent
   * with, priced at the dearest model it may fall back to. Throws 429 `budget_exceeded` when a limit
   * would be passed. Null without a door, or for a user without budget limits.
   */
  private async reserve(request: ModelTurnRequest, candidates: ModelRef[]): Promise<{ id: string; userId: string } | null> {
    const { budget } = this.deps;
    const maxTokens = this.deps.maxTokens === undefined ? undefined : capOf(request.maxTokens, this.deps.maxTokens);
    const ticket = request.budget ?? (request.account ? { userId: request.account.userId } : undefined);
    if (!budget || !ticket || maxTokens === undefined) return null;
    // Counted only for a user with limits: the door asks for the estimate once it knows.
    const estimate = (): CallEstimate => {
      const inputTokens = promptTokenBound(promptTexts(request));
      const costUsd = Math.max(...candidates.map((ref) => this.pricing.costOf({ model: ref.model, inputTokens, outputTokens: maxTokens })));
      return { inputTokens, maxTokens, costUsd, requests: 1 };
    };
    const reservation = await budget.forCall(ticket, estimate);
    return reservation && { id: reservation.id, userId: ticket.userId };
  }

  private provider(ref: ModelRef): ModelProvider {
    const provider = this.providers.get(ref.provider);
    if (!provider) throw new Error(`ModelGateway: unknown provider ${ref.provider}`);
    return provider;
  }

  /**
   * One call to one model. Tracing on, it is a client span (`chat <model>`) with the provider, the
   * purpose and, once it ended, the tokens, cost and finish reason; never the prompt or the answer.
   */
  private attempt(
    ref: ModelRef,
    request: ModelTurnRequest,
    delivered: AttemptProgress,
    maxTokens?: number,
  ): Promise<Omit<ModelTurn, 'spent'>> {
    return withSpan(
      `chat ${ref.model}`,
      'client',
      {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': ref.provider,
        'gen_ai.request.model': ref.model,
        'gen_ai.request.max_tokens': maxTokens,
        'switchboard.purpose': request.purpose,
        // Only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true, redacted (observability/genai.ts).
        'gen_ai.input.messages': genAiContentCaptured() ? capturedContent(inputMessages(request)) : undefined,
      },
      async (span) => {
        try {
          const turn = await this.streamAttempt(ref, request, delivered, maxTokens);
          if (span) recordUsage(span, turn.usage, turn.finishReason);
          if (span && genAiContentCaptured()) span.setAttributes({ 'gen_ai.output.messages': capturedContent(outputMessages(turn)) });
          return turn;
        } catch (error) {
          const usage = error instanceof ModelCallCancelled || error instanceof ModelContentFiltered ? error.usage : delivered.usage?.();
          if (span && usage) recordUsage(span, usage);
          throw error;
        }
      },
    );
  }

  private async streamAttempt(
    ref: ModelRef,
    request: ModelTurnRequest,
    delivered: AttemptProgress,
    maxTokens?: number,
  ): Promise<Omit<ModelTurn, 'spent'>> {
    const provider = this.provider(ref);
    const started = performance.now();
    let firstTokenAt: number | undefined;
    const calls: Array<ModelToolCall & { done: boolean }> = [];
    const byIndex = new Map<number, ModelToolCall & { done: boolean }>();
    let text = '';
    // Provider text is cleaned as it streams: PostgreSQL could not store NUL or lone surrogates.
    const cleaner = new StorableTextStream();
    let reported: ReportedUsage | undefined;
    let finishReason: string | undefined;
    let open: (ModelToolCall & { done: boolean }) | undefined;
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
        costUsd: this.pricing.costOf({ model: ref.model, inputTokens, outputTokens, cachedInputTokens }),
        estimated: !reported,
      };
    };
    delivered.usage = usageSoFar;
    const echoes = new ProviderEchoCollector();
    const cancelled = () => new ModelCallCancelled(usageSoFar(), request.signal?.reason);

    const close = (call: ModelToolCall & { done: boolean }) => {
      if (call.done) return;
      call.done = true;
      call.parsed = parseObject(call.args);
      // Model output is provider data: NUL and lone surrogates (JSON escapes in the arguments) are
      // cleaned before anything stores them; `args` follows, for callers that parse it again.
      if (call.parsed && findUnstorableText(call.parsed)) {
        call.parsed = toStorable(call.parsed);
        call.args = JSON.stringify(call.parsed);
      }
      delivered.any = true;
      request.onToolCall?.(call, calls.indexOf(call));
    };

    try {
      const stream = await streamCompletion(provider, ref.model, request.messages, {
        tools: request.tools,
        toolChoice: request.toolChoice,
        temperature: request.temperature,
        maxTokens,
        cacheSystem: request.cacheSystemPrompt === true && provider.promptCache === true,
        signal: request.signal,
        idleTimeoutMs: this.deps.streamIdleTimeoutMs,
      });
      delivered.opened = true;
      const yielder = new EventLoopYielder();
      for await (const chunk of stream as AsyncIterable<ProviderChunk>) {
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
        for (const part of delta.tool_calls ?? []) {
          firstTokenAt ??= performance.now();
          // Deltas of one call share its `index`; providers that send each call whole (Mistral,
          // Gemini, some Ollama versions) give no index, or the same one, but a new `id` per call.
          const index = typeof part.index === 'number' ? part.index : undefined;
          let call = index === undefined ? open : byIndex.get(index);
          if (!call || (part.id && call.id && part.id !== call.id)) {
            // A call of a new index leaves the others open: a provider may interleave the deltas of
            // parallel calls, each closing when its own object does (or at the end of the stream).
            if (open && (index === undefined || call)) close(open);
            call = { id: part.id ?? '', name: part.function?.name ?? '', args: '', done: false };
            if (index !== undefined) byIndex.set(index, call);
            calls.push(call);
            request.onToolCallStart?.(calls.length - 1);
          }
          if (!call.id && part.id) call.id = part.id;
          if (!call.name && part.function?.name) call.name = part.function.name;
          if (call.done) continue;
          const piece = part.function?.arguments ?? '';
          call.args += piece;
          open = call;
          // Only a piece that ends in `}` can close the object: one parse per call, not per chunk.
          if (piece.trimEnd().endsWith('}') && parseObject(call.args)) close(call);
        }
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
    this.deps.metrics?.observeModelCall(
      { provider: ref.provider, model: ref.model, purpose: request.purpose },
      seconds,
      firstTokenAt === undefined ? undefined : (firstTokenAt - started) / 1000,
    );
    if (finishReason === 'content_filter') throw new ModelContentFiltered(usageSoFar());
    if (finishReason === 'length') throw new ModelOutputTruncated(usageSoFar());
    const toolCalls = echoes.attach(calls.map(({ done: _done, ...call }) => call));
    return { text, toolCalls, reasoning: echoes.reasoning, usage: usageSoFar(), finishReason };
  }

  /** A call's usage line could not be written: the call's outcome stands, the lost line is logged. */
  private usageNotRecorded(error: unknown, usage: ModelUsage): void {
    this.deps.logger?.warn({ err: error, provider: usage.provider, model: usage.model }, 'usage of a model call not recorded');
  }

  private async account(request: ModelTurnRequest, usage: ModelUsage): Promise<void> {
    const { account } = request;
    if (!account) return;
    await this.deps.usage?.record(usageLine(request, account, usage));
    this.count(request, usage);
  }

  /** Counts the call's tokens and cost in the metrics (its usage line is written apart). */
  private count(request: ModelTurnRequest, usage: ModelUsage): void {
    if (!request.account) return;
    this.deps.metrics?.countModelCall({ provider: usage.provider, model: usage.model, tier: request.account.tier }, usage, usage.costUsd);
  }
}

/** The usage line of one call of `account`'s user. */
function usageLine(
  request: Pick<ModelTurnRequest, 'purpose'>,
  account: { userId: string; sessionId?: string },
  usage: ModelUsage,
): UsageLine {
  const { provider, model, inputTokens, outputTokens, costUsd, estimated } = usage;
  return {
    userId: account.userId,
    sessionId: account.sessionId,
    purpose: request.purpose,
    provider,
    model,
    inputTokens,
    outputTokens,
    costUsd,
    estimated,
  };
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

/** The texts a prompt sends, as a call's reservation counts them: each message's content and each tool's definition. */
export function promptTexts(request: Pick<ModelTurnRequest, 'messages' | 'tools'>): string[] {
  const texts = request.messages.map((message) =>
    typeof message.content === 'string' ? message.content : JSON.stringify(message.content),
  );
  for (const message of request.messages) {
    const calls = (message as { tool_calls?: unknown[] }).tool_calls;
    // An answer without calls carries an empty list, which sends nothing.
    if (calls?.length) texts.push(JSON.stringify(calls));
  }
  for (const tool of request.tools ?? []) texts.push(JSON.stringify(convertToOpenAITool(tool)));
  return texts;
}

/** The request's messages in the GenAI conventions' shape (`[{role, parts}]`), for captured spans. */
function inputMessages(request: ModelTurnRequest): unknown[] {
  const roles: Record<string, string> = { human: 'user', ai: 'assistant', system: 'system', tool: 'tool' };
  return request.messages.map((message) => {
    const calls = (message as { tool_calls?: Array<{ id?: string; name?: string; args?: unknown }> }).tool_calls;
    return {
      role: roles[message.getType()] ?? message.getType(),
      parts: [
        ...(message.content
          ? [{ type: 'text', content: typeof message.content === 'string' ? message.content : JSON.stringify(message.content) }]
          : []),
        ...(calls ?? []).map((call) => ({ type: 'tool_call', id: call.id, name: call.name, arguments: call.args })),
      ],
    };
  });
}

/** The answer in the GenAI conventions' shape, for captured spans. */
function outputMessages(turn: Pick<ModelTurn, 'text' | 'toolCalls' | 'finishReason'>): unknown[] {
  return [
    {
      role: 'assistant',
      parts: [
        ...(turn.text ? [{ type: 'text', content: turn.text }] : []),
        ...(turn.toolCalls ?? []).map((call) => ({ type: 'tool_call', id: call.id, name: call.name, arguments: call.args })),
      ],
      finish_reason: turn.finishReason,
    },
  ];
}

/** A model call's usage on its span (OpenTelemetry's generative-AI attribute names). */
function recordUsage(span: ActiveSpan, usage: ModelUsage, finishReason?: string): void {
  span.setAttributes({
    'gen_ai.usage.input_tokens': usage.inputTokens,
    'gen_ai.usage.output_tokens': usage.outputTokens,
    'gen_ai.response.finish_reasons': finishReason === undefined ? undefined : [finishReason],
    'switchboard.cost_usd': usage.costUsd,
    'switchboard.usage_estimated': usage.estimated,
  });
}

/** About 4 characters a token, for a provider that reported no usage. */
function estimateTokens(messages: ModelMessage[]): number {
  const chars = messages.reduce(
    (sum, message) => sum + (typeof message.content === 'string' ? message.content.length : JSON.stringify(message.content).length),
    0,
  );
  return Math.ceil(chars / 4);
}

/** The lower of two output caps; either may be unset. */
function capOf(requested: number | undefined, configured: number | undefined): number | undefined {
  if (requested === undefined) return configured;
  return configured === undefined ? requested : Math.min(requested, configured);
}

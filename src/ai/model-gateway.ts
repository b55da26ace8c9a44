import { Pricing, type PriceTable } from '../budget/pricing';
import type { Logger } from '../lib/logger';
import { CallBudget, type CallBudgetDoor } from './call-budget';
import { tracedCall } from './call-span';
import { CallUsage, type ModelCallMetrics, type UsageLedger } from './call-usage';
import type { LlmEndpoint } from './llm';
import { streamAttempt, type AttemptProgress, type AttemptSettings, type AttemptTurn } from './model-attempt';
import { candidatesFor, ModelFallback } from './model-fallback';
import type { ModelProvider, ModelRef, ModelTurn, ModelTurnRequest, ModelUsage } from './model-turn';

export type {
  ModelProvider,
  ModelPurpose,
  ModelRef,
  ModelToolCall,
  ModelTurn,
  ModelTurnRequest,
  ModelUsage,
  UsageLine,
} from './model-turn';
export {
  isAuthRefusal,
  ModelAuthFailedError,
  ModelCallCancelled,
  ModelContentFiltered,
  ModelOutputTruncated,
  ModelStoppedEarly,
  ModelUnavailableError,
} from './model-errors';
export { parseObject } from './model-attempt';
export { promptTexts } from './call-budget';

/** Where usage goes (the usage repository) and what is counted (Metrics); both optional. */
export interface ModelGatewayDeps {
  /** The deployment's prices (config `llm.pricing`); every call's usage is priced with them. */
  pricing: PriceTable;
  /** How long a model stream may send nothing before the attempt is abandoned (`LLM_STREAM_IDLE_TIMEOUT_MS`); unset = no limit. */
  streamIdleTimeoutMs?: number;
  /** Where a usage line that could not be written, a refused key and a stream that failed once open are reported. */
  logger?: Pick<Logger, 'warn'>;
  /** `max_tokens` a budgeted call reserves and is sent with (`LLM_MAX_TOKENS`); unset = no budget door. Unbudgeted calls keep the provider's default. */
  maxTokens?: number;
  /** The budget door (src/budget/budget-door.ts): a call is reserved before it is sent and settled when it ends. */
  budget?: CallBudgetDoor;
  usage?: UsageLedger;
  metrics?: ModelCallMetrics;
}

/**
 * The one door every model call goes through (canvas turn, assistant tool loop, extraction, journey,
 * ticket notes). It puts together the modules beside it: the budget reserved before the turn and
 * settled after it (call-budget.ts), fallback across models and providers (`LLM_FALLBACK`) with the
 * retry of a stream that failed once open (model-fallback.ts), each attempt traced (call-span.ts)
 * and streamed from the provider's raw chunks (model-attempt.ts), and the usage of every attempt
 * recorded and counted (call-usage.ts). It stops on `AbortSignal`. Work per chunk is constant.
 */
export class ModelGateway {
  private readonly providers: Map<string, ModelProvider>;
  /** What a token count costs: the prices every call of this gateway is accounted with. */
  readonly pricing: Pricing;
  private readonly budget: CallBudget;
  private readonly fallback: ModelFallback;
  private readonly attemptSettings: AttemptSettings;

  constructor(
    providers: ModelProvider[],
    /** The default model, then the fallbacks tried in order. */
    readonly chain: ModelRef[],
    deps: ModelGatewayDeps,
  ) {
    this.providers = new Map(providers.map((provider) => [provider.name, provider]));
    this.pricing = Pricing.of(deps.pricing);
    if (!chain.length) throw new Error('ModelGateway: no model configured');
    for (const ref of chain) this.provider(ref);
    this.budget = new CallBudget(this.pricing, deps.budget, deps.maxTokens);
    const usage = new CallUsage({ ledger: deps.usage, metrics: deps.metrics, logger: deps.logger });
    this.fallback = new ModelFallback(usage, deps.logger);
    this.attemptSettings = { pricing: this.pricing, idleTimeoutMs: deps.streamIdleTimeoutMs, metrics: deps.metrics };
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
    const candidates = candidatesFor(request, this.chain);
    const reservation = await this.budget.reserve(request, candidates);
    const maxTokens = this.budget.sentMaxTokens(request, reservation);
    // Each attempt that produced output is charged to its own model, whichever model answers in the end.
    const spent: ModelUsage[] = [];
    try {
      return await this.fallback.firstAnswer(candidates, request, spent, (ref, delivered) =>
        this.attempt(ref, request, delivered, maxTokens),
      );
    } finally {
      // The reservation is replaced by what the call used (nothing, when every model failed before answering).
      if (reservation) await this.budget.settle(reservation, spent);
    }
  }

  private provider(ref: ModelRef): ModelProvider {
    const provider = this.providers.get(ref.provider);
    if (!provider) throw new Error(`ModelGateway: unknown provider ${ref.provider}`);
    return provider;
  }

  /** One call to one model, in its span. */
  private attempt(
    ref: ModelRef,
    request: ModelTurnRequest,
    delivered: AttemptProgress,
    maxTokens: number | undefined,
  ): Promise<AttemptTurn> {
    return tracedCall(ref, request, delivered, maxTokens, () =>
      streamAttempt(this.provider(ref), ref, request, delivered, maxTokens, this.attemptSettings),
    );
  }
}

import { calcPrice } from '@pydantic/genai-prices';
import type { ModelPrice } from '../../config/pricing';
import { countCacheLookup } from '../lib/cache-stats';

/** The tokens of one model call (or of one turn's calls on the same model). */
export interface TokenCount {
  model: string;
  inputTokens: number;
  outputTokens: number;
  /** Of `inputTokens`, those the provider read from its prompt cache (billed at the cached rate where it has one). */
  cachedInputTokens?: number;
}

/**
 * A deployment's own prices, USD per million tokens: `LLM_PRICING`, the demo model and the models of
 * self-hosted providers (free). A model not listed is priced from the catalog.
 */
export type PriceTable = Readonly<Record<string, ModelPrice>>;

const byTable = new WeakMap<PriceTable, Pricing>();

/**
 * The one place a token count becomes US dollars. The model gateway prices every call through it,
 * and so does everything that records usage without a gateway call (the embeddings worker, a
 * generation's persist step and its cancel).
 *
 * A model's price is the deployment's own (`LLM_PRICING`, which wins) or else the maintained
 * catalog's (@pydantic/genai-prices: OpenAI, Azure, Anthropic, Gemini, Groq, DeepSeek, Mistral,
 * OpenRouter and more, with cached-input rates). A model neither knows costs 0 and {@link knows}
 * says so: the operator is warned at start and in `/readyz` when a cost limit could not bind on it.
 * Its usage is still recorded with its token counts, so a price added later can be applied to history.
 *
 * Import-light on purpose (no model client): the API process prices the usage of a cancel too.
 */
export class Pricing {
  /** The catalog's price per model id, looked up once (null: the catalog does not know it). */
  private readonly catalog = new Map<string, ModelPrice | null>();

  constructor(private readonly table: PriceTable) {}

  /** The pricing of `table`, one per table object (the config's `llm.pricing`), so callers need not hold it. */
  static of(table: PriceTable): Pricing {
    let pricing = byTable.get(table);
    if (!pricing) byTable.set(table, (pricing = new Pricing(table)));
    return pricing;
  }

  /** Cost in USD of `usage`; 0 for a model without a price. */
  costOf(usage: TokenCount): number {
    const price = this.priceOf(usage.model);
    if (!price) return 0;
    const cached = Math.min(Math.max(usage.cachedInputTokens ?? 0, 0), usage.inputTokens);
    const cachedRate = price.cachedInputPerMillion ?? price.inputPerMillion;
    return (
      ((usage.inputTokens - cached) * price.inputPerMillion + cached * cachedRate + usage.outputTokens * price.outputPerMillion) / 1_000_000
    );
  }

  /** Whether `model` has a price (the deployment's or the catalog's). */
  knows(model: string): boolean {
    return this.priceOf(model) !== null;
  }

  /** The price of `model`: the deployment's table first, then the catalog; null when neither has one. */
  priceOf(model: string): ModelPrice | null {
    const own = Object.hasOwn(this.table, model) ? this.table[model] : undefined;
    if (own) return own;
    let found = this.catalog.get(model);
    countCacheLookup('model_prices', found !== undefined);
    if (found === undefined) this.catalog.set(model, (found = catalogPrice(model)));
    return found;
  }
}

/**
 * The catalog's providers a model id is looked up under when its id alone does not find it, the
 * model makers first and the resellers (whose ids repeat the makers') last.
 */
const CATALOG_PROVIDERS = [
  'openai',
  'anthropic',
  'google',
  'mistral',
  'deepseek',
  'x-ai',
  'cohere',
  'groq',
  'cerebras',
  'together',
  'fireworks',
  'azure',
  'aws',
  'perplexity',
  'openrouter',
];

/**
 * A model's per-million prices from the catalog, read off what it charges for a thousand tokens of
 * each kind: below every long-context tier, so a model priced higher past 128k or 200k tokens of
 * prompt is priced at its base rate (such prompts are priced low, never a short one high); null
 * when the catalog knows no such model.
 */
function catalogPrice(model: string): ModelPrice | null {
  const sample = 1_000;
  const perMillion = (price: { total_price: number } | null | undefined) => (price ? (price.total_price * 1_000_000) / sample : 0);
  // The catalog finds some models by their id alone; the others under the provider that sells them.
  const providerId = [undefined, ...CATALOG_PROVIDERS].find((id) =>
    calcPrice({ input_tokens: sample }, model, id ? { providerId: id } : undefined),
  );
  const options = providerId ? { providerId } : undefined;
  const input = calcPrice({ input_tokens: sample }, model, options);
  if (!input) return null;
  const cached = calcPrice({ input_tokens: sample, cache_read_tokens: sample }, model, options);
  return {
    inputPerMillion: perMillion(input),
    outputPerMillion: perMillion(calcPrice({ output_tokens: sample }, model, options)),
    cachedInputPerMillion: cached ? perMillion(cached) : perMillion(input),
  };
}

/** What the operator is told, at start and in `/readyz`, about models {@link unpricedUnderCostLimit} lists. */
export const UNPRICED_WARNING =
  'Models without a price: a tier limits cost (costUsdPerMonth) but their calls count $0 against it; give them a price in LLM_PRICING';

/**
 * The models a deployment may call that have no price, when a tier limits cost: their calls would
 * count $0 against `costUsdPerMonth`. Empty when no tier has a cost limit (per-user cost limits set
 * at runtime are not seen here).
 */
export function unpricedUnderCostLimit(config: {
  llm: {
    pricing: PriceTable;
    model: string;
    fallbackModels: readonly string[];
    embeddingModel: string;
    providers: ReadonlyArray<{ models: readonly string[] }>;
    fallback: ReadonlyArray<{ model: string }>;
  };
  tiers: Readonly<Record<string, { costUsdPerMonth: number | null }>>;
}): string[] {
  if (!Object.values(config.tiers).some((tier) => tier.costUsdPerMonth !== null)) return [];
  const { llm } = config;
  const models = new Set([
    llm.model,
    ...llm.fallbackModels,
    llm.embeddingModel,
    ...llm.providers.flatMap((provider) => provider.models),
    ...llm.fallback.map((ref) => ref.model),
  ]);
  const pricing = Pricing.of(llm.pricing);
  return [...models].filter((model) => !pricing.knows(model)).sort();
}

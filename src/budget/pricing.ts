import type { ModelPrice } from '../../config/pricing';

/** The tokens of one model call (or of one turn's calls on the same model). */
export interface TokenCount {
  model: string;
  inputTokens: number;
  outputTokens: number;
}

/** A deployment's price table: `LLM_PRICING` over the list prices (config/pricing.ts), USD per million tokens. */
export type PriceTable = Readonly<Record<string, ModelPrice>>;

const byTable = new WeakMap<PriceTable, Pricing>();

/**
 * The one place a token count becomes US dollars. The model gateway prices every call through it,
 * and so does everything that records usage without a gateway call (the embeddings worker, a
 * generation's persist step and its cancel). A model the table does not list costs 0 (local
 * models, the demo model): its usage is still recorded with its token counts, so a price added
 * later can be applied to history.
 *
 * Import-light on purpose (no model client): the API process prices the usage of a cancel too.
 */
export class Pricing {
  constructor(private readonly table: PriceTable) {}

  /** The pricing of `table`, one per table object (the config's `llm.pricing`), so callers need not hold it. */
  static of(table: PriceTable): Pricing {
    let pricing = byTable.get(table);
    if (!pricing) byTable.set(table, (pricing = new Pricing(table)));
    return pricing;
  }

  /** Cost in USD of `usage`; 0 for a model without a price. */
  costOf(usage: TokenCount): number {
    const price = this.table[usage.model];
    if (!price) return 0;
    return (usage.inputTokens * price.inputPerMillion + usage.outputTokens * price.outputPerMillion) / 1_000_000;
  }
}

/** USD per one million tokens. */
export interface ModelPrice {
  inputPerMillion: number;
  outputPerMillion: number;
}

/**
 * Known list prices (src/budget/pricing.ts turns token counts into USD with them). Models not listed cost 0 (local models, the demo model) — the usage is still
 * recorded with its token counts, so a price can be added later and applied to history.
 * Overridable through `LLM_PRICING` (JSON of the same shape).
 */
export const DEFAULT_PRICING: Record<string, ModelPrice> = {
  'gpt-4o': { inputPerMillion: 2.5, outputPerMillion: 10 },
  'gpt-4o-mini': { inputPerMillion: 0.15, outputPerMillion: 0.6 },
  'gpt-4.1': { inputPerMillion: 2, outputPerMillion: 8 },
  'gpt-4.1-mini': { inputPerMillion: 0.4, outputPerMillion: 1.6 },
  'gpt-4.1-nano': { inputPerMillion: 0.1, outputPerMillion: 0.4 },
  'text-embedding-3-small': { inputPerMillion: 0.02, outputPerMillion: 0 },
  'text-embedding-3-large': { inputPerMillion: 0.13, outputPerMillion: 0 },
  demo: { inputPerMillion: 0, outputPerMillion: 0 },
};

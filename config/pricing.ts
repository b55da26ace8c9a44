/** USD per one million tokens. */
export interface ModelPrice {
  inputPerMillion: number;
  outputPerMillion: number;
  /** Input tokens read from the provider's prompt cache; unset = the input price. */
  cachedInputPerMillion?: number;
}

/**
 * The deployment's own prices before `LLM_PRICING` (JSON of the same shape, which wins): the demo
 * model is free. Every other model is priced from the maintained catalog (src/budget/pricing.ts), the
 * models of self-hosted providers (kind `ollama`, `lmstudio`, `vllm`) are free, and a model neither
 * knows costs 0 with a warning at start and in `/readyz` when a tier limits cost.
 */
export const DEFAULT_PRICING: Record<string, ModelPrice> = {
  demo: { inputPerMillion: 0, outputPerMillion: 0 },
};

import { loadConfig } from '../../config';
import { Pricing, unpricedUnderCostLimit } from '../../src/budget/pricing';

const million = { inputTokens: 1_000_000, outputTokens: 1_000_000 };

/** Prices: the deployment's own, then the maintained catalog; a model neither knows is reported, not silently free. */
describe('pricing', () => {
  test('the catalog prices the cloud providers’ models: OpenAI, Azure, Anthropic, Gemini, Groq, DeepSeek, Mistral, OpenRouter', () => {
    const pricing = Pricing.of(loadConfig({}).llm.pricing);
    for (const model of [
      'gpt-4o-mini',
      'gpt-4.1',
      'claude-sonnet-4-5',
      'gemini-2.5-flash',
      'llama-3.3-70b-versatile',
      'deepseek-chat',
      'mistral-large-latest',
      'openai/gpt-4o-mini',
      'text-embedding-3-small',
    ]) {
      expect({ model, known: pricing.knows(model) }).toEqual({ model, known: true });
      expect(pricing.costOf({ model, inputTokens: 1_000_000, outputTokens: 0 })).toBeGreaterThan(0);
    }
    // OpenAI's list price of gpt-4o-mini, USD per million tokens.
    expect(pricing.priceOf('gpt-4o-mini')).toEqual({ inputPerMillion: 0.15, outputPerMillion: 0.6, cachedInputPerMillion: 0.075 });
    expect(pricing.costOf({ model: 'gpt-4o-mini', ...million })).toBeCloseTo(0.75, 10);
  });

  test('a model priced higher past a long-context threshold is priced at its base rate, and prototype names price nothing', () => {
    const pricing = Pricing.of(loadConfig({}).llm.pricing);
    // Anthropic's and Google's list prices below their 200k-token tiers, USD per million tokens.
    expect(pricing.priceOf('claude-sonnet-4-5')).toEqual({ inputPerMillion: 3, outputPerMillion: 15, cachedInputPerMillion: 0.3 });
    expect(pricing.priceOf('gemini-2.5-pro')).toMatchObject({ inputPerMillion: 1.25, outputPerMillion: 10 });
    expect(pricing.priceOf('constructor')).toBeNull();
    expect(pricing.priceOf('__proto__')).toBeNull();
  });

  test('cached input tokens cost the cached rate; the rest of the input the full one', () => {
    const pricing = Pricing.of(loadConfig({}).llm.pricing);
    const full = pricing.costOf({ model: 'gpt-4o-mini', inputTokens: 1_000_000, outputTokens: 0 });
    const cached = pricing.costOf({ model: 'gpt-4o-mini', inputTokens: 1_000_000, outputTokens: 0, cachedInputTokens: 800_000 });
    expect(cached).toBeCloseTo(0.2 * 0.15 + 0.8 * 0.075, 10);
    expect(cached).toBeLessThan(full);
    // More cached than sent is read as all of it, never a negative price.
    expect(pricing.costOf({ model: 'gpt-4o-mini', inputTokens: 10, outputTokens: 0, cachedInputTokens: 50 })).toBeGreaterThanOrEqual(0);
  });

  test('LLM_PRICING wins over the catalog; self-hosted providers’ models and the demo model are free', () => {
    const config = loadConfig({
      LLM_PRICING: JSON.stringify({ 'gpt-4o-mini': { inputPerMillion: 1, outputPerMillion: 2 } }),
      LLM_PROVIDERS: JSON.stringify([
        { name: 'cloud', baseUrl: 'https://api.openai.com/v1', models: ['gpt-4o-mini'] },
        { name: 'lan', kind: 'ollama', baseUrl: 'http://127.0.0.1:11434/v1', models: ['llama-3.3-70b-versatile'] },
      ]),
    });
    const pricing = Pricing.of(config.llm.pricing);
    expect(pricing.costOf({ model: 'gpt-4o-mini', ...million })).toBe(3);
    // Named like Groq's cloud model, but served by the operator's own Ollama: no per-token price.
    expect(pricing.costOf({ model: 'llama-3.3-70b-versatile', ...million })).toBe(0);
    expect(pricing.knows('llama-3.3-70b-versatile')).toBe(true);
    expect(pricing.costOf({ model: 'demo', ...million })).toBe(0);
  });

  test('a model nobody prices costs 0 and is listed for the operator when a tier limits cost', () => {
    const env = {
      LLM_PROVIDERS: JSON.stringify([
        { name: 'private', baseUrl: 'https://llm.example.com/v1', models: ['acme-private-7b', 'gpt-4o-mini'] },
      ]),
    };
    const pricing = Pricing.of(loadConfig(env).llm.pricing);
    expect(pricing.knows('acme-private-7b')).toBe(false);
    expect(pricing.costOf({ model: 'acme-private-7b', ...million })).toBe(0);
    // No cost limit anywhere: nothing to warn about.
    expect(unpricedUnderCostLimit(loadConfig(env))).toEqual([]);
    const limited = loadConfig({ ...env, TIER_LIMITS: JSON.stringify({ free: { costUsdPerMonth: 5 } }) });
    expect(unpricedUnderCostLimit(limited)).toEqual(['acme-private-7b']);
    expect(unpricedUnderCostLimit(limited)).toContain('acme-private-7b');
    expect(unpricedUnderCostLimit(limited)).not.toContain('gpt-4o-mini');
    // A price in LLM_PRICING takes it off the list.
    const priced = loadConfig({
      ...env,
      TIER_LIMITS: JSON.stringify({ free: { costUsdPerMonth: 5 } }),
      LLM_PRICING: JSON.stringify({ 'acme-private-7b': { inputPerMillion: 0.1, outputPerMillion: 0.2 } }),
    });
    expect(unpricedUnderCostLimit(priced)).not.toContain('acme-private-7b');
  });
});

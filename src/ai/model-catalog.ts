import type { Config } from '../../config';
import type { LlmEndpoint } from './llm';

/** A model a request may choose: `{provider, model}`. */
export interface ModelChoice {
  provider: string;
  model: string;
}

/**
 * Which provider:model pairs this deployment serves, for validating a request's choice on the API
 * side (which never loads the model client). The demo model is provider `demo`, model `demo`.
 */
export class ModelCatalog {
  constructor(private readonly models: ReadonlyMap<string, readonly string[]>) {}

  static of(config: Pick<Config, 'llm'>, endpoint?: LlmEndpoint): ModelCatalog {
    if (endpoint) return new ModelCatalog(new Map([[endpoint.provider, endpoint.models]]));
    if (config.llm.providers.length)
      return new ModelCatalog(new Map(config.llm.providers.map((provider) => [provider.name, provider.models])));
    return new ModelCatalog(new Map([['demo', ['demo']]]));
  }

  /** Every provider:model pair served, in configuration order (what a console offers to choose from). */
  list(): ModelChoice[] {
    return [...this.models].flatMap(([provider, models]) => models.map((model) => ({ provider, model })));
  }

  knows(choice: ModelChoice): boolean {
    return this.models.get(choice.provider)?.includes(choice.model) ?? false;
  }
}

import type { OpenAIEmbeddings } from '@langchain/openai';
import { langchainOpenAI } from './langchain-openai';
import type { LlmEndpoint } from './llm';
import { Pricing, type PriceTable } from '../budget/pricing';
import { promptTokenBound, type BudgetTicket, type CallEstimate } from '../budget/budget-door';
import { outboundRoute } from '../lib/outbound-proxy';
import { withSpan } from '../observability/tracing';

/** About four characters per token for English text: the usual rule of thumb when a count is missing. */
const estimateTokens = (text: string) => Math.ceil(text.length / 4);

/**
 * What embedding `texts` may cost against a budget: their tokens counted from above, no output and
 * no request (embeddings count tokens only), priced as input of the embedding model.
 */
export function embeddingEstimate(pricing: PriceTable, model: string, texts: readonly string[]): CallEstimate {
  const inputTokens = promptTokenBound(texts);
  return { inputTokens, maxTokens: 0, costUsd: Pricing.of(pricing).costOf({ model, inputTokens, outputTokens: 0 }), requests: 0 };
}

/** One model call's vectors, in input order, and the input tokens each text accounts for. */
export interface EmbeddedBatch {
  vectors: number[][];
  /** Per text; the endpoint's total split by text length, or estimated when it reports none. */
  inputTokens: number[];
}

/** The process's embedding model behind one micro-batcher shared by a worker's concurrent jobs. */
export interface BatchedEmbedder {
  provider: string;
  model: string;
  /** Embeds one text; with a ticket, its tokens are reserved against that user's budget first (429 `budget_exceeded`) and settled after. */
  embed(text: string, budget?: BudgetTicket): Promise<{ vector: number[]; inputTokens: number }>;
}

/** Embeds a batch of texts in one model call. */
export interface TextEmbedder {
  readonly provider: string;
  readonly model: string;
  embed(texts: string[]): Promise<EmbeddedBatch>;
}

/**
 * `OpenAIEmbeddings` that also returns the endpoint's token usage: `embedDocuments` drops it, so
 * this makes the same single retried request (`embeddingWithRetry`) and keeps `usage`. Batches here
 * never exceed LangChain's `batchSize` (512), so one request is what `embedDocuments` would send.
 */
interface UsageReportingEmbeddings extends OpenAIEmbeddings {
  embedWithUsage(texts: string[]): Promise<{ vectors: number[][]; promptTokens?: number }>;
}

/** Made on first use (@langchain/openai is loaded then, not at start-up). */
let UsageReporting: (new (fields: ConstructorParameters<typeof OpenAIEmbeddings>[0]) => UsageReportingEmbeddings) | undefined;

function usageReportingEmbeddings(fields: ConstructorParameters<typeof OpenAIEmbeddings>[0]): UsageReportingEmbeddings {
  UsageReporting ??= class extends langchainOpenAI().OpenAIEmbeddings {
    async embedWithUsage(texts: string[]): Promise<{ vectors: number[][]; promptTokens?: number }> {
      const input = this.stripNewLines ? texts.map((text) => text.replace(/\n/g, ' ')) : texts;
      const response = await this.embeddingWithRetry({
        model: this.model,
        input,
        ...(this.dimensions ? { dimensions: this.dimensions } : {}),
        // Plain floats, asked for explicitly: without it the SDK asks for base64 and decodes whatever
        // comes back as base64, and servers that always answer floats (Ollama, LM Studio) then read as zeros.
        encoding_format: 'float',
      });
      const vectors = [...response.data].sort((a, b) => a.index - b.index).map((item) => embeddingVector(item.embedding));
      if (vectors.length !== texts.length)
        throw new Error(`Embedding endpoint returned ${vectors.length} vector(s) for ${texts.length} text(s)`);
      return { vectors, promptTokens: response.usage?.prompt_tokens };
    }
  };
  return new UsageReporting(fields);
}

/**
 * One embedding as numbers, whichever form the endpoint answered in: a JSON array of floats, or a
 * base64 string of little-endian float32 (what an endpoint that ignores `encoding_format` may send).
 * Anything else is an error rather than a vector of zeros.
 */
export function embeddingVector(embedding: unknown): number[] {
  if (Array.isArray(embedding) && embedding.every((value) => typeof value === 'number' && Number.isFinite(value)))
    return embedding as number[];
  if (typeof embedding === 'string' && embedding.length) {
    const bytes = Buffer.from(embedding, 'base64');
    if (bytes.length && bytes.length % 4 === 0) {
      const vector = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
      if (vector.every(Number.isFinite)) return vector;
    }
  }
  throw new Error('Embedding endpoint returned an embedding that is neither a float array nor base64 float32');
}

/** Splits `total` tokens over texts in proportion to their estimated tokens; the parts add up to `total`. */
export function splitTokens(texts: string[], total: number | undefined): number[] {
  const estimates = texts.map(estimateTokens);
  if (total === undefined || !Number.isFinite(total) || total < 0) return estimates;
  const sum = estimates.reduce((a, b) => a + b, 0);
  if (sum === 0) return texts.map((_, i) => (i === 0 ? Math.round(total) : 0));
  let given = 0;
  return estimates.map((estimate, i) => {
    const share = i === estimates.length - 1 ? Math.round(total) - given : Math.floor((total * estimate) / sum);
    given += share;
    return share;
  });
}

/**
 * The embedding model at `endpoint`. A failed call is retried once here; the queue's job retries
 * (with backoff, each job alone) handle longer outages.
 */
export function createTextEmbedder(endpoint: LlmEndpoint, model: string): TextEmbedder {
  let client: UsageReportingEmbeddings | undefined;
  return {
    provider: endpoint.provider,
    model,
    embed: async (texts) => {
      client ??= usageReportingEmbeddings({
        model,
        apiKey: endpoint.apiKey,
        // Through the outbound proxy when one is configured (src/lib/outbound-proxy.ts).
        configuration: {
          baseURL: endpoint.baseURL,
          fetch: (input: string | URL | Request, init?: RequestInit) => outboundRoute().fetch(input, init),
        },
        maxRetries: 1,
        timeout: 20_000,
      });
      const embedder = client;
      // One `embeddings` client span per request (OpenTelemetry's GenAI conventions); never the texts.
      return withSpan(
        `embeddings ${model}`,
        'client',
        {
          'gen_ai.operation.name': 'embeddings',
          'gen_ai.provider.name': endpoint.provider,
          'gen_ai.request.model': model,
          'gen_ai.embeddings.input_count': texts.length,
        },
        async (span) => {
          const { vectors, promptTokens } = await embedder.embedWithUsage(texts);
          const inputTokens = splitTokens(texts, promptTokens);
          span?.setAttributes({
            'gen_ai.usage.input_tokens': inputTokens.reduce((sum, n) => sum + n, 0),
            'gen_ai.embeddings.dimension.count': vectors[0]?.length,
            'switchboard.usage_estimated': promptTokens === undefined,
          });
          return { vectors, inputTokens };
        },
      );
    },
  };
}

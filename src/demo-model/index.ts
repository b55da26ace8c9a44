import { startOpenAICompatibleServer, type OpenAICompatibleServer } from './openai-compatible-server';
import { demoEmbedder } from './embeddings';
import { demoResponder } from './responder';

export { demoResponder } from './responder';
export { demoEmbedder, embedText, cosineSimilarity } from './embeddings';

/** Options of {@link startDemoLLM}. */
export interface DemoLLMOptions {
  /** Pause per streamed token / tool call, so the demo feels like a live model. */
  delayMs?: number;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
}

/**
 * Starts the offline demo model: an in-process OpenAI-compatible server, so workers use the real
 * ChatOpenAI client unchanged when no LLM is configured. Responses are labelled `demo`.
 */
export function startDemoLLM(options: DemoLLMOptions = {}): Promise<OpenAICompatibleServer> {
  return startOpenAICompatibleServer({
    responder: demoResponder,
    embedder: demoEmbedder,
    modelLabel: 'demo',
    delayMs: options.delayMs,
    host: options.host,
    port: options.port,
  });
}

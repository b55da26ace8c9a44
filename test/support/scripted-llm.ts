import {
  messageText,
  startOpenAICompatibleServer,
  type ChatRequest,
  type ChatResponder,
  type ChatTurn,
  type OpenAICompatibleServer,
  type OpenAICompatibleServerOptions,
} from '../../src/demo-model/openai-compatible-server';
import { demoEmbedder } from '../../src/demo-model/embeddings';

/** A test LLM server that plays scripted turns. */
export interface ScriptedLLM extends OpenAICompatibleServer {
  /** Appends turns to play after the ones already queued. */
  push(...turns: ChatTurn[]): void;
  /** Chat requests received so far (embeddings requests left out). */
  chatRequests(): ChatRequest[];
}

/**
 * Starts an OpenAI-compatible server for tests. Queued turns are played in order, one per chat
 * request; once they run out it asks `script` when that is a responder, else answers `{text:'done'}`.
 * Embeddings use the demo embedder unless `options.embedder` says otherwise.
 */
export async function startScriptedLLM(
  script: ChatTurn[] | ChatResponder = [],
  options: Partial<Omit<OpenAICompatibleServerOptions, 'responder'>> = {},
): Promise<ScriptedLLM> {
  const queue: ChatTurn[] = Array.isArray(script) ? [...script] : [];
  const fallback: ChatResponder = typeof script === 'function' ? script : () => ({ text: 'done' });
  const server = await startOpenAICompatibleServer({
    embedder: demoEmbedder,
    recordRequests: true,
    ...options,
    responder: (request) => queue.shift() ?? fallback(request),
  });
  return {
    ...server,
    push: (...turns) => {
      queue.push(...turns);
    },
    chatRequests: () => server.requests.flatMap((r) => (r.kind === 'chat' ? [r.body] : [])),
  };
}

/**
 * A tool result as the tool gave it: the text inside the `<untrusted_data source="…">` envelope
 * every tool result reaches the model in (an error result, never framed, as it is).
 */
export function unframed(text: string): string {
  return /^<untrusted_data source="[^"]*">\n([\s\S]*)\n<\/untrusted_data>$/.exec(text)?.[1] ?? text;
}

/** The tool results of a chat request, out of their envelopes, in order. */
export const toolResultTexts = (request: ChatRequest): string[] =>
  request.messages.filter((m) => m.role === 'tool').map((m) => unframed(messageText(m)));

import { startOpenAICompatibleServer, type ChatRequest, type OpenAICompatibleServer } from '../../src/demo-model/openai-compatible-server';
import type { LlmEndpoint } from '../../src/ai/llm';
import { now, type Stamp } from './timing';

/** Characters of text in every benchmark paragraph (a realistic paragraph, ~0.5 KB per block as JSON). */
export const PARAGRAPH_CHARS = 200;

/** Paragraph `index` of a generation: deterministic, always PARAGRAPH_CHARS long. */
export function paragraph(index: number): string {
  const head = `Paragraph ${index + 1} of the quarterly plan: `;
  const body = 'ship the beta, invite the press, book the venue and review the budget. ';
  return (head + body.repeat(4)).slice(0, PARAGRAPH_CHARS);
}

export interface BulkModel extends OpenAICompatibleServer {
  endpoint: LlmEndpoint;
  /** Monotonic time of every chat request the model received, in order. */
  requestTimes: Stamp[];
}

/**
 * The zero-latency scripted model: the first turn of a conversation returns `blocks` create_text
 * tool calls (streamed in one write by the stock server), a turn with tool results returns a
 * one-line text, so the agent ends normally after two model calls.
 */
export async function startBulkModel(blocks: number): Promise<BulkModel> {
  const requestTimes: Stamp[] = [];
  const calls = Array.from({ length: blocks }, (_, index) => ({ name: 'create_text', args: { text: paragraph(index) } }));
  const server = await startOpenAICompatibleServer({
    modelLabel: 'scripted',
    responder: (request: ChatRequest) => {
      requestTimes.push(now());
      return request.messages.some((message) => message.role === 'tool') ? { text: `Created ${blocks} paragraphs.` } : { toolCalls: calls };
    },
  });
  return {
    ...server,
    requestTimes,
    endpoint: { baseURL: server.baseURL, apiKey: 'bench', provider: 'scripted', models: ['scripted'] },
  };
}

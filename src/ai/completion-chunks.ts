import type { OpenAI } from 'openai';
import { ArgumentsShortcut, type ArgumentsDelta } from './arguments-shortcut';
import { openaiSdk } from './langchain-openai';
import { SseDataReader } from './sse-data-reader';

/** One raw chunk of an OpenAI-compatible chat completion stream. */
export type CompletionChunk = OpenAI.Chat.Completions.ChatCompletionChunk;

/**
 * What one read of a completion stream brought, in order: chunks parsed in full, and the argument
 * deltas of tool calls recognised without a parse (each the same as a chunk carrying only it).
 */
export type CompletionBatch = Array<CompletionChunk | ArgumentsDelta>;

/** Why `fill` returned: the text read so far is used up, the batch holds `maxBytes`, or the stream said `[DONE]`. */
export type FillEnd = 'read' | 'full' | 'done';

/**
 * The chunks of a chat completion event stream, from its decoded text: the messages' data
 * (sse-data-reader.ts), each an argument delta read without a parse (arguments-shortcut.ts) or a
 * chunk parsed in full. Plain synchronous methods, not the async generator that drives them: V8
 * optimizes a loop while it runs only in a plain function, so the per-chunk loop is fast from the
 * first stream of a process, not after several.
 */
export class CompletionChunks {
  private readonly messages = new SseDataReader();
  private readonly shortcut = new ArgumentsShortcut();
  /** Data taken since the last batch that filled up. */
  private taken = 0;
  /** A chunk failed (bad JSON, a provider's `error`): `failure` is thrown once the chunks before it are handed over. */
  failed = false;
  failure: unknown = undefined;

  /** @param headers the response's headers, for the `APIError` of a chunk carrying `error` */
  constructor(private readonly headers: Headers) {}

  /** The next piece of decoded text; `end` once the body ended (its last message needs no blank line). */
  push(text: string, end = false): void {
    this.messages.push(text);
    if (end) this.messages.end();
  }

  /**
   * Adds the complete chunks read so far to `batch`, until the text is used up, the chunks taken
   * since the last full batch reach `maxBytes` of data, `[DONE]`, or a chunk that fails (then
   * `failure` is set and nothing after it is taken).
   */
  fill(batch: CompletionBatch, maxBytes: number): FillEnd {
    for (let data = this.messages.next(); data !== undefined; data = this.messages.next()) {
      if (data.charCodeAt(0) === 91 && data.startsWith('[DONE]')) return 'done';
      const piece = this.shortcut.match(data);
      if (piece) batch.push(piece);
      else {
        const chunk = this.parse(data);
        if (!chunk) return 'read';
        batch.push(chunk);
      }
      this.taken += data.length;
      if (this.taken >= maxBytes) {
        this.taken = 0;
        return 'full';
      }
    }
    return 'read';
  }

  /** One chunk parsed (and learned from), or undefined with `failure` set. */
  private parse(data: string): CompletionChunk | undefined {
    try {
      const chunk = JSON.parse(data) as CompletionChunk & { error?: unknown };
      // A provider failing mid-stream: thrown as the SDK would.
      if (chunk?.error) throw new (openaiSdk().APIError)(undefined, chunk.error as Record<string, unknown>, undefined, this.headers);
      this.shortcut.learn(data, chunk);
      return chunk;
    } catch (error) {
      this.failed = true;
      this.failure = error;
      return undefined;
    }
  }
}

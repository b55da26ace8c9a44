import { createParser } from 'eventsource-parser';
import { now, type Stamp } from './timing';

/** One SSE message with the monotonic time its bytes arrived. */
export interface StampedEvent {
  at: Stamp;
  id?: string;
  event?: string;
  data: any;
}

export interface GenerationStream {
  status: number;
  generationId: string;
  /** Just before the request was sent. */
  startedAt: Stamp;
  /** When the response headers arrived. */
  headersAt: Stamp;
  events: StampedEvent[];
}

/**
 * `POST /canvases/:id/ai/generate-stream` and reads the SSE stream until `complete` or `error`.
 * Each event is stamped when the network chunk carrying it arrived (before parsing).
 */
export async function generateStream(
  api: string,
  token: string,
  canvasId: string,
  prompt: string,
  options: { timeoutMs?: number; onHeaders?: (generationId: string) => void } = {},
): Promise<GenerationStream> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`generate-stream timed out after ${timeoutMs} ms`)), timeoutMs);
  const startedAt = now();
  try {
    const response = await fetch(`${api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ prompt }),
      signal: controller.signal,
    });
    const headersAt = now();
    if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
      throw new Error(`generate-stream answered ${response.status}: ${await response.text()}`);
    }
    options.onHeaders?.(response.headers.get('x-generation-id') ?? '');
    const events: StampedEvent[] = [];
    let at = headersAt;
    let done = false;
    const parser = createParser({
      onEvent: (message) => {
        const data = JSON.parse(message.data);
        events.push({ at, id: message.id, event: message.event, data });
        if (message.event === 'complete' || message.event === 'error') done = true;
      },
    });
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      at = now();
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (done) break;
    }
    controller.abort();
    const last = events.at(-1);
    if (last?.event !== 'complete') throw new Error(`generation did not complete: ${JSON.stringify(last?.data)}`);
    return {
      status: response.status,
      generationId: response.headers.get('x-generation-id') ?? last.data.generationId,
      startedAt,
      headersAt,
      events,
    };
  } finally {
    clearTimeout(timer);
  }
}

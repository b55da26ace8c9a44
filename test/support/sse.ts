import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface SseMessage {
  id?: string;
  event?: string;
  data: any;
}

export interface SseResult {
  status: number;
  headers: Headers;
  /** JSON error body when the server answered without streaming. */
  body?: any;
  messages: SseMessage[];
  /** `retry:` hints the server sent (ms). */
  retries: number[];
}

/**
 * Opens an SSE request and collects messages until the stream ends, `until` returns true, or the
 * timeout passes (then it rejects with what it had).
 */
export async function readSse(
  url: string,
  options: {
    method?: string;
    token?: string;
    body?: unknown;
    headers?: Record<string, string>;
    until?: (message: SseMessage) => boolean;
    /** Called for each message as it arrives (to act mid-stream). */
    onMessage?: (message: SseMessage) => void;
    timeoutMs?: number;
  } = {},
): Promise<SseResult> {
  const controller = new AbortController();
  const timeoutMs = options.timeoutMs ?? 15_000;
  const timer = setTimeout(() => controller.abort(new Error(`SSE timed out after ${timeoutMs} ms`)), timeoutMs);
  const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const messages: SseMessage[] = [];
  const retries: number[] = [];
  let response: Response | undefined;
  try {
    response = await fetch(url, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: controller.signal,
    });
    if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined, messages, retries };
    }
    let stop = false;
    const parser = createParser({
      onEvent: (event: EventSourceMessage) => {
        let data: unknown = event.data;
        try {
          data = JSON.parse(event.data);
        } catch {
          // plain text data
        }
        const message = { id: event.id, event: event.event, data };
        messages.push(message);
        options.onMessage?.(message);
        if (options.until?.(message)) stop = true;
      },
      onRetry: (ms: number) => retries.push(ms),
    });
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (stop) {
        controller.abort();
        break;
      }
    }
    return { status: response.status, headers: response.headers, messages, retries };
  } catch (error) {
    if (controller.signal.aborted && messages.length && options.until && messages.some(options.until)) {
      return { status: response?.status ?? 200, headers: response?.headers ?? new Headers(), messages, retries };
    }
    throw Object.assign(error instanceof Error ? error : new Error(String(error)), { messages, retries });
  } finally {
    clearTimeout(timer);
  }
}

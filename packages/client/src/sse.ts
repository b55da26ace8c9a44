/**
 * Server-sent events over fetch (so requests can carry `Authorization`, which `EventSource`
 * cannot), with the reconnection rules of the HTML spec: `Last-Event-ID` on the next request and
 * the server's `retry:` as the delay. Works on any `ReadableStream` body (browsers, Node 20).
 */

/** One dispatched SSE message. `event` defaults to `message`; `id` is set when the message had one. */
export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

/**
 * An incremental parser of the `text/event-stream` format: feed it text as it arrives; it calls
 * `onMessage` per dispatched message and `onRetry` per valid `retry:` field. Comments (`: ping`)
 * are ignored.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  private started = false;

  constructor(
    private readonly onMessage: (message: SseMessage) => void,
    private readonly onRetry: (ms: number) => void = () => undefined,
  ) {}

  feed(text: string): void {
    this.buffer += text;
    if (!this.started && this.buffer.length) {
      this.started = true;
      if (this.buffer.charCodeAt(0) === 0xfeff) this.buffer = this.buffer.slice(1);
    }
    const terminator = /\r\n|\r|\n/g;
    let start = 0;
    let match: RegExpExecArray | null;
    while ((match = terminator.exec(this.buffer))) {
      // A lone \r at the very end may be the first half of \r\n: wait for the next chunk.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, match.index));
      start = match.index + match[0].length;
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.onRetry(Number.parseInt(value, 10));
  }

  private dispatch(): void {
    const message: SseMessage = { event: this.event || 'message', data: this.data.join('\n') };
    if (this.id !== undefined) message.id = this.id;
    const hasData = this.data.length > 0;
    this.data = [];
    this.event = '';
    this.id = undefined;
    if (hasData) this.onMessage(message);
  }
}

/** Reads an SSE body to its end, yielding messages as they complete. */
export async function* readSseMessages(body: ReadableStream<Uint8Array>, onRetry?: (ms: number) => void): AsyncGenerator<SseMessage> {
  const queue: SseMessage[] = [];
  const parser = new SseParser((message) => queue.push(message), onRetry);
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      while (queue.length) yield queue.shift()!;
    }
  } finally {
    // eslint-disable-next-line no-restricted-syntax -- releasing a body the iterator is done with: a failed cancel leaves nothing to do
    reader.cancel().catch(() => undefined);
  }
}

/** What a stream's decoder makes of one message. */
export type Decoded<T> = { kind: 'event'; value: T; terminal: boolean } | { kind: 'skip' } | { kind: 'reconnect' };

export interface ReconnectInfo {
  /** 1 for the first reconnection since the last event received. */
  attempt: number;
  delayMs: number;
  lastEventId?: string;
  error?: unknown;
}

export interface EventStreamOptions {
  signal?: AbortSignal;
  /** Resume after this event (sent as `Last-Event-ID`). */
  lastEventId?: string;
  /** Reconnections allowed in a row without an event in between (default 5; 0 = never reconnect). */
  maxReconnects?: number;
  /** Delay before reconnecting when the server sent no `retry:` (default 1000 ms); doubles per failed attempt, up to 30 s. */
  retryMs?: number;
  /** Told before each reconnection. */
  onReconnect?: (info: ReconnectInfo) => void;
}

export interface EventSource<T> {
  /** Opens one connection; `lastEventId` is undefined on the first one unless the caller gave one. */
  open(lastEventId: string | undefined, signal: AbortSignal): Promise<Response>;
  decode(message: SseMessage): Decoded<T>;
  /** Whether a dropped connection can be resumed (the server replays after `Last-Event-ID`). */
  resumable: boolean;
  /** Whether an error thrown by `open` is worth another attempt (5xx, network). */
  retryable(error: unknown): boolean;
}

/**
 * A stream of decoded events that survives dropped connections. Iterate it once with
 * `for await`, or call `finished()` to read it to the end. Breaking out of the loop or aborting the
 * signal closes the connection.
 */
export class EventStream<T> implements AsyncIterable<T> {
  /** The id of the last message received (pass it as `lastEventId` to resume later). */
  lastEventId: string | undefined;
  private consumed = false;

  constructor(
    private readonly source: EventSource<T>,
    private readonly options: EventStreamOptions = {},
  ) {
    this.lastEventId = options.lastEventId;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.consumed) throw new Error('An EventStream can be iterated only once');
    this.consumed = true;
    return this.run();
  }

  /** Reads to the end, calling `onEvent` for each event; resolves with the last (terminal) event. */
  async finished(onEvent?: (event: T) => void | Promise<void>): Promise<T | undefined> {
    let last: T | undefined;
    for await (const event of this) {
      last = event;
      await onEvent?.(event);
    }
    return last;
  }

  private async *run(): AsyncGenerator<T> {
    const { signal } = this.options;
    const maxReconnects = this.source.resumable ? (this.options.maxReconnects ?? 5) : 0;
    let serverRetryMs: number | undefined;
    let attempt = 0;
    for (;;) {
      signal?.throwIfAborted();
      const connection = linkedController(signal);
      let failure: unknown;
      try {
        const response = await this.source.open(this.lastEventId, connection.signal);
        if (!response.body) throw new Error('The response has no body');
        for await (const message of readSseMessages(response.body, (ms) => (serverRetryMs = ms))) {
          if (message.id !== undefined) this.lastEventId = message.id;
          const decoded = this.source.decode(message);
          if (decoded.kind === 'skip') continue;
          if (decoded.kind === 'reconnect') break;
          attempt = 0;
          yield decoded.value;
          if (decoded.terminal) return;
        }
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (!this.source.retryable(error)) throw error;
        failure = error;
      } finally {
        connection.abort();
      }
      attempt += 1;
      if (attempt > maxReconnects) {
        const message = this.source.resumable
          ? `The event stream ended early and ${maxReconnects} reconnection(s) failed`
          : 'The event stream ended before its last event';
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows the last connection error as it came
        throw failure ?? new Error(message);
      }
      const delayMs = Math.min(30_000, (serverRetryMs ?? this.options.retryMs ?? 1_000) * 2 ** (attempt - 1));
      this.options.onReconnect?.({ attempt, delayMs, lastEventId: this.lastEventId, error: failure });
      await delay(delayMs, signal);
    }
  }
}

/** A controller aborted with `parent` (AbortSignal.any is not everywhere yet). */
function linkedController(parent?: AbortSignal): AbortController {
  const controller = new AbortController();
  if (parent) {
    const forward = () => controller.abort(parent.reason);
    if (parent.aborted) forward();
    else parent.addEventListener('abort', forward, { once: true });
    controller.signal.addEventListener('abort', () => parent.removeEventListener('abort', forward), { once: true });
  }
  return controller;
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
    const onAbort = () => (clearTimeout(timer), reject(signal!.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// ---- runtime (src/sdkgen/runtime/runtime.ts, copied verbatim by `npm run sdk`) ----

/**
 * Every non-2xx answer, in the API's error shape `{"error":{"code","message","details?"}}`. A body
 * not in that shape (a proxy's HTML page, an empty 502) still becomes one, with `code`
 * `http_<status>`; a request that got no answer has `status` 0 and `code` `connection_error`.
 */
export class SwitchboardApiError extends Error {
  /** HTTP status (0 when the request never got an answer). */
  readonly status: number;
  /** Stable machine-readable code, e.g. `not_found`, `validation_failed`, `rate_limited`. */
  readonly code: string;
  /** Extra detail the server sent, e.g. `[{path, message}]` for a 400. */
  readonly details?: unknown;
  /** Seconds from a `Retry-After` header (429, 503), when present. */
  readonly retryAfterSeconds?: number;

  constructor(status: number, code: string, message: string, details?: unknown, retryAfterSeconds?: number) {
    super(message);
    this.name = 'SwitchboardApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** Builds the error from a non-2xx response (reads its body). */
  static async fromResponse(response: Response): Promise<SwitchboardApiError> {
    const text = await response.text().catch(() => '');
    const retryAfter = Number.parseInt(response.headers.get('retry-after') ?? '', 10);
    const seconds = Number.isFinite(retryAfter) ? retryAfter : undefined;
    try {
      const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } })?.error;
      if (error && typeof error.code === 'string') {
        return new SwitchboardApiError(
          response.status,
          error.code,
          typeof error.message === 'string' ? error.message : error.code,
          error.details,
          seconds,
        );
      }
    } catch {
      // not JSON: fall through
    }
    return new SwitchboardApiError(
      response.status,
      `http_${response.status}`,
      text.slice(0, 200) || `HTTP ${response.status}`,
      undefined,
      seconds,
    );
  }
}

/** One server-sent event: its name, id (if any) and data (parsed JSON, else the text). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a public type of the generated client: callers read `data` without a cast
export interface SseEvent<T = any> {
  event: string;
  id?: string;
  data: T;
}

/**
 * An open `text/event-stream` response: `for await (const event of stream)`. The loop ends when the
 * server closes the stream; `close()` (or leaving the loop) stops reading early. `headers` holds the
 * response headers (e.g. `X-Execution-Id`).
 */
export class EventStream implements AsyncIterable<SseEvent> {
  readonly headers: Headers;
  /** The id of the last event read, for resuming with `Last-Event-ID`. */
  lastEventId?: string;
  private readonly response: Response;

  constructor(response: Response) {
    this.response = response;
    this.headers = response.headers;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SseEvent> {
    const body = this.response.body;
    if (!body) return;
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let name = 'message';
    let id: string | undefined;
    let data: string[] = [];
    try {
      for (;;) {
        const { done, value } = await reader.read();
        buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = done ? '' : (lines.pop() ?? '');
        for (const line of lines) {
          if (line === '') {
            if (data.length) {
              if (id !== undefined) this.lastEventId = id;
              const text = data.join('\n');
              let parsed: unknown = text;
              try {
                parsed = JSON.parse(text);
              } catch {
                // plain text data
              }
              yield { event: name, ...(id !== undefined ? { id } : {}), data: parsed };
            }
            name = 'message';
            id = undefined;
            data = [];
            continue;
          }
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'data') data.push(value);
          else if (field === 'event') name = value;
          else if (field === 'id') id = value;
        }
        if (done) return;
      }
    } finally {
      // eslint-disable-next-line no-restricted-syntax -- releasing a stream already read or abandoned: a failed cancel leaves nothing to do
      await reader.cancel().catch(() => undefined);
    }
  }

  /** Stops reading and closes the connection. */
  async close(): Promise<void> {
    // eslint-disable-next-line no-restricted-syntax -- releasing a stream already read or abandoned: a failed cancel leaves nothing to do
    await this.response.body?.cancel().catch(() => undefined);
  }
}

export interface ClientOptions {
  /** The server root, e.g. `http://127.0.0.1:3000` (without `/api/v1`). */
  baseUrl: string;
  /** An access token; register and login set (and replace) it. */
  token?: string;
  /** An API key (`sb_live_…`), sent as `X-API-Key` while no access token is held: for programs. */
  apiKey?: string;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
}

/** What every call accepts last, next to its optional parameters. */
export interface RequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export interface RequestSpec {
  method: string;
  /** OpenAPI path under `/api/v1`, with `{name}` placeholders. */
  path: string;
  pathParams?: Record<string, string | number>;
  query?: Record<string, unknown>;
  headers?: Record<string, unknown>;
  body?: unknown;
  hasBody?: boolean;
  /** Sent as multipart/form-data, one `file` part each (an upload). */
  files?: UploadFile[];
  stream?: boolean;
  keepTokens?: boolean;
  signal?: AbortSignal;
}

/** A file to upload: its name, its bytes, and optionally its type (the server reads the type from the bytes). */
export interface UploadFile {
  name: string;
  data: Blob | ArrayBuffer | Uint8Array;
  type?: string;
}

/** The files as a multipart body (fetch sets its content type with the boundary). */
function formOf(files: UploadFile[]): FormData {
  const form = new FormData();
  for (const file of files) {
    const blob = file.data instanceof Blob ? file.data : new Blob([file.data as BlobPart], file.type ? { type: file.type } : {});
    form.append('file', blob, file.name);
  }
  return form;
}

const API_PREFIX = '/api/v1';

/** Sends requests to `<baseUrl>/api/v1…` and decodes answers; holds the tokens. */
export class Transport {
  token?: string;
  refreshToken?: string;
  apiKey?: string;
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly headers: Record<string, string>;

  constructor(options: ClientOptions) {
    if (!/^https?:\/\//.test(options.baseUrl)) throw new TypeError('baseUrl must start with http:// or https://');
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.apiKey = options.apiKey;
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.headers = { ...options.headers };
  }

  url(path: string, pathParams: Record<string, string | number> = {}, query: Record<string, unknown> = {}): string {
    const filled = path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(String(pathParams[name])));
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query))
      if (value !== undefined && value !== null) search.append(key, String(value as string | number | boolean));
    const qs = search.toString();
    return `${this.baseUrl}${API_PREFIX}${filled}${qs ? `?${qs}` : ''}`;
  }

  async request(spec: RequestSpec): Promise<unknown> {
    const headers: Record<string, string> = { accept: spec.stream ? 'text/event-stream' : 'application/json', ...this.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    else if (this.apiKey) headers['x-api-key'] = this.apiKey;
    for (const [name, value] of Object.entries(spec.headers ?? {}))
      if (value !== undefined && value !== null) headers[name] = String(value as string | number | boolean);
    if (spec.hasBody) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.fetchImpl(this.url(spec.path, spec.pathParams, spec.query), {
        method: spec.method,
        headers,
        body: spec.files ? formOf(spec.files) : spec.hasBody ? JSON.stringify(spec.body ?? {}) : undefined,
        signal: spec.signal,
      });
    } catch (error) {
      if ((error as { name?: string })?.name === 'AbortError') throw error;
      throw new SwitchboardApiError(0, 'connection_error', error instanceof Error ? error.message : String(error));
    }
    if (!response.ok) throw await SwitchboardApiError.fromResponse(response);
    const type = (response.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
    if (spec.stream || type === 'text/event-stream') return new EventStream(response);
    const text = await response.text();
    if (!text) return undefined;
    if (type === 'application/json' || type.endsWith('+json')) {
      const result = JSON.parse(text) as unknown;
      if (spec.keepTokens) this.remember(result);
      return result;
    }
    return text;
  }

  /** Keeps the tokens of an auth answer (register, login, refresh). */
  remember(result: unknown): void {
    const tokens = result as { accessToken?: unknown; refreshToken?: unknown } | null;
    if (typeof tokens?.accessToken === 'string') {
      this.token = tokens.accessToken;
      if (typeof tokens.refreshToken === 'string') this.refreshToken = tokens.refreshToken;
    }
  }
}

/** Drops the `undefined` members of a body, so optional fields left out are not sent. */
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- called by the generated methods written next to this runtime (sdkgen/typescript.ts)
function defined(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) if (value !== undefined) out[key] = value;
  return out;
}

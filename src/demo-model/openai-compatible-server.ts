import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One message of an OpenAI chat request, as sent on the wire. */
export interface ChatMessage {
  role: string;
  /** Plain text, or OpenAI content parts (`[{type:'text', text}]`); null on assistant tool-call turns. */
  content: string | Array<{ type: string; text?: string }> | null;
  name?: string;
  tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
}

/** A function tool offered by the client; `parameters` is a JSON schema. */
export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** The parsed body of `POST /v1/chat/completions` (unknown extra fields are kept). */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  tools?: ChatTool[];
  tool_choice?: 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  response_format?: { type: string; json_schema?: unknown };
  /** The most completion tokens to produce: the answer is cut there (`finish_reason: length`). */
  max_tokens?: number;
  max_completion_tokens?: number;
  [key: string]: unknown;
}

/**
 * What the model "says" for one request. `args` is JSON-serialised; a string is sent verbatim,
 * which lets tests produce malformed tool arguments. `error` makes the server answer that HTTP status.
 */
export interface ChatTurn {
  text?: string;
  toolCalls?: Array<{ name: string; args: unknown }>;
  error?: { status: number; message: string };
}

/** Decides the turn for a chat request. */
export type ChatResponder = (request: ChatRequest) => ChatTurn | Promise<ChatTurn>;

/** Produces one vector per text; `dimensions` is the client's optional `dimensions` field. */
export type Embedder = (texts: string[], model: string, options?: { dimensions?: number }) => number[][];

/** The parsed body of `POST /v1/embeddings`. */
export interface EmbeddingsRequest {
  input: string | string[];
  model: string;
  encoding_format?: 'float' | 'base64';
  dimensions?: number;
  [key: string]: unknown;
}

/** A request the server accepted, kept for test assertions. */
export type RecordedRequest =
  /** `closedEarlyAt`: the client closed a streamed answer before its end (an aborted request). */
  | {
      kind: 'chat';
      body: ChatRequest;
      receivedAt: number;
      closedEarlyAt?: number;
      /** Paced writes of a streamed answer sent so far. */ writes?: number;
    }
  | { kind: 'embeddings'; body: EmbeddingsRequest; receivedAt: number };

/** Options of {@link startOpenAICompatibleServer}. */
export interface OpenAICompatibleServerOptions {
  responder: ChatResponder;
  /** Without one, `/v1/embeddings` answers 404. */
  embedder?: Embedder;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Pause before each streamed text piece and each streamed tool call. */
  delayMs?: number;
  /**
   * Reported in the response `model` field instead of echoing the request: `label` when the client
   * asked for it (or nothing), else `label/<requested>`, so a stand-in never claims to be a real model.
   */
  modelLabel?: string;
  /**
   * Keep every request body in `requests` (tests and benchmarks read them). Off by default: a
   * server that lives as long as its process (the demo model) would hold every prompt it was sent.
   */
  recordRequests?: boolean;
}

/** A running server; `baseURL` ends in `/v1`, ready for the OpenAI SDK's `baseURL`. */
export interface OpenAICompatibleServer {
  baseURL: string;
  close(): Promise<void>;
  /** The requests received, when started with `recordRequests` (else always empty). */
  requests: RecordedRequest[];
}

const MAX_BODY_BYTES = 20 * 1024 * 1024;

/** Thrown while handling a request to answer with OpenAI's error JSON. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Flattens a message's content to text (content parts are joined). */
export function messageText(message: Pick<ChatMessage, 'content'>): string {
  const { content } = message;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (typeof part?.text === 'string' ? part.text : '')).join('');
}

/** Deterministic token estimate (~4 characters per token); real tokenisers are too slow for benchmarks. */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/**
 * Starts an HTTP server speaking enough of OpenAI's API (chat completions, streaming included,
 * embeddings, model list) for the real OpenAI/LangChain clients to talk to it.
 */
export async function startOpenAICompatibleServer(options: OpenAICompatibleServerOptions): Promise<OpenAICompatibleServer> {
  const requests: RecordedRequest[] = [];
  const ids = { completion: 0, call: 0 };
  const delayMs = Math.max(0, options.delayMs ?? 0);
  const host = options.host ?? '127.0.0.1';

  const modelName = (requested: string): string => {
    const label = options.modelLabel;
    if (!label) return requested;
    return !requested || requested === label ? label : `${label}/${requested}`;
  };

  const handleChat = async (body: unknown, res: ServerResponse): Promise<void> => {
    const request = validateChat(body);
    const recorded: RecordedRequest & { kind: 'chat' } = { kind: 'chat', body: request, receivedAt: Date.now() };
    if (options.recordRequests) requests.push(recorded);
    const turn = await options.responder(request);
    if (turn.error) {
      const { status, message } = turn.error;
      // An out-of-range status would make writeHead throw instead of answering.
      throw new HttpError(Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500, message);
    }
    const base = { id: `chatcmpl-${++ids.completion}`, created: Math.floor(Date.now() / 1000), model: modelName(request.model) };
    let text = turn.text ?? '';
    let calls = (turn.toolCalls ?? []).map((call) => ({
      id: `call_${ids.completion}_${++ids.call}`,
      name: call.name,
      arguments: typeof call.args === 'string' ? call.args : JSON.stringify(call.args ?? {}),
    }));
    let finishReason = calls.length > 0 ? 'tool_calls' : 'stop';
    // As a real model does, the answer stops at `max_tokens`: the text is cut, and tool calls that no longer fit are left out.
    const maxTokens = request.max_completion_tokens ?? request.max_tokens;
    if (typeof maxTokens === 'number' && maxTokens > 0) {
      let room = maxTokens * 4;
      if (text.length > room) text = text.slice(0, room);
      room -= text.length;
      const fitting = [];
      for (const call of calls) {
        const size = call.name.length + call.arguments.length;
        if (size > room) break;
        fitting.push(call);
        room -= size;
      }
      if (fitting.length < calls.length || text.length < (turn.text ?? '').length) {
        calls = fitting;
        finishReason = 'length';
      }
    }
    const completionChars = text.length + calls.reduce((n, c) => n + c.name.length + c.arguments.length, 0);
    const usage = usageOf(promptChars(request), completionChars);

    if (!request.stream) {
      const message: Record<string, unknown> = { role: 'assistant', content: calls.length > 0 && !text ? null : text, refusal: null };
      if (calls.length > 0)
        message.tool_calls = calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
      sendJson(res, 200, {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
        usage,
      });
      return;
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let closed = false;
    res.on('close', () => {
      closed = true;
      if (!res.writableFinished) recorded.closedEarlyAt = Date.now();
    });
    // Without a delay everything is buffered into one write: 200 tool calls stay cheap.
    const pending: string[] = [];
    const emit = (choices: unknown[], extra?: Record<string, unknown>): void => {
      pending.push(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices, ...extra })}\n\n`);
    };
    const delta = (d: Record<string, unknown>, finish: string | null = null): void =>
      emit([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);
    const pace = async (): Promise<void> => {
      if (delayMs === 0 || closed) return;
      res.write(pending.join(''));
      pending.length = 0;
      recorded.writes = (recorded.writes ?? 0) + 1;
      await sleep(delayMs);
    };

    delta({ role: 'assistant', content: '' });
    for (const piece of splitWords(text)) {
      await pace();
      delta({ content: piece });
    }
    for (const [index, call] of calls.entries()) {
      await pace();
      delta({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] });
      for (const piece of splitArguments(call.arguments)) delta({ tool_calls: [{ index, function: { arguments: piece } }] });
    }
    delta({}, finishReason);
    if (request.stream_options?.include_usage) emit([], { usage });
    pending.push('data: [DONE]\n\n');
    if (!closed) res.end(pending.join(''));
  };

  const handleEmbeddings = (body: unknown, res: ServerResponse): void => {
    if (!options.embedder) throw new HttpError(404, 'This server has no embeddings model configured.');
    const request = validateEmbeddings(body);
    if (options.recordRequests) requests.push({ kind: 'embeddings', body: request, receivedAt: Date.now() });
    const texts = typeof request.input === 'string' ? [request.input] : request.input;
    const vectors = options.embedder(texts, request.model, { dimensions: request.dimensions });
    const tokens = estimateTokens(texts.reduce((n, t) => n + t.length, 0));
    const data = vectors.map((vector, index) => ({
      object: 'embedding',
      index,
      // The OpenAI SDK asks for base64 unless told otherwise and decodes little-endian float32.
      embedding: request.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
    }));
    sendJson(res, 200, { object: 'list', data, model: modelName(request.model), usage: { prompt_tokens: tokens, total_tokens: tokens } });
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
    const route = async (): Promise<void> => {
      if (req.method === 'GET' && path === '/v1/models') {
        const id = options.modelLabel ?? 'openai-compatible';
        sendJson(res, 200, { object: 'list', data: [{ id, object: 'model', created: 0, owned_by: 'switchboard' }] });
        return;
      }
      const isChat = path === '/v1/chat/completions';
      if (!isChat && path !== '/v1/embeddings') throw new HttpError(404, `Unknown endpoint ${req.method} ${path}`);
      if (req.method !== 'POST') throw new HttpError(405, `Use POST for ${path}`);
      const body = await readJson(req);
      if (isChat) await handleChat(body, res);
      else handleEmbeddings(body, res);
    };
    route().catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof Error ? err.message : String(err);
      if (res.headersSent) res.destroy();
      else sendJson(res, status, errorBody(status, message));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    baseURL: `http://${urlHost}:${port}/v1`,
    requests,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive sockets from the client would otherwise hold close() open for seconds.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

function errorBody(status: number, message: string): unknown {
  const type =
    status === 400
      ? 'invalid_request_error'
      : status === 401
        ? 'authentication_error'
        : status === 404
          ? 'not_found_error'
          : status === 429
            ? 'rate_limit_error'
            : status >= 500
              ? 'server_error'
              : 'invalid_request_error';
  return { error: { message, type, param: null, code: null } };
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) reject(new HttpError(413, 'Request body too large.'));
      else chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError(400, 'We could not parse the JSON body of your request.'));
      }
    });
  });
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function validateChat(body: unknown): ChatRequest {
  if (!isObject(body)) throw new HttpError(400, 'The request body must be a JSON object.');
  if (typeof body.model !== 'string') throw new HttpError(400, "Missing required parameter: 'model'.");
  const { messages, tools } = body;
  if (!Array.isArray(messages) || messages.length === 0) throw new HttpError(400, "'messages' must be a non-empty array.");
  messages.forEach((m, i) => {
    if (!isObject(m) || typeof m.role !== 'string')
      throw new HttpError(400, `Invalid value for 'messages[${i}]': expected an object with a 'role'.`);
  });
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) throw new HttpError(400, "'tools' must be an array.");
    tools.forEach((t, i) => {
      if (!isObject(t) || !isObject(t.function) || typeof t.function.name !== 'string') {
        throw new HttpError(400, `Invalid value for 'tools[${i}]': expected {type:'function', function:{name}}.`);
      }
    });
  }
  return body as ChatRequest;
}

function validateEmbeddings(body: unknown): EmbeddingsRequest {
  if (!isObject(body)) throw new HttpError(400, 'The request body must be a JSON object.');
  if (typeof body.model !== 'string') throw new HttpError(400, "Missing required parameter: 'model'.");
  const { input } = body;
  const ok = typeof input === 'string' || (Array.isArray(input) && input.length > 0 && input.every((t) => typeof t === 'string'));
  if (!ok) throw new HttpError(400, "'input' must be a string or a non-empty array of strings.");
  return body as EmbeddingsRequest;
}

function promptChars(request: ChatRequest): number {
  let chars = 0;
  for (const m of request.messages) {
    chars += messageText(m).length + 16; // rough per-message framing overhead
    for (const call of m.tool_calls ?? []) chars += (call.function?.name?.length ?? 0) + (call.function?.arguments?.length ?? 0);
  }
  for (const tool of request.tools ?? []) chars += tool.function.name.length + (tool.function.description?.length ?? 0) + 32;
  return chars;
}

function usageOf(prompt: number, completion: number): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  const prompt_tokens = estimateTokens(prompt);
  const completion_tokens = estimateTokens(completion);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

/** Word-sized pieces, whitespace kept, so the concatenation equals the input. */
function splitWords(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

/** Splits JSON arguments into a few pieces, as OpenAI does, so clients must concatenate them. */
function splitArguments(args: string): string[] {
  const size = Math.max(8, Math.ceil(args.length / 4));
  const pieces: string[] = [];
  for (let i = 0; i < args.length; i += size) pieces.push(args.slice(i, i + size));
  return pieces;
}

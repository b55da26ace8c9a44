import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { outboundRoute } from '../lib/outbound-proxy';

/**
 * A successful model response whose body stays the Node stream it arrived as: the completion
 * reader (model-stream.ts) takes `incoming` as it is, with no web stream in between. `body` is
 * null; nothing else reads a streaming completion's body.
 */
export class NodeStreamResponse extends Response {
  constructor(
    readonly incoming: Readable,
    init: ResponseInit,
  ) {
    super(null, init);
  }
}

const decoders: Partial<Record<string, () => zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress>> = {
  gzip: () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/**
 * The `fetch` the OpenAI SDK gets for model requests: the SDK still builds,
 * signs, times out and retries every request, but it travels over `node:http` with keep-alive
 * agents instead of Node's built-in fetch, whose web streams cost measurable CPU per request on
 * this path (the performance page has the figures). A 2xx answer is a `NodeStreamResponse`; any other status is a plain `Response` with
 * its whole body, which is what the SDK reads for its error. Bodies other than a string or bytes
 * (none on this path) go to the built-in fetch. No redirects are followed: a model endpoint that
 * redirects gets its 3xx reported as the error it is. Requests go out the process's outbound route
 * (src/lib/outbound-proxy.ts): through HTTPS_PROXY / HTTP_PROXY unless NO_PROXY names the host.
 * An error body outside OpenAI's `{error: ...}` envelope (Mistral's `{object: "error", message: ...}`)
 * is put in one: the SDK reads only `error`, and would report "(no body)" and lose the provider's words.
 */
export const modelFetch: typeof fetch = async (input, init = {}) => {
  const body = init.body;
  const url = new URL(input instanceof Request ? input.url : String(input));
  const route = outboundRoute();
  const plain = url.protocol === 'http:' || url.protocol === 'https:';
  if (input instanceof Request || !plain || (body != null && typeof body !== 'string' && !(body instanceof Uint8Array)))
    return route.fetch(input, init);
  const agent = route.agentFor(url);
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((value, name) => (headers[name] = value));
  return new Promise<Response>((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method: init.method ?? 'GET',
      headers,
      agent,
      signal: init.signal ?? undefined,
    });
    request.on('error', reject);
    request.once('response', (incoming) => {
      const status = incoming.statusCode ?? 500;
      const responseHeaders = new Headers();
      for (let i = 0; i < incoming.rawHeaders.length; i += 2) responseHeaders.append(incoming.rawHeaders[i], incoming.rawHeaders[i + 1]);
      const decode =
        decoders[
          String(incoming.headers['content-encoding'] ?? '')
            .trim()
            .toLowerCase()
        ];
      const source: Readable = decode ? incoming.pipe(decode()) : incoming;
      if (decode) incoming.once('error', (error) => source.destroy(error));
      // A decoded body closed by its reader (stopped early, or stalled) closes the response under it.
      if (decode) source.once('close', () => incoming.destroy());
      // A body nobody reads any more (its reader stopped, or the request was aborted) may still
      // fail; its reader sees that through its iterator, and an unread one must not crash the process.
      source.on('error', () => undefined);
      const meta = { status, statusText: incoming.statusMessage ?? '', headers: responseHeaders };
      if (status >= 200 && status < 300) return resolve(new NodeStreamResponse(source, meta));
      const parts: Buffer[] = [];
      source.on('data', (part: Buffer) => parts.push(part));
      source.once('error', reject);
      source.once('end', () => resolve(new Response(status === 304 ? null : errorBody(Buffer.concat(parts)), meta)));
    });
    request.end(body ?? undefined);
  });
};

/** The error body as the SDK reads it: a JSON object without `error` is wrapped in `{error: body}`. */
function errorBody(bytes: Buffer<ArrayBuffer>): Buffer<ArrayBuffer> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return bytes;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || 'error' in parsed) return bytes;
  return Buffer.from(JSON.stringify({ error: parsed }));
}

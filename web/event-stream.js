// GET an SSE stream with the Bearer token and resume headers (EventSource cannot send
// Authorization). Used to resume a dropped generation stream with `Last-Event-ID` (the
// events route replays what came after it, then follows live).
import { readSse } from './sse.js';

/** A request with the session's token through the SDK's transport (api.js); one refresh and retry on a 401. */
export function authorizedFetch(api, path, init = {}) {
  return api.authorizedFetch(path, init);
}

/** An HTTP error answer as an Error with `status` and `code` (the API's error shape). */
async function httpError(response) {
  const body = await response.json().catch(() => undefined);
  const error = new Error(body?.error?.message ?? `HTTP ${response.status}`);
  error.status = response.status;
  error.code = body?.error?.code ?? 'http_error';
  return error;
}

/**
 * Reads `GET path` as SSE to its end, calling `onMessage({id, event, data})` per message.
 * `lastEventId` is sent as `Last-Event-ID`. Rejects with an Error carrying `status` for an HTTP
 * error answer, and with the network's error when the connection drops.
 */
export async function readEventStream(api, path, { lastEventId, signal, onMessage }) {
  const headers = { accept: 'text/event-stream' };
  if (lastEventId !== undefined && lastEventId !== null) headers['Last-Event-ID'] = String(lastEventId);
  const response = await authorizedFetch(api, path, { method: 'GET', headers, signal });
  if (!response.ok) throw await httpError(response);
  await readSse(response.body, onMessage);
}

/** Resolves after `ms`, or rejects with an AbortError when `signal` aborts first. */
export function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new DOMException('Aborted', 'AbortError'));
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new DOMException('Aborted', 'AbortError'));
      },
      { once: true },
    );
  });
}

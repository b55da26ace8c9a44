/**
 * The SSE fleet: a child process holding many open `GET …/generations/:id/events` streams, so the
 * clients' reading does not run on the server's or the benchmark's event loop. Driven over IPC by
 * {@link SseFleet}. Every `tool_output` it reads is stamped with the shared monotonic clock; only
 * the arrival times are kept (one Float64Array per stream), not the payloads.
 */
import http from 'node:http';
import { fromWire, now, type Stamp } from './timing';

export type SseFleetRequest = { id: number } & (
  | { cmd: 'open'; group: string; urls: string[]; token: string; concurrency: number }
  | { cmd: 'done'; group: string }
  | { cmd: 'latency'; group: string; emittedAt: string[] }
  | { cmd: 'close'; group: string }
  | { cmd: 'shutdown' }
);
export type SseFleetReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

interface Stream {
  request?: http.ClientRequest;
  /** Arrival of tool_output i, as ns since `base` (NaN until it arrived). */
  arrivals: Float64Array;
  complete: boolean;
}
interface Group {
  streams: Stream[];
  waiters: Array<() => void>;
}

/** Stream arrival times are kept as float ns after this stamp (a float holds ~104 days of ns exactly enough). */
const base: Stamp = now();
const MAX_EVENTS = 1_024;
const groups = new Map<string, Group>();
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

/** Opens one stream; resolves once its response headers are in (rejects on a non-200 answer). */
function openStream(group: Group, url: string, token: string): Promise<void> {
  const stream: Stream = { arrivals: new Float64Array(MAX_EVENTS).fill(Number.NaN), complete: false };
  return new Promise<void>((resolve, reject) => {
    const request = http.get(url, { agent, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        return reject(new Error(`events answered ${response.statusCode}`));
      }
      group.streams.push(stream);
      resolve();
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (text: string) => {
        const at = Number(now() - base);
        buffer += text;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (message.includes('event: tool_output')) {
            const index = /"index":(\d+)/.exec(message);
            if (index && Number(index[1]) < MAX_EVENTS) stream.arrivals[Number(index[1])] = at;
          } else if (message.includes('event: complete') || message.includes('event: error')) {
            stream.complete = true;
            checkDone(group);
          }
        }
      });
      response.on('error', () => undefined);
    });
    stream.request = request;
    request.on('error', reject);
  });
}

function checkDone(group: Group) {
  if (group.streams.every((stream) => stream.complete)) for (const waiter of group.waiters.splice(0)) waiter();
}

async function open(request: Extract<SseFleetRequest, { cmd: 'open' }>) {
  const group = groups.get(request.group) ?? { streams: [], waiters: [] };
  groups.set(request.group, group);
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (next < request.urls.length) {
      const url = request.urls[next++];
      await openStream(group, url, request.token).catch((error: Error) => {
        failed += 1;
        firstError ??= error.message;
      });
    }
  };
  await Promise.all(Array.from({ length: request.concurrency }, worker));
  return { opened: group.streams.length, failed, firstError };
}

/** Milliseconds from the model's write of call i to its arrival on each stream, for every stream and call. */
function latency(group: Group, emittedAt: string[]) {
  const emitted = emittedAt.map((wire) => Number(fromWire(wire) - base));
  const values: number[] = [];
  let missing = 0;
  for (const stream of group.streams) {
    for (let i = 0; i < emitted.length; i += 1) {
      const at = stream.arrivals[i];
      if (Number.isNaN(at)) missing += 1;
      else values.push((at - emitted[i]) / 1e6);
    }
  }
  values.sort((a, b) => a - b);
  const pick = (q: number) => (values.length ? values[Math.min(values.length - 1, Math.floor(q * values.length))] : undefined);
  return { deliveries: values.length, missing, p50: pick(0.5), p95: pick(0.95), p99: pick(0.99), max: values.at(-1) };
}

function close(name: string) {
  const group = groups.get(name);
  groups.delete(name);
  for (const stream of group?.streams ?? []) stream.request?.destroy();
  return { closed: group?.streams.length ?? 0 };
}

async function handle(request: SseFleetRequest): Promise<unknown> {
  switch (request.cmd) {
    case 'open':
      return open(request);
    case 'done': {
      const group = groups.get(request.group);
      if (!group) throw new Error(`no group ${request.group}`);
      await new Promise<void>((resolve) => {
        group.waiters.push(resolve);
        checkDone(group);
      });
      return { streams: group.streams.length };
    }
    case 'latency': {
      const group = groups.get(request.group);
      if (!group) throw new Error(`no group ${request.group}`);
      return latency(group, request.emittedAt);
    }
    case 'close':
      return close(request.cmd === 'close' ? request.group : '');
    case 'shutdown':
      for (const name of [...groups.keys()]) close(name);
      setImmediate(() => process.disconnect());
      return { ok: true };
  }
}

process.on('message', (request: SseFleetRequest) => {
  handle(request).then(
    (result) => process.send?.({ id: request.id, ok: true, result } satisfies SseFleetReply),
    (error: unknown) => process.send?.({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies SseFleetReply),
  );
});
process.send?.({ ready: true });

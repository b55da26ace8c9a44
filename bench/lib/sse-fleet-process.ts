/**
 * The SSE fleet: a child process holding many open `GET …/generations/:id/events` streams, so the
 * clients' reading does not run on the server's or the benchmark's event loop. Driven over IPC by
 * {@link SseFleet}. Every `tool_output` it reads is stamped with the shared monotonic clock; only
 * the arrival times are kept (one Float64Array per stream), not the payloads.
 */
import net from 'node:net';
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
  socket?: net.Socket;
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

/**
 * Where every stream's socket reads into: each read is handled before the next one is made, so the
 * streams can share one buffer (Node's `onread` option) instead of a new Buffer per read.
 */
const readBuffer = Buffer.alloc(64 * 1024);

/**
 * Opens one stream over a plain TCP socket (HTTP/1.1 written and read by hand, as `lean-client.ts`
 * does for Socket.IO): the fleet shares the machine's two cores with the node it measures, so it
 * spends as little as it can per event. Node's HTTP client (llhttp, an IncomingMessage stream per
 * response) cost more CPU per event than the node's own write; a socket's readable stream still
 * costs a Buffer, a string decoder and a 'data' event per read, so reads go to `onread` instead.
 * The bytes are read as latin1: only ASCII is matched. Resolves once the response head is in
 * (rejects on a non-200 answer). The body is chunked (`<hex>\r\n<frame>\r\n`); events are found by
 * their `\n\n` ends, so the chunk-size lines between them are simply part of the next event's text,
 * which only the `event:` name and the `"index":` field are matched in.
 */
function openStream(group: Group, url: string, token: string): Promise<void> {
  const stream: Stream = { arrivals: new Float64Array(MAX_EVENTS).fill(Number.NaN), complete: false };
  const target = new URL(url);
  return new Promise<void>((resolve, reject) => {
    let head = true;
    let buffer = '';
    const onData = (text: string, at: number) => {
      buffer += text;
      if (head) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = buffer.slice(0, buffer.indexOf('\r\n'));
        if (!/^HTTP\/1\.1 200 /.test(status)) {
          socket.destroy();
          return reject(new Error(`events answered ${status.split(' ')[1] ?? status}`));
        }
        head = false;
        buffer = buffer.slice(end + 4);
        group.streams.push(stream);
      }
      let start = 0;
      let end: number;
      while ((end = buffer.indexOf('\n\n', start)) >= 0) {
        const message = buffer.slice(start, end);
        start = end + 2;
        // Open once its first event arrived (every followed generation has one stored): the node
        // has then also done the stream's replay, so a memory reading after `open` sees it at rest.
        resolve();
        if (message.includes('event: tool_output')) {
          const index = /"index":(\d+)/.exec(message);
          if (index && Number(index[1]) < MAX_EVENTS) stream.arrivals[Number(index[1])] = at;
        } else if (message.includes('event: complete') || message.includes('event: error')) {
          stream.complete = true;
          checkDone(group);
        }
      }
      buffer = start === buffer.length ? '' : buffer.slice(start);
    };
    const socket = net.connect({
      host: target.hostname,
      port: Number(target.port),
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (bytes: number) => {
          onData(readBuffer.toString('latin1', 0, bytes), Number(now() - base));
          return true;
        },
      },
    });
    stream.socket = socket;
    socket.once('connect', () => {
      socket.write(
        `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n`,
      );
    });
    // Once the first event arrived these change nothing (the promise is settled).
    socket.on('error', (error) => reject(error));
    socket.on('close', () => reject(new Error(`events: the connection closed before ${head ? 'the response' : 'the first event'}`)));
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
  // Per call: its first and its last stream's delay, so a tail shows whether it is a few calls or every call.
  const first = emitted.map(() => Number.POSITIVE_INFINITY);
  const last = emitted.map(() => Number.NEGATIVE_INFINITY);
  for (const stream of group.streams) {
    for (let i = 0; i < emitted.length; i += 1) {
      const at = stream.arrivals[i];
      if (Number.isNaN(at)) {
        missing += 1;
        continue;
      }
      const ms = (at - emitted[i]) / 1e6;
      values.push(ms);
      if (ms < first[i]) first[i] = ms;
      if (ms > last[i]) last[i] = ms;
    }
  }
  values.sort((a, b) => a - b);
  const pick = (q: number) => (values.length ? values[Math.min(values.length - 1, Math.floor(q * values.length))] : undefined);
  const byCall = first.map((ms, i) => ({ first: ms, last: last[i] }));
  return { deliveries: values.length, missing, p50: pick(0.5), p95: pick(0.95), p99: pick(0.99), max: values.at(-1), byCall };
}

function close(name: string) {
  const group = groups.get(name);
  groups.delete(name);
  for (const stream of group?.streams ?? []) stream.socket?.destroy();
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
    (error: unknown) =>
      process.send?.({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies SseFleetReply),
  );
});
process.send?.({ ready: true });

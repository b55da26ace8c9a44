/**
 * The client fleet: a child process holding many socket.io-client sockets, so the clients' parsing
 * does not run on the server's event loop (browsers are elsewhere too). Driven over IPC by
 * {@link ClientFleet}; stamps every chunk it receives with the shared monotonic clock.
 */
import { createRedis, type RedisClient, type RedisTarget } from '../../src/lib/redis';
import { RedisKeys } from '../../src/lib/redis-keys';
import { io, type Socket } from 'socket.io-client';
import { chunkHead, connectLean, eventFramePrefix, type LeanSocket } from './lean-client';
import { generateStream } from './sse-client';
import { now, toWire, type Stamp } from './timing';
import type { FleetReply, FleetRequest } from './client-fleet';

interface Track {
  counts: Uint32Array;
  done: number;
  firstAt?: Stamp;
  lastAt?: Stamp;
  /** Payloads received by client 0, in arrival order (to replay the same bytes elsewhere). */
  sample: unknown[];
  waiters: Array<() => void>;
}

interface Group {
  sockets: Array<Socket | LeanSocket>;
  tracks: Map<string, Track>;
}

const groups = new Map<string, Group>();

/** Generation event streams being followed: each entry stamped when XREAD returned it. */
interface Follow {
  entries: Array<{ seq: number; type: string; stage?: string; at: string }>;
  done: Promise<void>;
  redis: RedisClient;
}
const follows = new Map<string, Follow>();

/**
 * Follows one generation's Redis event stream from its start until `complete` or `error`, from
 * this process, whose event loop is not the one running Switchboard: the stamps say when each event
 * became readable in Redis, free of the benchmark process's own scheduling delays.
 */
function follow(target: RedisTarget, key: string) {
  const redis = createRedis(target, 'blocking');
  const entries: Follow['entries'] = [];
  const done = (async () => {
    let last = '0-0';
    for (;;) {
      const result = await redis.xread('BLOCK', 30_000, 'STREAMS', key, last);
      if (!result) throw new Error(`no events on ${key} for 30 s`);
      const at = toWire(now());
      for (const [id, fields] of result[0][1]) {
        last = id;
        const event = JSON.parse(fields[1]) as { type: string; stage?: string };
        entries.push({ seq: Number.parseInt(id, 10), type: event.type, stage: event.stage, at });
        if (event.type === 'complete' || event.type === 'error') return;
      }
    }
  })();
  follows.set(key, { entries, done, redis });
  return { following: key };
}

async function followed(key: string) {
  const entry = follows.get(key);
  if (!entry) throw new Error(`not following ${key}`);
  try {
    await entry.done;
    return entry.entries;
  } finally {
    entry.redis.disconnect();
    follows.delete(key);
  }
}

function track(group: Group, key: string): Track {
  let entry = group.tracks.get(key);
  if (!entry) {
    entry = { counts: new Uint32Array(group.sockets.length), done: 0, sample: [], waiters: [] };
    group.tracks.set(key, entry);
  }
  return entry;
}

/** Counts one chunk for one client; a key is complete once every client has `chunkCount` chunks. */
function onChunk(group: Group, index: number, at: Stamp, key: string, chunkCount: number, payload: () => unknown) {
  const entry = track(group, key);
  entry.firstAt ??= at;
  if (index === 0) entry.sample.push(payload());
  entry.counts[index] += 1;
  if (entry.counts[index] === chunkCount) {
    entry.done += 1;
    if (entry.done === group.sockets.length) {
      entry.lastAt = at;
      for (const wake of entry.waiters.splice(0)) wake();
    }
  }
}

function connectOne(url: string, auth: Record<string, unknown>, join: { event: string; arg: unknown } | undefined): Promise<Socket> {
  const socket = io(url, { auth, transports: ['websocket'], reconnection: false, forceNew: true, timeout: 20_000 });
  return new Promise((resolve, reject) => {
    socket.once('connect_error', (error) => (socket.close(), reject(error)));
    socket.once('connect', async () => {
      if (!join) return resolve(socket);
      try {
        const ack = (await socket.timeout(20_000).emitWithAck(join.event, join.arg)) as { ok?: boolean; error?: unknown };
        if (ack?.ok === false) throw new Error(`join refused: ${JSON.stringify(ack.error)}`);
        resolve(socket);
      } catch (error) {
        socket.close();
        reject(error);
      }
    });
  });
}

async function connect(request: Extract<FleetRequest, { cmd: 'connect' }>) {
  let group = groups.get(request.group);
  if (!group) {
    group = { sockets: [], tracks: new Map() };
    groups.set(request.group, group);
  }
  if (group.tracks.size) throw new Error(`group ${request.group} is tracking chunks; connect before measuring`);
  const target = group;
  const event = request.event ?? 'blocks_bulk_added_chunk';
  const base = target.sockets.length;
  const connectNext = async (index: number) => {
    if (request.client === 'lean') {
      // Frames are matched on their first bytes; only client 0 parses one, to keep a sample.
      const nsp = new URL(request.url).pathname;
      const prefix = eventFramePrefix(nsp, event);
      const bodyStart = prefix.length - `["${event}",`.length;
      return connectLean(request.url, request.auth, request.join, (frame) => {
        const at = now();
        if (frame.length <= prefix.length || !frame.subarray(0, prefix.length).equals(prefix)) return;
        const head = chunkHead(frame, prefix.length);
        if (head)
          onChunk(
            target,
            index,
            at,
            head.generationId,
            head.chunkCount,
            () => (JSON.parse(frame.toString('utf8', bodyStart)) as unknown[])[1],
          );
      });
    }
    const socket = await connectOne(request.url, request.auth, request.join);
    socket.on(event, (payload: { generationId?: string; chunkCount?: number }) => {
      const at = now();
      if (typeof payload?.generationId === 'string')
        onChunk(target, index, at, payload.generationId, payload.chunkCount ?? 0, () => payload);
    });
    return socket;
  };
  // Indexes are fixed before connecting, so sockets are stored in index order.
  const created: Array<Socket | LeanSocket> = new Array(request.count);
  let started = 0;
  const lane = async () => {
    while (started < request.count) {
      const slot = started;
      started += 1;
      created[slot] = await connectNext(base + slot);
    }
  };
  await Promise.all(Array.from({ length: Math.min(request.concurrency ?? 25, request.count) }, lane));
  target.sockets.push(...created);
  return { connected: target.sockets.length };
}

function completion(request: Extract<FleetRequest, { cmd: 'completion' }>) {
  const group = groups.get(request.group);
  if (!group) throw new Error(`no group ${request.group}`);
  const entry = track(group, request.key);
  const reply = () => {
    group.tracks.delete(request.key);
    return { firstAt: toWire(entry.firstAt!), lastAt: toWire(entry.lastAt!), sample: request.withSample ? entry.sample : undefined };
  };
  if (entry.lastAt !== undefined) return reply();
  return new Promise((resolve) => entry.waiters.push(() => resolve(reply())));
}

function progress(request: Extract<FleetRequest, { cmd: 'progress' }>) {
  const group = groups.get(request.group);
  const entry = group?.tracks.get(request.key);
  return { clients: group?.sockets.length ?? 0, done: entry?.done ?? 0, chunks: entry ? entry.counts.reduce((a, b) => a + b, 0) : 0 };
}

function close(name: string) {
  const group = groups.get(name);
  if (!group) return { closed: 0 };
  for (const socket of group.sockets) socket.close();
  groups.delete(name);
  return { closed: group.sockets.length };
}

/** One generation's SSE stream, read here; its stamps and event names go back, not its data. */
async function generate(request: Extract<FleetRequest, { cmd: 'generate' }>) {
  const { follow: following } = request;
  const stream = await generateStream(request.api, request.token, request.canvasId, request.prompt, {
    onHeaders: (generationId) => {
      if (following) follow(following.target, new RedisKeys(following.keyPrefix).generationEvents(generationId));
    },
  });
  return {
    status: stream.status,
    generationId: stream.generationId,
    startedAt: toWire(stream.startedAt),
    headersAt: toWire(stream.headersAt),
    events: stream.events.map((event) => ({ at: toWire(event.at), id: event.id, event: event.event })),
  };
}

async function handle(request: FleetRequest): Promise<unknown> {
  switch (request.cmd) {
    case 'connect':
      return connect(request);
    case 'completion':
      return completion(request);
    case 'progress':
      return progress(request);
    case 'close':
      return close(request.group);
    case 'follow':
      return follow(request.target, request.key);
    case 'followed':
      return followed(request.key);
    case 'generate':
      return generate(request);
    case 'shutdown':
      for (const name of [...groups.keys()]) close(name);
      for (const entry of follows.values()) entry.redis.disconnect();
      setImmediate(() => process.disconnect?.());
      return { ok: true };
  }
}

process.on('message', (request: FleetRequest) => {
  handle(request).then(
    (result) => process.send?.({ id: request.id, ok: true, result } satisfies FleetReply),
    (error: unknown) =>
      process.send?.({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies FleetReply),
  );
});
// The parent going away ends the fleet, whatever state it is in.
process.on('disconnect', () => {
  for (const name of [...groups.keys()]) close(name);
});
process.send?.({ id: 0, ok: true, result: 'ready' } satisfies FleetReply);

import { randomBytes } from 'node:crypto';
import { duplicateRedis, isCluster, type RedisClient } from '../lib/redis';
import type { Namespace, Socket } from 'socket.io';
import {
  Adapter,
  ClusterAdapter,
  MessageType,
  type BroadcastOptions,
  type ClusterMessage,
  type ClusterResponse,
  type Offset,
  type PrivateSessionId,
  type Session,
} from 'socket.io-adapter';
import type { Logger } from '../lib/logger';
import type { RedisKeys } from '../lib/redis-keys';
import { JsonText } from './socket-parser';

/*
 * Our Socket.IO adapter: rooms across nodes through one Redis stream, built on socket.io-adapter's
 * public `ClusterAdapter`. Its record format is ours, so other code may write records to its stream
 * (the canvas log's `canvasAppend` script, in redis-scripts.ts, adds a canvas's room event in the
 * call that gives it its seq).
 *
 * Records on the stream (field: value, all strings), one of two kinds:
 * - a cluster message: `uid` (the writing adapter), `nsp`, `type` (socket.io-adapter `MessageType`
 *   number), `data` (JSON of the message's data, absent when it has none). Broadcasts, joins, leaves
 *   and disconnects of sockets. The writing node acted on it already and skips it.
 * - a room event: `nsp`, `room`, `event`, `payload` (JSON of the event's one argument), no `uid`:
 *   every node delivers it from the stream, the writer's included, so every node sends a room's
 *   events in stream order.
 *
 * Messages that need an answer or need no history (a broadcast with acknowledgement,
 * `serverSideEmit`, `fetchSockets`) and every answer travel by pub/sub as JSON, on the namespace's
 * channel (every node) and an adapter's own channel (`socketIoChannel`, `socketIoNodeChannel` in
 * redis-keys.ts). A dropped socket's session is kept under `socketIoSession`.
 * Payloads are JSON: binary attachments are not carried across nodes.
 */

/** socket.io-parser's `PacketType.EVENT`: the packet type of `emit(event, ...args)`. */
const EVENT_PACKET = 2;
/** How many records one blocking read returns at most, and how long it waits. */
const READ_COUNT = 100;
const READ_BLOCK_MS = 5_000;
/** After a failed read (not a closed connection), the wait before reading again. */
const READ_RETRY_MS = 1_000;
/** The replay of a recovered session reads the stream in pages of this size, at most this many. */
const RESTORE_PAGE = 1_000;
const RESTORE_MAX_PAGES = 100;
/** How long a restore keeps what it reads for a socket that has not connected yet (its middlewares run meanwhile). */
const RESTORE_KEEP_MS = 30_000;

export interface RedisStreamsAdapterOptions {
  /**
   * The deployment's key names: the stream every node writes to and reads from, the pub/sub
   * channels and the recovery sessions (the `socketIo…` families).
   */
  keys: Pick<RedisKeys, 'socketIoStream' | 'socketIoChannel' | 'socketIoNodeChannel' | 'socketIoSession'>;
  /** The stream's approximate length bound (`XADD MAXLEN ~`). */
  maxLen: number;
  /** How long a dropped socket's session is kept (the connection state recovery window). */
  recoveryWindowMs: number;
  /**
   * Whether this node reads the stream. A node that holds no sockets (an emit-only worker) reads
   * nothing from it: every record there acts on sockets. It still hears pub/sub (answers to its
   * `emitWithAck`, `serverSideEmit`, `fetchSockets`).
   */
  readStream: boolean;
  /** Where failures of the adapter's connections and unreadable records are reported. */
  logger: Logger;
  /** Called with the number of records of each read of the stream that returned some. */
  onRead?: (records: number) => void;
}

/** What a Lua script needs to add a room event of `nsp` to the adapter's stream. */
export interface RoomBroadcastRecord {
  stream: string;
  maxLen: number;
  nsp: string;
  room: string;
}

type Fields = string[];

const BROADCAST_TYPE = String(MessageType.BROADCAST);

/** Whether stream entry id `a` (`<ms>-<seq>`) comes after `b`. */
function laterThan(a: string, b: string): boolean {
  const [aMs, aSeq] = a.split('-').map(BigInt);
  const [bMs, bSeq] = b.split('-').map(BigInt);
  return aMs > bMs || (aMs === bMs && aSeq > bSeq);
}

function field(fields: Fields, name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** A stream record as the cluster message it stands for; throws on a record of neither kind. */
function decodeRecord(fields: Fields): ClusterMessage {
  const nsp = field(fields, 'nsp') ?? '';
  const room = field(fields, 'room');
  if (room !== undefined) {
    // Written by our own scripts from JSON.stringify's output: handed to the sockets as it is,
    // not parsed here to be serialized again by the encoder (socket-parser.ts).
    const payload = new JsonText(field(fields, 'payload') ?? 'null');
    return {
      uid: '',
      nsp,
      type: MessageType.BROADCAST,
      data: { packet: { type: EVENT_PACKET, data: [field(fields, 'event'), payload] }, opts: { rooms: [room], except: [], flags: {} } },
    };
  }
  const type = Number(field(fields, 'type'));
  const data = field(fields, 'data');
  if (!Number.isInteger(type)) throw new Error('record has neither a room nor a message type');
  return {
    uid: field(fields, 'uid') ?? '',
    nsp,
    type,
    ...(data === undefined ? {} : { data: JSON.parse(data) as unknown }),
  } as ClusterMessage;
}

/**
 * A broadcast message as it is before socket.io-adapter's handling appends the offset to its
 * packet's arguments: the arrays it may change are copied, the arguments themselves shared (nothing
 * changes them). Not `structuredClone`, which would turn a `JsonText` argument into a plain object.
 */
function copyOfBroadcast(message: ClusterMessage): ClusterMessage {
  const { packet, opts, ...rest } = (message as { data: { packet: { data: unknown[] }; opts: BroadcastOptionsJson } }).data;
  return {
    ...message,
    data: {
      ...rest,
      packet: { ...packet, data: [...packet.data] },
      opts: { ...opts, rooms: [...opts.rooms], except: [...opts.except], flags: { ...opts.flags } },
    },
  } as ClusterMessage;
}

/** Messages that go by pub/sub: they wait for answers, and a recovered session never replays them. */
function isEphemeral(message: ClusterMessage): boolean {
  return (
    (message.type === MessageType.BROADCAST && message.data.requestId !== undefined) ||
    message.type === MessageType.SERVER_SIDE_EMIT ||
    message.type === MessageType.FETCH_SOCKETS
  );
}

/**
 * The connections and namespaces of one server's adapters: one reader (when the node reads the
 * stream) and one subscriber, both duplicated from the given client and closed by `close`.
 */
export class RedisStreamsCluster {
  private readonly adapters = new Map<string, RedisStreamsAdapter>();
  private readonly channels = new Map<string, RedisStreamsAdapter>();
  private readonly subscriber: RedisClient;
  private readonly reader?: RedisClient;
  private closed = false;
  /** The stream every node writes to and reads from. */
  readonly streamKey: string;
  private lastReadId: string | undefined;

  constructor(
    readonly redis: RedisClient,
    readonly options: RedisStreamsAdapterOptions,
  ) {
    this.streamKey = options.keys.socketIoStream();
    this.subscriber = duplicateRedis(redis);
    this.subscriber.on('error', (error: Error) => this.options.logger.warn({ err: error }, 'socket adapter subscriber: redis error'));
    this.subscriber.on('message', (channel: string, text: string) => this.onPublished(channel, text));
    if (options.readStream) {
      this.reader = duplicateRedis(redis);
      this.reader.on('error', (error: Error) => this.options.logger.warn({ err: error }, 'socket adapter reader: redis error'));
      void this.read(this.reader);
    }
  }

  /** The id of the last record this node's reader took from the stream (none before its first). */
  get lastRead(): string | undefined {
    return this.lastReadId;
  }

  /** The adapter of a namespace, for Socket.IO's `adapter` option. */
  adapterFor(nsp: Namespace): RedisStreamsAdapter {
    const adapter = new RedisStreamsAdapter(nsp, this);
    this.adapters.set(nsp.name, adapter);
    return adapter;
  }

  /** The namespaces this server has adapters for. */
  namespaces(): Namespace[] {
    return [...this.adapters.values()].map((adapter) => adapter.namespace);
  }

  /** @internal Subscribes an adapter to its channels. */
  subscribe(adapter: RedisStreamsAdapter, channels: string[]): void {
    for (const channel of channels) this.channels.set(channel, adapter);
    this.subscriber.subscribe(...channels).catch((error: unknown) => {
      this.options.logger.error(
        { err: error, nsp: adapter.nspName },
        'socket adapter: subscribing failed, this node misses acks and answers',
      );
    });
  }

  /** @internal Forgets a closed adapter; the last one closes the connections. */
  async release(adapter: RedisStreamsAdapter, channels: string[]): Promise<void> {
    this.adapters.delete(adapter.nspName);
    for (const channel of channels) this.channels.delete(channel);
    if (this.adapters.size === 0) this.close();
    else await this.subscriber.unsubscribe(...channels);
  }

  /** Closes the reader and the subscriber (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader?.disconnect();
    this.subscriber.disconnect();
  }

  private onPublished(channel: string, text: string): void {
    const adapter = this.channels.get(channel);
    if (!adapter) return;
    let message: ClusterMessage | ClusterResponse;
    try {
      message = JSON.parse(text) as ClusterMessage | ClusterResponse;
    } catch (error) {
      this.options.logger.warn({ err: error, channel }, 'socket adapter: a published message is not JSON, ignored');
      return;
    }
    adapter.receive(message as ClusterMessage);
  }

  /** Reads the stream from its end on, handing each record to its namespace's adapter, until closed. */
  private async read(reader: RedisClient): Promise<void> {
    let offset = '$';
    while (!this.closed) {
      let result: Array<[string, Array<[string, Fields]>]> | null;
      try {
        result = (await reader.xread('COUNT', READ_COUNT, 'BLOCK', READ_BLOCK_MS, 'STREAMS', this.streamKey, offset)) as typeof result;
      } catch (error) {
        if (this.closed) return;
        this.options.logger.warn({ err: error }, 'socket adapter: reading the stream failed, reading again in a second');
        await new Promise((resolve) => setTimeout(resolve, READ_RETRY_MS));
        continue;
      }
      if (!result) continue;
      const entries = result[0][1];
      this.options.onRead?.(entries.length);
      for (const [id, fields] of entries) {
        offset = id;
        this.lastReadId = id;
        const adapter = this.adapters.get(field(fields, 'nsp') ?? '');
        if (!adapter) continue;
        try {
          adapter.receive(decodeRecord(fields), id);
        } catch (error) {
          this.options.logger.warn({ err: error, id }, 'socket adapter: a stream record could not be read, skipped');
        }
      }
    }
  }
}

/** The adapter of one namespace (see the file's head for what goes where). */
export class RedisStreamsAdapter extends ClusterAdapter {
  private readonly publicChannel: string;
  private readonly channels: string[];
  /**
   * Restores under way, by socket id. Socket.IO joins a restored socket to its rooms once
   * `restoreSession` resolves, and sends it room broadcasts only once its middlewares have run:
   * what this node reads from the stream in between reaches no socket live. Each restore keeps
   * those records: the ones read before it resolves join the missed packets, the later ones are
   * sent when the socket connects.
   */
  private readonly restoring = new Map<string, Restore>();
  /**
   * Recovered sockets whose replay read the stream further than this node's reader had when they
   * connected, by socket id: the last record the replay covered. The reader still hands on the
   * records up to it; the socket had them in its replay, so they skip it, until the reader passes it.
   */
  private readonly replayedUpTo = new Map<string, string>();
  /** The namespace's name (socket.io-adapter types `nsp` loosely). */
  readonly nspName: string;
  /** Broadcasts with an acknowledgement waiting for other nodes' answers, by request id (see `broadcastWithAck`). */
  private readonly acks = new Map<string, AckRequest>();

  constructor(
    readonly namespace: Namespace,
    private readonly cluster: RedisStreamsCluster,
  ) {
    super(namespace);
    this.nspName = namespace.name;
    const { keys } = cluster.options;
    this.publicChannel = keys.socketIoChannel(this.nspName);
    this.channels = [this.publicChannel, keys.socketIoNodeChannel(this.nspName, this.uid)];
    cluster.subscribe(this, this.channels);
    namespace.on('connection', (socket: Socket) => this.onConnection(socket));
  }

  /** Sends a restored socket what this node read for it while it was being set up, and stops keeping. */
  private onConnection(socket: Socket): void {
    const restore = this.restoring.get(socket.id);
    if (!restore) return;
    this.endRestore(socket.id, restore);
    if (!socket.recovered) return;
    for (const [id, message] of restore.read) {
      const missed = laterThan(id, restore.after) ? this.missedPacket(message, restore.rooms) : undefined;
      // Local and synchronous, before any later record reaches the socket; `socket.emit` would go
      // through the stream again (with connection state recovery on) and arrive after them.
      if (missed) this.namespace.local.to(socket.id).emit(...(missed as [string, ...unknown[]]), id);
    }
    const { lastRead } = this.cluster;
    if (lastRead === undefined || laterThan(restore.after, lastRead)) {
      this.replayedUpTo.set(socket.id, restore.after);
      socket.once('disconnect', () => this.replayedUpTo.delete(socket.id));
    }
  }

  private endRestore(sid: string, restore: Restore): void {
    clearTimeout(restore.timer);
    if (this.restoring.get(sid) === restore) this.restoring.delete(sid);
  }

  /** What a script needs to add a room event of this namespace to the stream (see `RoomBroadcastRecord`). */
  roomRecord(room: string): RoomBroadcastRecord {
    return { stream: this.cluster.streamKey, maxLen: this.cluster.options.maxLen, nsp: this.nspName, room };
  }

  /** Hands a message (from the stream, with its offset, or from pub/sub) to socket.io-adapter's handling. */
  receive(message: ClusterMessage, offset?: string): void {
    // Kept before onMessage, which appends the offset to the packet's arguments.
    if (offset !== undefined && this.restoring.size > 0 && message.type === MessageType.BROADCAST) {
      const kept = copyOfBroadcast(message);
      for (const restore of this.restoring.values()) restore.read.push([offset, kept]);
    }
    if (offset !== undefined && this.replayedUpTo.size > 0 && message.type === MessageType.BROADCAST) {
      const { opts } = message.data as { opts: BroadcastOptionsJson };
      for (const [sid, upTo] of this.replayedUpTo) {
        if (laterThan(offset, upTo)) this.replayedUpTo.delete(sid);
        else opts.except = [...opts.except, sid];
      }
    }
    this.onMessage(message, offset);
  }

  protected doPublish(message: ClusterMessage): Promise<Offset> {
    const { redis, options } = this.cluster;
    if (isEphemeral(message)) return redis.publish(this.publicChannel, JSON.stringify(message)).then(() => '');
    const data = 'data' in message ? ['data', JSON.stringify(message.data)] : [];
    return redis
      .xadd(
        this.cluster.streamKey,
        'MAXLEN',
        '~',
        options.maxLen,
        '*',
        'uid',
        message.uid,
        'nsp',
        message.nsp,
        'type',
        String(message.type),
        ...data,
      )
      .then((id) => id ?? '');
  }

  protected doPublishResponse(requesterUid: string, response: ClusterResponse): Promise<void> {
    const channel = this.cluster.options.keys.socketIoNodeChannel(this.nspName, requesterUid);
    return this.cluster.redis.publish(channel, JSON.stringify(response)).then(() => undefined);
  }

  /**
   * socket.io-adapter's `serverSideEmit`, whose promise Socket.IO drops: a failure to count the
   * nodes or to publish (Redis away, the server closing) reaches the emit's acknowledgement as its
   * error, once, or the log when it has none; never an unhandled rejection.
   */
  override async serverSideEmit(packet: unknown[]): Promise<void> {
    const last = packet.at(-1);
    let answered = false;
    const ack =
      typeof last === 'function'
        ? (error: Error | null, responses: unknown[]) => {
            if (answered) return;
            answered = true;
            (last as (error: Error | null, responses: unknown[]) => void)(error, responses);
          }
        : undefined;
    if (ack) packet[packet.length - 1] = ack;
    try {
      await super.serverSideEmit(packet);
    } catch (error) {
      if (ack) ack(error instanceof Error ? error : new Error(String(error)), []);
      else this.cluster.options.logger.warn({ err: error }, 'socket adapter: a server-side emit was not sent');
    }
  }

  /** The nodes subscribed to this namespace's channel, workers included. */
  override async serverCount(): Promise<number> {
    // On a Redis Cluster each node counts only the subscribers connected to it: add up every node's.
    const { redis } = this.cluster;
    const nodes = isCluster(redis) ? redis.nodes('all') : [redis];
    const answers = await Promise.all(nodes.map((node) => node.pubsub('NUMSUB', this.publicChannel)));
    return answers.reduce((sum, answer) => sum + Number(answer[1]), 0);
  }

  override persistSession(session: Omit<Session, 'missedPackets'>): void {
    const { keys, recoveryWindowMs } = this.cluster.options;
    this.cluster.redis.set(keys.socketIoSession(session.pid), JSON.stringify(session), 'PX', recoveryWindowMs).catch((error: unknown) => {
      this.cluster.options.logger.warn({ err: error }, 'socket adapter: session not kept, the socket cannot recover it');
    });
  }

  /**
   * The session of `pid` with the packets for its rooms written to the stream after `offset`. Rejects
   * when the session expired or the stream no longer holds `offset` (Socket.IO then opens a new one).
   */
  override async restoreSession(pid: PrivateSessionId, offset: string): Promise<Session> {
    if (!/^[0-9]+-[0-9]+$/.test(offset)) throw new Error('invalid offset');
    const { redis, options, streamKey } = this.cluster;
    const [stored, atOffset] = await Promise.all([
      redis.getdel(options.keys.socketIoSession(pid)),
      redis.xrange(streamKey, offset, offset),
    ]);
    if (!stored || atOffset.length === 0) throw new Error('session or offset not found');
    const session = { ...(JSON.parse(stored) as Omit<Session, 'missedPackets'>), missedPackets: [] as unknown[][] };
    const restore: Restore = {
      rooms: session.rooms,
      after: offset,
      read: [],
      timer: setTimeout(() => this.endRestore(session.sid, restore), RESTORE_KEEP_MS),
    };
    restore.timer.unref();
    const previous = this.restoring.get(session.sid);
    if (previous) this.endRestore(session.sid, previous);
    this.restoring.set(session.sid, restore);
    try {
      for (let page = 0; page < RESTORE_MAX_PAGES; page += 1) {
        const entries = (await redis.xrange(streamKey, `(${restore.after}`, '+', 'COUNT', RESTORE_PAGE)) as Array<[string, Fields]>;
        for (const [id, fields] of entries) {
          restore.after = id;
          if (field(fields, 'nsp') !== this.nspName || (field(fields, 'room') === undefined && field(fields, 'type') !== BROADCAST_TYPE))
            continue;
          const missed = this.missedPacket(decodeRecord(fields), session.rooms);
          if (missed) session.missedPackets.push([...missed, id]);
        }
        if (entries.length < RESTORE_PAGE) break;
      }
    } catch (error) {
      this.endRestore(session.sid, restore);
      throw error;
    }
    // Read live after the last range read: not in it, and delivered before the socket existed.
    for (const [id, message] of restore.read.splice(0)) {
      if (!laterThan(id, restore.after)) continue;
      restore.after = id;
      const missed = this.missedPacket(message, session.rooms);
      if (missed) session.missedPackets.push([...missed, id]);
    }
    return session;
  }

  /** A broadcast's event arguments, when a socket in `rooms` would have received it live with an offset. */
  private missedPacket(message: ClusterMessage, rooms: string[]): unknown[] | undefined {
    if (message.type !== MessageType.BROADCAST || message.data.requestId !== undefined) return undefined;
    const { packet, opts } = message.data as { packet: { type: number; id?: number; data: unknown[] }; opts: BroadcastOptionsJson };
    if (packet.type !== EVENT_PACKET || packet.id !== undefined || opts.flags?.volatile !== undefined) return undefined;
    const included = opts.rooms.length === 0 || rooms.some((room) => opts.rooms.includes(room));
    const excluded = rooms.some((room) => opts.except.includes(room));
    return included && !excluded ? packet.data : undefined;
  }

  /**
   * socket.io-adapter's `broadcastWithAck`, but the other nodes' answers are forgotten after the
   * ack's timeout on a timer that does not hold the process (the library's does: every device call
   * kept a stopping server, a test or a benchmark up for the whole call timeout), and at once on
   * `close`. The emit's own timeout (Socket.IO's) still ends the wait for answers that never come.
   */
  override broadcastWithAck(
    packet: { nsp?: string; id?: number; data: unknown[] },
    opts: BroadcastOptions,
    clientCountCallback: (clientCount: number) => void,
    ack: (...args: unknown[]) => void,
  ): void {
    if (!opts.flags?.local) {
      const requestId = randomBytes(8).toString('hex');
      const timer = setTimeout(() => this.acks.delete(requestId), opts.flags?.timeout ?? ACK_DEFAULT_TIMEOUT_MS);
      timer.unref();
      this.acks.set(requestId, { clientCountCallback, ack, timer });
      this.publish({
        type: MessageType.BROADCAST,
        data: { packet, requestId, opts: { rooms: [...opts.rooms], except: [...(opts.except ?? [])], flags: opts.flags ?? {} } },
      });
    }
    // This node's sockets, as the in-memory adapter sends to them.
    Adapter.prototype.broadcastWithAck.call(this, packet, opts, clientCountCallback, ack);
  }

  protected override onResponse(response: ClusterResponse): void {
    const { requestId } = response.data as { requestId?: string };
    const request = requestId === undefined ? undefined : this.acks.get(requestId);
    if (request && response.type === MessageType.BROADCAST_CLIENT_COUNT) return request.clientCountCallback(response.data.clientCount);
    if (request && response.type === MessageType.BROADCAST_ACK) return request.ack(response.data.packet);
    super.onResponse(response);
  }

  override async close(): Promise<void> {
    for (const request of this.acks.values()) clearTimeout(request.timer);
    this.acks.clear();
    await this.cluster.release(this, this.channels);
  }
}

/** socket.io-adapter's wait for an acknowledgement when the emit sets no timeout. */
const ACK_DEFAULT_TIMEOUT_MS = 5_000;

/** A broadcast with an acknowledgement: where the other nodes' client counts and answers go, until `timer` forgets it. */
interface AckRequest {
  clientCountCallback: (clientCount: number) => void;
  ack: (...args: unknown[]) => void;
  timer: NodeJS.Timeout;
}

/** A session being restored: its rooms, the last stream entry it covers, and what was read since. */
interface Restore {
  rooms: string[];
  after: string;
  read: Array<[string, ClusterMessage]>;
  timer: NodeJS.Timeout;
}

type BroadcastOptionsJson = { rooms: string[]; except: string[]; flags?: BroadcastOptions['flags'] };

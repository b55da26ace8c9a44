import type { Cluster } from 'ioredis';
import { keySlot } from './redis-keys';
import { duplicateRedis, isCluster, type RedisClient } from './redis';

/** Entries of one Redis stream as `[entryId, firstFieldValue]`, in stream order. */
export type StreamEntry = [id: string, value: string];

/** One entry as its wire bytes, built once per read and shared by every subscriber of the key. */
export interface Frame {
  bytes: Buffer;
  /** The entry ends the stream (its subscribers stop after it). */
  terminal: boolean;
}

/**
 * Turns an entry into its `Frame`. Pass a module-level function (not a per-subscriber closure):
 * subscribers with the same framer share one frame per entry, so 1,000 followers of one key cost
 * one parse and one format per entry, not 1,000.
 */
export type Framer = (entry: StreamEntry) => Frame;

/** Receives entries in order; `frames` (same length) when subscribed with a framer, null if it threw. */
export type Deliver = (entries: StreamEntry[], frames: Frame[] | null | undefined) => void;

/**
 * One subscription: `subscribe` builds one around a callback; a caller that holds an object per
 * subscription anyway (an open stream's live phase) may be its own, through `follow`. The follower
 * moves `last` as it delivers, and calls `deliver` as a method of the subscriber.
 */
export interface Subscriber {
  /** The last entry id this subscriber has (it is handed only later ones). */
  last: string;
  deliver: Deliver;
  framer: Framer | undefined;
}

interface FollowedKey {
  /** Where the next XREAD of this key starts: never past any subscriber's `last`. */
  cursor: string;
  subscribers: Set<Subscriber>;
  /** On a cluster lane: the key's hash slot (one `XREAD` may only name keys of one slot). */
  slot: number;
}

/** An `XREAD` reply: each key with its entries (`[id, [field, value, …]]`), or null when none came. */
type XReadReply = Array<[string, Array<[string, string[]]>]> | null;

/** `a < b` for stream ids `ms-seq` (a bare `ms` counts as `ms-0`). */
export function streamIdBefore(a: string, b: string): boolean {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  // Milliseconds and sequence numbers stay far below 2^53 (Number is exact there).
  const ams = Number(am);
  const bms = Number(bm);
  return ams < bms || (ams === bms && Number(as) < Number(bs));
}

/** `CLIENT LIST` shows the reader under this name (one per API process). */
export const FOLLOWER_CONNECTION_NAME = 'switchboard-stream-follower';

const BLOCK_MS = 5_000;
const COUNT = 500;
/**
 * A cluster lane whose keys span several slots reads them all without blocking, then, when nothing
 * came, blocks this long on one slot's keys: the most an entry of another slot waits beyond a read.
 */
export const SLOT_POLL_MS = 10;

/**
 * One reader per process for every followed Redis stream: a
 * single connection runs `XREAD BLOCK` over all followed keys at once and fans entries out to the
 * subscribers in memory, so an open SSE stream costs a callback, not a Redis connection.
 *
 * When a subscription needs a key the pending read does not cover (a new key, or an earlier
 * cursor), the read is cut short with `CLIENT UNBLOCK` and re-issued with the new key set.
 * A Redis outage only pauses delivery: the loop reconnects and reads on from each key's cursor.
 *
 * On a Redis Cluster one `XREAD` cannot span keys of several nodes: the follower keeps one lane
 * per master node (a follower of its own, reading that node's keys on its own connection, and
 * unblocked through that node), and hands each key to the lane of the node serving its slot. When
 * the cluster's slots move, each key's subscribers move to their new node's lane with their
 * cursors. A lane whose keys span several hash slots (one `XREAD` may not) reads each slot's keys
 * in one pipeline and waits at most `SLOT_POLL_MS` between reads when idle. A single Redis keeps
 * the one reader and its one read.
 */
export class StreamFollower {
  private readonly keys = new Map<string, FollowedKey>();
  private connection: RedisClient | undefined;
  private clientId: number | undefined;
  private running = false;
  /** Set when the key set changed since the pending read was issued. */
  private stale = false;
  private reading = false;
  private closed = false;
  /** Results of `shared()` checks, by name, while fresh. */
  private readonly checks = new Map<string, { until: number; result: Promise<unknown> }>();

  /** On a Redis Cluster: the lane of each master node (`host:port`), created on first use. */
  private readonly lanes = new Map<string, StreamFollower>();

  /**
   * `onMisrouted`: a lane's hook, called when its node answers a read with MOVED/ASK (a slot left
   * it): the cluster follower refreshes the slot table, which moves the key to its new lane.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly onMisrouted?: () => void,
  ) {
    if (isCluster(redis)) redis.on('refresh', this.rehome);
  }

  /** Open subscriptions (for metrics and tests). */
  get size(): number {
    let count = 0;
    for (const followed of this.keys.values()) count += followed.subscribers.size;
    for (const lane of this.lanes.values()) count += lane.size;
    return count;
  }

  /**
   * Calls `deliver` with every entry of `key` after `afterId`, in order, as they are written, until
   * the returned function is called. With a `framer`, each entry is also handed as its shared
   * `Frame` (built once per read for all subscribers of the key with that framer).
   */
  subscribe(key: string, afterId: string, deliver: Deliver, framer?: Framer): () => void {
    const subscriber: Subscriber = { last: afterId, deliver, framer };
    this.follow(key, subscriber);
    return () => this.unfollow(key, subscriber);
  }

  /**
   * `subscribe` with a subscriber object of the caller's (entries after its `last`, to its
   * `deliver`), until `unfollow` with the same object: no closure or wrapper per subscription.
   */
  follow(key: string, subscriber: Subscriber): void {
    if (this.closed) throw new Error('StreamFollower is closed');
    // On a cluster the subscriber goes to its node's lane, and moves lanes as itself when its slot
    // moves: unsubscribing finds it wherever it is, so a subscription costs what it costs on one Redis.
    (isCluster(this.redis) ? this.laneOf(this.redis, key) : this).add(key, subscriber);
  }

  /** Ends `follow(key, subscriber)` (nothing if it already ended). */
  unfollow(key: string, subscriber: Subscriber): void {
    if (this.remove(key, subscriber)) return;
    for (const lane of this.lanes.values()) if (lane.remove(key, subscriber)) return;
  }

  /** Follows `key` for `subscriber` from its `last` (this follower reads the key). */
  private add(key: string, subscriber: Subscriber): void {
    let followed = this.keys.get(key);
    if (!followed) {
      followed = { cursor: subscriber.last, subscribers: new Set(), slot: this.onMisrouted ? keySlot(key) : 0 };
      this.keys.set(key, followed);
      this.changed();
    } else if (streamIdBefore(subscriber.last, followed.cursor)) {
      followed.cursor = subscriber.last;
      this.changed();
    }
    followed.subscribers.add(subscriber);
    this.start();
  }

  /** Drops `subscriber` of `key` if this follower holds it; whether it did. */
  private remove(key: string, subscriber: Subscriber): boolean {
    const current = this.keys.get(key);
    if (!current?.subscribers.delete(subscriber)) return false;
    // The key leaves the read set at the next read; no need to interrupt the pending one.
    if (!current.subscribers.size) this.keys.delete(key);
    return true;
  }

  /**
   * Runs `check` at most once per `maxAgeMs` per `name`, sharing its result between every caller
   * (10,000 streams of one generation ask the database once, not 10,000 times).
   */
  shared<T>(name: string, maxAgeMs: number, check: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const cached = this.checks.get(name);
    if (cached && cached.until > now) return cached.result as Promise<T>;
    if (this.checks.size > 10_000) for (const [k, v] of this.checks) if (v.until <= now) this.checks.delete(k);
    const result = check();
    this.checks.set(name, { until: now + maxAgeMs, result });
    result.catch(() => this.checks.delete(name));
    return result;
  }

  /** Stops reading and drops every subscription. */
  async close(): Promise<void> {
    this.closed = true;
    this.keys.clear();
    this.connection?.disconnect();
    if (isCluster(this.redis)) this.redis.off('refresh', this.rehome);
    await Promise.all([...this.lanes.values()].map((lane) => lane.close()));
    this.lanes.clear();
  }

  /** Cluster: the lane of the master serving `key`'s slot. */
  private laneOf(cluster: Cluster, key: string): StreamFollower {
    const lane = this.servingLane(cluster, key);
    if (!lane) throw new Error(`No Redis Cluster node serves the slot of ${key} yet`);
    return lane;
  }

  /** Cluster: the lane of the master serving `key`'s slot, or undefined while the slot map names none. */
  private servingLane(cluster: Cluster, key: string): StreamFollower | undefined {
    const nodeKey = cluster.slots[keySlot(key)]?.[0];
    const node = nodeKey === undefined ? undefined : cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === nodeKey);
    if (!nodeKey || !node) return undefined;
    let lane = this.lanes.get(nodeKey);
    if (!lane) this.lanes.set(nodeKey, (lane = new StreamFollower(node, () => cluster.refreshSlotsCache())));
    return lane;
  }

  /**
   * Cluster: after the slots were refreshed, moves each key whose slot another node now serves to
   * that node's lane, every subscriber with its own position (nothing is lost or repeated).
   */
  private readonly rehome = (): void => {
    if (this.closed || !isCluster(this.redis)) return;
    for (const lane of this.lanes.values()) {
      for (const [key, followed] of lane.keys) {
        // A slot the map names no node for yet stays on its lane until the next refresh.
        const target = this.servingLane(this.redis, key);
        if (!target || target === lane) continue;
        lane.keys.delete(key);
        for (const subscriber of followed.subscribers) target.add(key, subscriber);
      }
    }
  };

  private changed(): void {
    this.stale = true;
    if (this.reading) void this.interrupt();
  }

  /** Cuts the pending XREAD short so the loop re-reads with the new key set. */
  private async interrupt(): Promise<void> {
    for (let attempt = 0; attempt < 20 && this.reading && this.stale && this.clientId !== undefined; attempt += 1) {
      const unblocked = await this.redis.client('UNBLOCK', this.clientId).catch(() => 0);
      if (unblocked === 1) return;
      // The read may not have reached Redis yet: try again shortly (the BLOCK timeout bounds the worst case).
      await new Promise((resolve) => setTimeout(resolve, 5 * (attempt + 1)));
    }
  }

  private start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    void this.loop().finally(() => {
      this.running = false;
      if (this.keys.size && !this.closed) this.start();
    });
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.keys.size && !this.closed) {
      try {
        const connection = await this.connect();
        const slots = this.onMisrouted ? this.slotGroups() : undefined;
        if (slots && slots.length > 1) {
          await this.readSlots(connection, slots);
          failures = 0;
          continue;
        }
        const keys = [...this.keys.keys()];
        const cursors = keys.map((key) => this.keys.get(key)!.cursor);
        this.stale = false;
        this.reading = true;
        let result: Array<[string, Array<[string, string[]]>]> | null;
        try {
          result = await connection.xread('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...cursors);
        } finally {
          this.reading = false;
        }
        failures = 0;
        for (const [key, entries] of result ?? []) this.fanOut(key, cursors[keys.indexOf(key)], entries);
      } catch (error) {
        if (this.closed) return;
        if (this.onMisrouted && /^(MOVED|ASK) /.test((error as Error).message ?? '')) this.onMisrouted();
        // Connection lost or refused: the id changes on reconnect; read again from the cursors.
        this.clientId = undefined;
        failures += 1;
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 2_000)));
      }
    }
  }

  /** Cluster lane: the followed keys grouped by hash slot. */
  private slotGroups(): string[][] {
    const groups = new Map<number, string[]>();
    for (const [key, followed] of this.keys) {
      const group = groups.get(followed.slot);
      if (group) group.push(key);
      else groups.set(followed.slot, [key]);
    }
    return [...groups.values()];
  }

  /**
   * The slot whose entries came last: the short blocking read waits on it, so a slot that streams
   * (a generation being written) is read the moment it is written, not at the next poll.
   */
  private liveSlot: number | undefined;
  /** Which slot group the short blocking read waits on while no followed slot has had entries. */
  private turn = 0;

  /**
   * Cluster lane with keys of several slots (Redis refuses an `XREAD` across slots): one pipeline
   * of non-blocking reads, one per slot, on the lane's one connection; when none brings anything,
   * one read blocks for at most `SLOT_POLL_MS` (cut short like the long read when the key set
   * changes) on the slot that last brought entries (in turn while none has). An idle lane thus
   * costs one pipeline of one `XREAD` per followed slot every `SLOT_POLL_MS`; an entry of the slot
   * that streams is read as it is written, one of another slot waits at most `SLOT_POLL_MS` beyond
   * a round trip.
   */
  private async readSlots(connection: RedisClient, groups: string[][]): Promise<void> {
    const cursors = new Map<string, string>();
    for (const [key, followed] of this.keys) cursors.set(key, followed.cursor);
    const startsOf = (keys: string[]): string[] => keys.map((key) => cursors.get(key)!);
    this.stale = false;
    const pipeline = connection.pipeline();
    for (const keys of groups) pipeline.xread('COUNT', COUNT, 'STREAMS', ...keys, ...startsOf(keys));
    const replies = (await pipeline.exec()) ?? [];
    let read = false;
    let failure: Error | undefined;
    for (const [error, result] of replies) {
      if (error) {
        failure ??= error;
        continue;
      }
      read = this.fanOutRead(result as XReadReply, cursors) || read;
    }
    // Entries of the other slots are delivered first; a MOVED/ASK then takes the error path.
    if (failure) throw failure;
    if (read || this.stale || this.closed) return;
    let keys = this.liveSlot === undefined ? undefined : groups.find((group) => this.keys.get(group[0])?.slot === this.liveSlot);
    if (!keys) {
      this.turn = (this.turn + 1) % groups.length;
      keys = groups[this.turn];
    }
    this.reading = true;
    let result: XReadReply;
    try {
      result = await connection.xread('COUNT', COUNT, 'BLOCK', SLOT_POLL_MS, 'STREAMS', ...keys, ...startsOf(keys));
    } finally {
      this.reading = false;
    }
    this.fanOutRead(result, cursors);
  }

  /** Fans out one slot's `XREAD` reply; whether it brought entries (its slot is then the live one). */
  private fanOutRead(result: XReadReply, cursors: Map<string, string>): boolean {
    let read = false;
    for (const [key, entries] of result ?? []) {
      if (!entries.length) continue;
      read = true;
      this.liveSlot = this.keys.get(key)?.slot ?? this.liveSlot;
      this.fanOut(key, cursors.get(key)!, entries);
    }
    return read;
  }

  /**
   * Hands entries read after `readCursor` to the subscribers that were at or past it; one that
   * joined with an earlier cursor meanwhile gets them from the next read, which starts at its own.
   */
  private fanOut(key: string, readCursor: string, raw: Array<[string, string[]]>): void {
    const followed = this.keys.get(key);
    if (!followed || !raw.length) return;
    const entries: StreamEntry[] = raw.map(([id, fields]) => [id, fields[1]]);
    // Frames of this read, per framer: built at the first subscriber that needs them.
    const framed = new Map<Framer, Frame[] | null>();
    let cursor: string | undefined;
    for (const subscriber of followed.subscribers) {
      // Most subscribers are exactly at the read's cursor: a string compare, no id parsing (1,000
      // followers of one generation go through here for every read).
      const atCursor = subscriber.last === readCursor;
      if (!atCursor && streamIdBefore(subscriber.last, readCursor)) {
        cursor = earlierId(subscriber.last, cursor);
        continue;
      }
      let frames: Frame[] | null | undefined;
      if (subscriber.framer) {
        frames = framed.get(subscriber.framer);
        if (frames === undefined) {
          frames = frameAll(subscriber.framer, entries);
          framed.set(subscriber.framer, frames);
        }
      }
      this.deliverTo(subscriber, entries, frames, atCursor);
      cursor = earlierId(subscriber.last, cursor);
    }
    if (cursor !== undefined) followed.cursor = cursor;
  }

  private deliverTo(subscriber: Subscriber, entries: StreamEntry[], frames: Frame[] | null | undefined, atCursor: boolean): void {
    // Only what this subscriber has not seen: a later joiner may have read part of it already.
    // Entries are in id order, so the unseen ones are a suffix (all of them when it is at the cursor).
    let start = 0;
    while (!atCursor && start < entries.length && !streamIdBefore(subscriber.last, entries[start][0])) start += 1;
    if (start === entries.length) return;
    const fresh = start ? entries.slice(start) : entries;
    subscriber.last = fresh[fresh.length - 1][0];
    try {
      subscriber.deliver(fresh, start && frames ? frames.slice(start) : frames);
    } catch {
      // A subscriber's failure is its own; the others still get the entries.
    }
  }

  private async connect(): Promise<RedisClient> {
    // A lane of a cluster follower holds a node's own connection (a `Redis`), never the cluster.
    if (!this.connection) {
      // Retries forever while Redis is away, but never replays a read issued before a drop: the
      // loop re-issues it with fresh cursors and the new connection's id.
      this.connection = duplicateRedis(this.redis, {
        enableOfflineQueue: true,
        maxRetriesPerRequest: null,
        autoResendUnfulfilledCommands: false,
        lazyConnect: false,
        connectionName: FOLLOWER_CONNECTION_NAME,
      });
      this.connection.on('error', () => undefined);
      this.connection.on('close', () => void (this.clientId = undefined));
    }
    if (this.clientId === undefined) this.clientId = Number(await this.connection.client('ID'));
    return this.connection;
  }
}

/** The earlier of two stream ids (`b` may be unset); equal ids cost one string compare. */
function earlierId(a: string, b: string | undefined): string {
  return b === undefined || (a !== b && streamIdBefore(a, b)) ? a : b;
}

/** Every entry's frame, or null when the framer throws (a malformed entry): the subscribers end the stream. */
function frameAll(framer: Framer, entries: StreamEntry[]): Frame[] | null {
  try {
    return entries.map(framer);
  } catch {
    return null;
  }
}

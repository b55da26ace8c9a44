import { isCluster, type RedisClient } from '../lib/redis';
import { redisKeys, type RedisKeys } from '../lib/redis-keys';
import { redisScripts, type RedisScripts } from '../lib/redis-scripts';
import type { StreamFollower } from '../lib/stream-follower';
import type { RoomBroadcastRecord } from './redis-streams-adapter';
import { JsonText } from './socket-parser';
import type { LoggedCanvasEvent, StagedCanvasEvent } from '../schemas/canvas-room';

/** How long a deleted canvas refuses room events: far beyond any job still running for it. */
const DELETED_MARK_SECONDS = 24 * 3600;

export type CanvasCatchUp = { resync: false; events: LoggedCanvasEvent[]; lastSeq: number } | { resync: true; lastSeq: number };

/**
 * A payload's JSON with its closing brace replaced by `,"seq":`, for the append script to close
 * with the seq it assigns: one new string in Lua per event instead of two (each string Redis builds
 * for a chunk costs it CPU).
 */
function openForSeq(payload: object): string {
  const json = payload instanceof JsonText ? payload.text : JSON.stringify(payload);
  return json === '{}' ? '{"seq":' : `${json.slice(0, -1)},"seq":`;
}

/**
 * The sequence and replay log of every canvas's room events. Every event of a canvas
 * gets `seq`, strictly increasing across all API and worker processes, and stays readable for
 * `ttlSeconds` (at least the recovery window) in a stream bounded to about `maxEvents`, so a
 * client that saw seq N can ask for everything after N, after any reconnect, on any node.
 *
 * An append is one call to Redis (the `canvasAppend` script): seqs, log and, for a broadcast, the
 * Socket.IO adapter's room event records in one write, so the adapter's stream holds a canvas's
 * events in seq order and a batch reaches a reading node in one read.
 *
 * On a Redis Cluster the adapter's stream lives in another slot than the canvas's keys, and no
 * script may touch both: the append is two steps. The script gives the seqs and
 * logs the events in the canvas's slot; then one `XADD` per event, in one MULTI on the stream's
 * one slot, sends them (so a batch still reaches a reading node in one read). Two writers of one canvas may then put their events on the stream out of seq
 * order, and a process that dies between the steps leaves events logged but never sent: clients
 * hold an event that arrives ahead of a gap and ask `canvas:sync` for the gap, which the log
 * answers, so both end as a late event, never a lost one.
 */
export class CanvasLog {
  private readonly keys: RedisKeys;
  private readonly scripts: RedisScripts;

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
    private readonly options: { maxEvents: number; ttlSeconds: number; maxCatchUp: number },
    /** The process's one reader of Redis streams: `follow` needs it (the api role's room feeds). */
    private readonly follower?: StreamFollower,
  ) {
    this.keys = redisKeys(keyPrefix);
    this.scripts = redisScripts(redis);
  }

  /**
   * Logs one room event (an object); returns its seq, or 0 when the canvas was deleted
   * (then nothing is logged or sent). With `broadcast`, the same call sends it: the adapter's
   * room event record of it, seq included, is added to the adapter's stream.
   */
  async append(canvasId: string, event: string, payload: object, broadcast?: RoomBroadcastRecord): Promise<number> {
    return (await this.appendAll(canvasId, event, [payload], broadcast))[0];
  }

  /**
   * `append` for several events of one canvas, in order, in one call to Redis (a broadcast's
   * chunks), with consecutive seqs. Resolves with their seqs (each 0 when the canvas was deleted);
   * rejects when Redis refused the call (a script failing part way, e.g. out of memory, leaves the
   * events before the failure logged and sent, as separate calls would; clients catch up on the
   * rest through the seq gap).
   */
  async appendAll(canvasId: string, event: string, payloads: object[], broadcast?: RoomBroadcastRecord): Promise<number[]> {
    if (!payloads.length) return [];
    if (broadcast && isCluster(this.redis)) return this.appendThenSend(canvasId, event, payloads, broadcast);
    const seqs = await this.scripts.canvasAppend(
      {
        seq: this.keys.canvasSeq(canvasId),
        log: this.keys.canvasLog(canvasId),
        gone: this.keys.canvasGone(canvasId),
        adapterStream: broadcast?.stream,
      },
      {
        event,
        maxLen: this.options.maxEvents,
        ttlMs: this.options.ttlSeconds * 1000,
        broadcast: broadcast && { maxLen: broadcast.maxLen, nsp: broadcast.nsp, room: broadcast.room },
        openPayloads: payloads.map(openForSeq),
      },
    );
    return seqs.length ? seqs : payloads.map(() => 0);
  }

  /** `appendAll` on a Redis Cluster: the log's script in the canvas's slot, then the stream's records. */
  private async appendThenSend(canvasId: string, event: string, payloads: object[], broadcast: RoomBroadcastRecord): Promise<number[]> {
    const open = payloads.map(openForSeq);
    const seqs = await this.logOnly(canvasId, event, open);
    if (!seqs.length) return payloads.map(() => 0);
    await this.send(event, open, seqs, broadcast);
    return seqs;
  }

  /**
   * `append` in two steps: logs the event now and returns its seq with `send`, which adds its room
   * event record to the adapter's stream when called. For an event whose change is committed between
   * the two (`CanvasEmitter.stage`). On a deleted canvas the seq is 0, nothing is logged and `send`
   * sends nothing.
   */
  async stage(canvasId: string, event: string, payload: object, broadcast: RoomBroadcastRecord): Promise<StagedCanvasEvent> {
    const open = [openForSeq(payload)];
    const seqs = await this.logOnly(canvasId, event, open);
    if (!seqs.length) return { seq: 0, send: () => Promise.resolve() };
    return { seq: seqs[0], send: () => this.send(event, open, seqs, broadcast) };
  }

  /** Gives the events their seqs and logs them, in the canvas's slot; none (an empty list) on a deleted canvas. */
  private logOnly(canvasId: string, event: string, open: string[]): Promise<number[]> {
    return this.scripts.canvasAppend(
      { seq: this.keys.canvasSeq(canvasId), log: this.keys.canvasLog(canvasId), gone: this.keys.canvasGone(canvasId) },
      { event, maxLen: this.options.maxEvents, ttlMs: this.options.ttlSeconds * 1000, openPayloads: open },
    );
  }

  /** Adds logged events' room event records to the adapter's stream, in one script call (a node blocked reading it is answered once all are in). */
  private async send(event: string, open: string[], seqs: number[], broadcast: RoomBroadcastRecord): Promise<void> {
    // The adapter's room event record, as the single-Redis script writes it.
    const payloads = seqs.map((seq, index) => `${open[index]}${seq}}`);
    await this.scripts.roomRecordsAppend(
      { stream: broadcast.stream },
      { maxLen: broadcast.maxLen, nsp: broadcast.nsp, room: broadcast.room, event, payloads },
    );
  }

  /**
   * The events after `afterSeq`, in order; `resync` when some of them are no longer kept (trimmed,
   * expired) or there are more than `maxCatchUp` (reloading the canvas is then cheaper).
   */
  async since(canvasId: string, afterSeq: number): Promise<CanvasCatchUp> {
    const { lastSeq, firstSeq, entries } = await this.scripts.canvasSince(
      { seq: this.keys.canvasSeq(canvasId), log: this.keys.canvasLog(canvasId) },
      { afterSeq, cap: this.options.maxCatchUp },
    );
    if (afterSeq === lastSeq) return { resync: false, events: [], lastSeq };
    // The counter is behind the client: Redis lost its data. Only a reload is safe.
    if (afterSeq > lastSeq) return { resync: true, lastSeq };
    // Missing: the log starts after afterSeq + 1 (trimmed), or holds nothing newer at all (expired).
    if (firstSeq === 0 || firstSeq > afterSeq + 1 || entries.length > this.options.maxCatchUp) return { resync: true, lastSeq };
    const events = entries.map(([id, fields]) => {
      const field = (name: string) => fields[fields.indexOf(name) + 1];
      return { seq: Number.parseInt(id, 10), event: field('e'), payload: JSON.parse(field('p')) as Record<string, unknown> };
    });
    return { resync: false, events, lastSeq };
  }

  /**
   * The kept events named `event`, oldest first. A full read of the stream (bounded to about
   * `maxEvents`): meant for the rare re-run of a job, not for every event.
   */
  async eventsNamed(canvasId: string, event: string): Promise<LoggedCanvasEvent[]> {
    const entries = (await this.redis.xrange(this.keys.canvasLog(canvasId), '-', '+')) as Array<[string, string[]]>;
    return entries
      .filter(([, fields]) => fields[fields.indexOf('e') + 1] === event)
      .map(([id, fields]) => ({
        seq: Number.parseInt(id, 10),
        event,
        payload: JSON.parse(fields[fields.indexOf('p') + 1]) as Record<string, unknown>,
      }));
  }

  /**
   * Drops a deleted canvas's counter and log (the counter never expires by itself) and marks it
   * deleted for a day, so events from jobs still running for it are refused, not logged anew.
   */
  async forget(canvasId: string): Promise<void> {
    const results = await this.redis
      .multi()
      .set(this.keys.canvasGone(canvasId), '1', 'EX', DELETED_MARK_SECONDS)
      .del(this.keys.canvasSeq(canvasId), this.keys.canvasLog(canvasId))
      .exec();
    const failed = results?.find(([error]) => error)?.[0];
    if (failed) throw failed;
  }

  /**
   * Calls `wake` when events after `afterSeq` are logged for the canvas, until the returned function
   * is called. It says only that there is something new: the reader takes the events from `since`
   * (the follower hands on one field of an entry, and an event is two).
   */
  follow(canvasId: string, afterSeq: number, wake: () => void): () => void {
    if (!this.follower) throw new Error('CanvasLog.follow needs the stream follower');
    return this.follower.subscribe(this.keys.canvasLog(canvasId), `${afterSeq}-0`, wake);
  }

  /** The seq of the canvas's latest event (0 when it has none, or they expired). */
  async lastSeq(canvasId: string): Promise<number> {
    return Number((await this.redis.get(this.keys.canvasSeq(canvasId))) ?? 0);
  }
}

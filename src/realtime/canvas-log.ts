import type { Redis } from 'ioredis';
import type { RoomBroadcastRecord } from './redis-streams-adapter';

/** How long a deleted canvas refuses room events: far beyond any job still running for it. */
const DELETED_MARK_SECONDS = 24 * 3600;

/** One room event of a canvas as kept in its log. */
export interface LoggedCanvasEvent {
  seq: number;
  event: string;
  payload: Record<string, unknown>;
}

export type CanvasCatchUp = { resync: false; events: LoggedCanvasEvent[]; lastSeq: number } | { resync: true; lastSeq: number };

/**
 * A payload already serialized: the text of a JSON object, sent as it is. For a caller that holds
 * the parts as JSON already (the broadcast's kept blocks), so they are not parsed and serialized
 * again on the way.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/**
 * A payload's JSON with its closing brace replaced by `,"seq":`, for the script to close with the
 * seq it assigns: one new string in Lua per event instead of two (a 5 KB chunk costs Redis ~6 µs
 * per string it builds).
 */
function openForSeq(payload: object): string {
  const json = payload instanceof JsonText ? payload.text : JSON.stringify(payload);
  return json === '{}' ? '{"seq":' : `${json.slice(0, -1)},"seq":`;
}

/*
 * One round trip for one or several room events of a canvas: the canvas's next seqs (INCRBY,
 * consecutive), each event appended to the canvas's stream under the entry id `<seq>-0` (so a
 * range read by seq is an XRANGE), the stream's TTL refreshed. The counter never expires: a seq is
 * never reused, so a client that was away for an hour cannot mistake new events for ones it has
 * seen. KEYS: seq counter, stream, the deleted canvas's mark. ARGV: event name, max length, ttl
 * ms, then the adapter stream's max length, the namespace and the room (ignored without a fourth
 * key), then the payloads, each open for its seq (`openForSeq`). Returns the seqs, or an empty list
 * when the canvas was deleted (nothing logged or sent: a job still running for it must not bring
 * back the counter its deletion dropped).
 *
 * With a fourth key, the Socket.IO adapter's stream, the same call also adds each event to it as
 * the adapter's room event record (fields `nsp`, `room`, `event`, `payload`, no `uid`; the format
 * is documented in redis-streams-adapter.ts), payload and seq included (0158): one write instead
 * of two, and the adapter's stream holds a canvas's events in seq order. Several events in one
 * call reach a node reading that stream together, as one batch it sends in one go, instead of the
 * first alone (Redis answers a blocked XREAD after the first command that adds to its stream; 0161).
 */
const CANVAS_APPEND_SCRIPT = `
if redis.call('EXISTS', KEYS[3]) == 1 then return {} end
local count = #ARGV - 6
local first = redis.call('INCRBY', KEYS[1], count) - count
local seqs = {}
for i = 1, count do
  local seq = first + i
  local payload = ARGV[6 + i] .. seq .. '}'
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', ARGV[1], 'p', payload)
  if KEYS[4] then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'nsp', ARGV[5], 'room', ARGV[6], 'event', ARGV[1], 'payload', payload)
  end
  seqs[i] = seq
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return seqs
`;

/*
 * What a client missed after `afterSeq`: the last seq, the first seq the stream still holds, and up
 * to `cap + 1` entries after afterSeq. KEYS: seq counter, stream. ARGV: afterSeq, cap.
 */
const CANVAS_SINCE_SCRIPT = `
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local firstSeq = 0
if first[1] then firstSeq = tonumber(string.match(first[1][1], '^(%d+)')) end
local entries = redis.call('XRANGE', KEYS[2], (tonumber(ARGV[1]) + 1) .. '-0', '+', 'COUNT', tonumber(ARGV[2]) + 1)
return {last, firstSeq, entries}
`;

/**
 * The sequence and replay log of every canvas's room events. Every event of a canvas
 * gets `seq`, strictly increasing across all API and worker processes, and stays readable for
 * `ttlSeconds` (at least the recovery window) in a stream bounded to about `maxEvents`, so a
 * client that saw seq N can ask for everything after N, after any reconnect, on any node.
 */
export class CanvasLog {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly options: { maxEvents: number; ttlSeconds: number; maxCatchUp: number },
  ) {
    if (!('sbCanvasAppend' in redis)) {
      redis.defineCommand('sbCanvasAppend', { numberOfKeys: 3, lua: CANVAS_APPEND_SCRIPT });
      redis.defineCommand('sbCanvasAppendBroadcast', { numberOfKeys: 4, lua: CANVAS_APPEND_SCRIPT });
      redis.defineCommand('sbCanvasSince', { numberOfKeys: 2, lua: CANVAS_SINCE_SCRIPT });
    }
  }

  /** The seq counter and the replay log. */
  private keys(canvasId: string): [string, string] {
    return [`${this.keyPrefix}:canvas:${canvasId}:seq`, `${this.keyPrefix}:canvas:${canvasId}:log`];
  }

  /** The mark a deleted canvas leaves (canvas ids are never reused). */
  private goneKey(canvasId: string): string {
    return `${this.keyPrefix}:canvas:${canvasId}:gone`;
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
    const keys = [...this.keys(canvasId), this.goneKey(canvasId)];
    const settings = [event, this.options.maxEvents, this.options.ttlSeconds * 1000];
    const [command, args] = broadcast
      ? ['sbCanvasAppendBroadcast', [...keys, broadcast.stream, ...settings, broadcast.maxLen, broadcast.nsp, broadcast.room]]
      : ['sbCanvasAppend', [...keys, ...settings, '', '', '']];
    const seqs =
      (await (this.redis as unknown as Record<string, (...args: unknown[]) => Promise<number[]>>)[command].call(
        this.redis,
        ...args,
        ...payloads.map(openForSeq),
      )) ?? [];
    return seqs.length ? seqs.map(Number) : payloads.map(() => 0);
  }

  /**
   * The events after `afterSeq`, in order; `resync` when some of them are no longer kept (trimmed,
   * expired) or there are more than `maxCatchUp` (reloading the canvas is then cheaper).
   */
  async since(canvasId: string, afterSeq: number): Promise<CanvasCatchUp> {
    const command = (this.redis as unknown as Record<string, (...args: unknown[]) => Promise<[number, number, Array<[string, string[]]>]>>)
      .sbCanvasSince;
    const [lastRaw, firstRaw, entries] = await command.call(this.redis, ...this.keys(canvasId), afterSeq, this.options.maxCatchUp);
    const lastSeq = Number(lastRaw);
    const firstSeq = Number(firstRaw);
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
    const entries = (await this.redis.xrange(this.keys(canvasId)[1], '-', '+')) as Array<[string, string[]]>;
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
      .set(this.goneKey(canvasId), '1', 'EX', DELETED_MARK_SECONDS)
      .del(...this.keys(canvasId))
      .exec();
    const failed = results?.find(([error]) => error)?.[0];
    if (failed) throw failed;
  }

  /** The seq of the canvas's latest event (0 when it has none, or they expired). */
  async lastSeq(canvasId: string): Promise<number> {
    return Number((await this.redis.get(this.keys(canvasId)[0])) ?? 0);
  }
}

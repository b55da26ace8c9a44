import { createHash } from 'node:crypto';
import type { RedisClient } from './redis';

/**
 * Every Lua script the server runs, sent as EVALSHA (EVAL the first time a connection runs it, and
 * when the server no longer holds it), behind a typed wrapper that names its keys and arguments
 * and parses its reply. Callers never touch `eval` or a script's SHA. Key names come from
 * `redis-keys.ts`; the keys one script touches share the hash tag that `slot` there gives them, so
 * every script runs on a Redis Cluster as on one server.
 */

/** A script: its Lua and how many of its arguments are keys. */
interface ScriptDefinition {
  numberOfKeys: number;
  lua: string;
}

/*
 * Gives one or several room events of a canvas its next seqs (INCRBY, consecutive) and appends
 * each to the canvas's log under the entry id `<seq>-0` (so a range read by seq is an XRANGE),
 * then refreshes the log's TTL. The counter never expires: a seq is never reused. KEYS: seq
 * counter, log, the deleted canvas's mark, and optionally the Socket.IO adapter's stream. ARGV:
 * event name, log max length, log TTL ms, the adapter stream's max length, namespace, room
 * (ignored without the fourth key), then the payloads, each a JSON object whose closing is left
 * for the seq (`{…,"seq":`): the script closes it with `<seq>}`, one string built per event.
 * Returns the seqs, or an empty list when the canvas was deleted (nothing logged or sent).
 *
 * With the fourth key, each event is also added to the adapter's stream as its room event record
 * (fields `nsp`, `room`, `event`, `payload`, no `uid`; format in redis-streams-adapter.ts), in the
 * same call: one write, and the stream holds a canvas's events in seq order. All of a call's events
 * reach a reading node in one read. On a Redis Cluster that key is in another slot than the
 * canvas's, so there the script runs with three keys and the caller adds the records after it
 * (canvas-log.ts).
 */
const CANVAS_APPEND_LUA = `
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
 * A budget reservation across a user's hour and month windows: all windows or none. KEYS: hour
 * window, month window, reservation. ARGV: tokens, requests, micro-USD, started (0/1), hour window
 * TTL ms, month window TTL ms, reservation TTL ms, seeded (0/1), the hour's seed (used tokens,
 * requests, micro-USD), the month's seed, the hour's limits (tokens, requests, micro-USD; -1 =
 * none), the month's limits, the user's plan version. A window that does not exist yet, or was
 * counted under another version of the plan, takes its used amounts from the recorded usage the
 * caller read (asked for with reply 2 when it sent none); its reservations stay. A limit may be
 * reached, never passed.
 * Replies {0} taken, {1} the reservation exists already, {2} a window needs its seed, or
 * {3, window (1 hour, 2 month), dimension (1 tokens, 2 requests, 3 micro-USD), limit, used, reserved}.
 */
const BUDGET_RESERVE_LUA = `
if redis.call('EXISTS', KEYS[3]) == 1 then return {1} end
local fields = {'t', 'r', 'c'}
for w = 1, 2 do
  if redis.call('HGET', KEYS[w], 'v') ~= ARGV[21] then
    if ARGV[8] ~= '1' then return {2} end
    local seed = 8 + (w - 1) * 3
    redis.call('HSET', KEYS[w], 'ut', ARGV[seed + 1], 'ur', ARGV[seed + 2], 'uc', ARGV[seed + 3], 'v', ARGV[21])
    for d = 1, 3 do redis.call('HSETNX', KEYS[w], 'r' .. fields[d], 0) end
    redis.call('PEXPIRE', KEYS[w], ARGV[4 + w])
  end
end
for w = 1, 2 do
  for d = 1, 3 do
    local limit = tonumber(ARGV[14 + (w - 1) * 3 + d])
    if limit >= 0 then
      local used = tonumber(redis.call('HGET', KEYS[w], 'u' .. fields[d]) or '0')
      local reserved = tonumber(redis.call('HGET', KEYS[w], 'r' .. fields[d]) or '0')
      if used + reserved + tonumber(ARGV[d]) > limit then return {3, w, d, limit, used, reserved} end
    end
  end
end
for w = 1, 2 do
  for d = 1, 3 do redis.call('HINCRBY', KEYS[w], 'r' .. fields[d], ARGV[d]) end
end
redis.call('HSET', KEYS[3], 't', ARGV[1], 'r', ARGV[2], 'c', ARGV[3], 's', ARGV[4], 'at', redis.call('TIME')[1])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
return {0}
`;

/*
 * Ends a budget reservation: its amounts leave `reserved` and the actual usage joins `used`, in
 * both windows. KEYS: hour window, month window, reservation, reaped mark. ARGV: tokens, requests,
 * micro-USD actually used, mode: `call` (the call ended), `reap` (the reaper settles an expired
 * one: a call that started and never ended is charged all it reserved, since its process died
 * before it could record what the provider billed; one no call started, nothing; the mark keeps
 * what was charged, a day), `release` (a reservation no call started: gone with
 * nothing charged; one a call started is left to that call). A `call` whose reservation the reaper
 * already settled charges only what exceeds the mark. Returns the seconds the reservation was
 * open, or -1 when nothing was settled.
 */
const BUDGET_SETTLE_LUA = `
local fields = {'t', 'r', 'c'}
local held = redis.call('HMGET', KEYS[3], 't', 'r', 'c', 's', 'at')
if not held[1] then
  if ARGV[4] == 'call' then
    local charged = redis.call('HMGET', KEYS[4], 't', 'r', 'c')
    if charged[1] then
      for w = 1, 2 do
        if redis.call('EXISTS', KEYS[w]) == 1 then
          for d = 1, 3 do
            local more = tonumber(ARGV[d]) - tonumber(charged[d])
            if more > 0 then redis.call('HINCRBY', KEYS[w], 'u' .. fields[d], more) end
          end
        end
      end
      redis.call('DEL', KEYS[4])
    end
  end
  return -1
end
if ARGV[4] == 'release' and held[4] == '1' then return -1 end
local actual = {ARGV[1], ARGV[2], ARGV[3]}
if ARGV[4] == 'release' or (ARGV[4] == 'reap' and held[4] ~= '1') then actual = {0, 0, 0} end
if ARGV[4] == 'reap' and held[4] == '1' then actual = {held[1], held[2], held[3]} end
for w = 1, 2 do
  if redis.call('EXISTS', KEYS[w]) == 1 then
    for d = 1, 3 do
      redis.call('HINCRBY', KEYS[w], 'r' .. fields[d], 0 - tonumber(held[d]))
      redis.call('HINCRBY', KEYS[w], 'u' .. fields[d], actual[d])
    end
  end
end
redis.call('DEL', KEYS[3])
if ARGV[4] == 'reap' then
  redis.call('HSET', KEYS[4], 't', actual[1], 'r', actual[2], 'c', actual[3])
  redis.call('EXPIRE', KEYS[4], 86400)
end
return redis.call('TIME')[1] - tonumber(held[5])
`;

/** The tail of the sequenced log's appends: the event after the last (id `<seq>-0`), the TTL renewed, the seq returned. */
const APPEND_NEXT_LUA = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq = 1
if #last > 0 then seq = tonumber(string.match(last[1][1], '^(%d+)')) + 1 end
redis.call('XADD', KEYS[1], seq .. '-0', 'e', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return seq
`;

const SCRIPTS = {
  /**
   * Takes a lease for an owner: free, or held by the same owner (its TTL restarts). KEYS: lease.
   * ARGV: owner, TTL ms. Returns 1 when the owner holds it now, 0 when another owner does.
   */
  leaseTake: {
    numberOfKeys: 1,
    lua: `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`,
  },
  /** Gives a lease back if this owner holds it. KEYS: lease. ARGV: owner. Returns 1 when it was released. */
  leaseRelease: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
  },
  /**
   * Counts one hit in a window that opens at the first hit. KEYS: counter. ARGV: limit, window
   * ms. Returns 0 when under the limit, else the window's remaining ms.
   */
  fixedWindowHit: {
    numberOfKeys: 1,
    lua: `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if count > tonumber(ARGV[1]) then return redis.call('PTTL', KEYS[1]) end
return 0
`,
  },
  /**
   * Checks and counts a generation in one step. KEYS: minute counter, hour counter, in-flight
   * set. ARGV: per minute, per hour, concurrent, now ms, generation id, slot ms, minute ms, hour
   * ms. Drops lapsed slots first. Returns {reason, retry ms}: reason 0 taken, 1 per-minute, 2
   * per-hour, 3 concurrent.
   */
  takeGenerationSlot: {
    numberOfKeys: 3,
    lua: `
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local minute = tonumber(redis.call('GET', KEYS[1]) or '0')
if minute >= tonumber(ARGV[1]) then return {1, redis.call('PTTL', KEYS[1])} end
local hour = tonumber(redis.call('GET', KEYS[2]) or '0')
if hour >= tonumber(ARGV[2]) then return {2, redis.call('PTTL', KEYS[2])} end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[3]) then return {3, 2000} end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[7]) end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[8]) end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return {0, 0}
`,
  },
  /**
   * Undoes one `takeGenerationSlot` that was given: the generation's slot is freed and both
   * windows count one fewer. KEYS: as `takeGenerationSlot`'s. ARGV: generation id. A slot no
   * longer held (given back already, or lapsed) undoes nothing. Returns 1 undone, 0 not.
   */
  untakeGenerationSlot: {
    numberOfKeys: 3,
    lua: `
if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return 0 end
for i = 1, 2 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 1
`,
  },
  /**
   * Appends one event after the last one of a sequenced log (ids `<seq>-0`). KEYS: log. ARGV:
   * event JSON, TTL s. Returns the seq given.
   */
  appendNext: {
    numberOfKeys: 1,
    lua: APPEND_NEXT_LUA,
  },
  /**
   * `appendNext`, once per tag. KEYS: log, tags appended. ARGV: event JSON, TTL s, tag. Returns
   * the seq given, or 0 when the tag was already appended.
   */
  appendNextOnce: {
    numberOfKeys: 2,
    lua: `
if redis.call('HSETNX', KEYS[2], ARGV[3], '1') == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[2])
${APPEND_NEXT_LUA}`,
  },
  /**
   * Appends `[id, json]` pairs (ARGV[2..]) to a log in order and renews its TTL (ARGV[1], s): one
   * call where a transaction would be an XADD per entry, an EXPIRE, and its MULTI and EXEC. An id
   * of `*` is automatic; one at or below the last stops the batch there with Redis's error.
   * Returns the count.
   */
  appendBatch: {
    numberOfKeys: 1,
    lua: `
for i = 2, #ARGV, 2 do redis.call('XADD', KEYS[1], ARGV[i], 'e', ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return (#ARGV - 1) / 2
`,
  },
  /**
   * Counts one failed sign-in; from `threshold` on, locks for first lock × 2^(failures past
   * threshold), capped. KEYS: failures, lock. ARGV: threshold, first lock ms, max lock ms,
   * failures TTL ms. Returns the failures counted.
   */
  loginFailed: {
    numberOfKeys: 2,
    lua: `
local fails = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local threshold = tonumber(ARGV[1])
if fails >= threshold then
  local lock = math.min(tonumber(ARGV[2]) * (2 ^ (fails - threshold)), tonumber(ARGV[3]))
  redis.call('SET', KEYS[2], '1', 'PX', math.floor(lock))
end
return fails
`,
  },
  /**
   * Adds job ids to an owner's set. KEYS: set. ARGV: TTL s, job ids. Returns for each id the
   * set's size once it is in (an id already there is not counted twice).
   */
  fairShareTake: {
    numberOfKeys: 1,
    lua: `
local size = redis.call('SCARD', KEYS[1])
local out = {}
for i = 2, #ARGV do
  size = size + redis.call('SADD', KEYS[1], ARGV[i])
  out[i - 1] = size
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return out`,
  },
  /**
   * Takes a stream lease, timed by Redis's clock. KEYS: leases. ARGV: lease id, max, lease ms.
   * Drops expired leases first. Returns 1 taken, 0 at the cap.
   */
  sseLeaseAcquire: {
    numberOfKeys: 1,
    lua: `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`,
  },
  /**
   * Extends the stream leases still held (ZADD XX: a released one is not added back), all to the
   * same end. KEYS: leases. ARGV: lease ms, then the lease ids. ZADD gets at most 500 of them per
   * call (Lua's `unpack` is bounded by its stack).
   */
  sseLeaseRefresh: {
    numberOfKeys: 1,
    lua: `
local t = redis.call('TIME')
local until_ms = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
local members = {}
for i = 2, #ARGV do
  members[#members + 1] = until_ms
  members[#members + 1] = ARGV[i]
  if #members == 1000 then
    redis.call('ZADD', KEYS[1], 'XX', unpack(members))
    members = {}
  end
end
if #members > 0 then redis.call('ZADD', KEYS[1], 'XX', unpack(members)) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`,
  },
  /**
   * A worker process's heartbeat: renews its lease (`ARGV[1]`) to `ARGV[2]` ms from now (Redis
   * time) and takes out up to `ARGV[3]` leases that lapsed, which the caller now owns: those
   * processes died, and their active jobs go back to waiting. `ARGV[4]` is when the caller's
   * unbroken run of beats began (Redis ms; 0: with this one): a lease that lapsed before then may
   * only have missed its beats while Redis was out of reach for everyone, so it is taken out only
   * once the caller has beaten for a whole lease since (its owner, if alive, has renewed it by
   * then). KEYS: leases. Returns `{renewed, now, ...lapsed names}`: renewed is 0 when the caller's
   * own lease had lapsed or been taken out (it is added back).
   */
  workerLeaseBeat: {
    numberOfKeys: 1,
    lua: `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lease = tonumber(ARGV[2])
local since = tonumber(ARGV[4])
if since == 0 then since = now end
local from = '-inf'
if now < since + lease then from = since end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], from, now, 'LIMIT', 0, tonumber(ARGV[3]))
local reply = {1, now}
local own = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not own or tonumber(own) <= now then reply[1] = 0 end
for _, name in ipairs(lapsed) do
  if name ~= ARGV[1] then
    redis.call('ZREM', KEYS[1], name)
    reply[#reply + 1] = name
  end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
return reply`,
  },
  /**
   * A process's first lease under a stable identity that it alone holds (its data directory): takes
   * out every other lease whose name starts with `ARGV[1]` (the identity and its separator: earlier
   * incarnations of this process, dead since this one holds the identity) and takes the caller's
   * lease (`ARGV[2]`) to `ARGV[3]` ms from now (Redis time). KEYS: leases. Returns the names taken
   * out, whose active jobs the caller now puts back. The set holds one member per worker process,
   * and this runs once per start.
   */
  workerLeaseTakeOver: {
    numberOfKeys: 1,
    lua: `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local taken = {}
for _, name in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if name ~= ARGV[2] and string.sub(name, 1, #ARGV[1]) == ARGV[1] then
    redis.call('ZREM', KEYS[1], name)
    taken[#taken + 1] = name
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
return taken`,
  },
  /**
   * A worker process's beat for the queues it consumes, in one call: scores each member
   * (`queue|process`) with Redis's time now, the time the beat is written, and drops the members
   * silent for `ARGV[1]` ms. KEYS: the queue-workers set. ARGV: forget-after ms, then the members.
   * Returns the time given (ms).
   */
  queuePresenceBeat: {
    numberOfKeys: 1,
    lua: `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return now`,
  },
  /**
   * Takes a socket lease. KEYS: leases. ARGV: now ms, lease end ms, member, max, key TTL ms.
   * Drops expired leases first; a member already in is renewed. Returns 1 admitted, 0 at the cap.
   */
  socketAcquire: {
    numberOfKeys: 1,
    lua: `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`,
  },
  /**
   * Replaces a device's presence if it still names the same socket. KEYS: devices. ARGV: device
   * id, socket id, presence JSON. Returns 1 replaced, 0 absent or another socket's.
   */
  deviceSetIfSameSocket: {
    numberOfKeys: 1,
    lua: `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
if cjson.decode(raw).socketId ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`,
  },
  /**
   * Removes a device's presence if it still names the same socket. KEYS: devices. ARGV: device
   * id, socket id. Returns 1 removed, 0 absent or another socket's.
   */
  deviceDeleteIfSameSocket: {
    numberOfKeys: 1,
    lua: `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
if cjson.decode(raw).socketId ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])`,
  },
  /** See BUDGET_RESERVE_LUA. */
  budgetReserve: { numberOfKeys: 3, lua: BUDGET_RESERVE_LUA },
  /** See BUDGET_SETTLE_LUA. */
  budgetSettle: { numberOfKeys: 4, lua: BUDGET_SETTLE_LUA },
  /**
   * Marks a reservation as taken by a call (the call settles it from now on). KEYS: reservation.
   * ARGV: its new TTL ms. Returns {tokens, requests, micro-USD} when it was open and not yet
   * taken, else an empty list.
   */
  budgetStart: {
    numberOfKeys: 1,
    lua: `
local held = redis.call('HMGET', KEYS[1], 't', 'r', 'c', 's')
if not held[1] or held[4] == '1' then return {} end
redis.call('HSET', KEYS[1], 's', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {tonumber(held[1]), tonumber(held[2]), tonumber(held[3])}`,
  },
  /**
   * Adds a canvas's logged events to the Socket.IO adapter's stream as room event records, in
   * order (the records `CANVAS_APPEND_LUA` writes with its fourth key): the second step of a canvas
   * append on a Redis Cluster, where the log and the stream sit in different slots. Atomic, so a
   * node blocked reading the stream is answered once all are in. KEYS: adapter stream. ARGV: its
   * max length, namespace, room, event name, then the payloads. Returns the count.
   */
  roomRecordsAppend: {
    numberOfKeys: 1,
    lua: `
for i = 5, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'nsp', ARGV[2], 'room', ARGV[3], 'event', ARGV[4], 'payload', ARGV[i])
end
return #ARGV - 4`,
  },
  /** `CANVAS_APPEND_LUA` with three keys: logs the events, sends nothing. */
  canvasAppend: { numberOfKeys: 3, lua: CANVAS_APPEND_LUA },
  /** `CANVAS_APPEND_LUA` with four keys: logs the events and adds them to the adapter's stream. */
  canvasAppendBroadcast: { numberOfKeys: 4, lua: CANVAS_APPEND_LUA },
  /**
   * What a client missed after a seq. KEYS: seq counter, log. ARGV: after seq, cap. Returns
   * {last seq, first seq the log still holds (0 when empty), up to cap + 1 entries after it}.
   */
  canvasSince: {
    numberOfKeys: 2,
    lua: `
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local firstSeq = 0
if first[1] then firstSeq = tonumber(string.match(first[1][1], '^(%d+)')) end
local entries = redis.call('XRANGE', KEYS[2], (tonumber(ARGV[1]) + 1) .. '-0', '+', 'COUNT', tonumber(ARGV[2]) + 1)
return {last, firstSeq, entries}
`,
  },
} satisfies Record<string, ScriptDefinition>;

export type ScriptName = keyof typeof SCRIPTS;

type Arg = string | number;

/** Each script's SHA-1, the name Redis caches it under (EVALSHA). */
const SHAS = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, { lua }]) => [name, createHash('sha1').update(lua).digest('hex')]),
) as Record<ScriptName, string>;

/** Redis answered EVALSHA with NOSCRIPT: its script cache does not hold the script (a restart, SCRIPT FLUSH, another cluster node). */
function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/** Why a generation was refused: per-minute, per-hour or concurrent limit. */
export type GenerationLimitReason = 'per-minute' | 'per-hour' | 'concurrent';
const GENERATION_REASONS = [undefined, 'per-minute', 'per-hour', 'concurrent'] as const;

/** Tokens, model requests and micro-USD: what a budget counts. */
export interface BudgetAmount {
  tokens: number;
  requests: number;
  microUsd: number;
}
/** A window's limits on tokens, requests and micro-USD, in that order; null = none. */
export type BudgetLimitTriple = [number | null, number | null, number | null];
export const BUDGET_DIMENSIONS = ['tokens', 'requests', 'cost'] as const;
export type BudgetReserveReply =
  | { taken: true }
  | { exists: true }
  | { needsSeed: true }
  | {
      refused: { window: 'hour' | 'month'; dimension: (typeof BUDGET_DIMENSIONS)[number]; limit: number; used: number; reserved: number };
    };

const defined = new WeakMap<RedisClient, RedisScripts>();

/**
 * The scripts on one connection. Get it with {@link redisScripts}. A script goes as EVAL the first
 * time this connection runs it (which puts it in the server's script cache) and as EVALSHA after,
 * again as EVAL when the server answers NOSCRIPT. Calls on one connection run in the order they
 * were made, also when the server lost its scripts: every call sent behind one answered NOSCRIPT
 * is answered NOSCRIPT too, their EVALs go in the order the answers came, and calls made meanwhile
 * wait until the last of those EVALs is sent. Nothing is defined
 * on the connection itself: ioredis copies every command defined with `defineCommand` into each
 * pipeline or transaction made from the connection, a cost every MULTI would pay.
 */
export class RedisScripts {
  /** The scripts this connection has sent as EVAL once. */
  private readonly sent = new Set<ScriptName>();
  /** EVALSHA calls sent on this connection and not answered yet. */
  private unanswered = 0;
  /** Set from a NOSCRIPT answer until every call sent before it has been answered (and sent again). */
  private held?: { until: Promise<void>; release: () => void };

  private constructor(private readonly redis: RedisClient) {}

  /** The scripts of `redis`, made on first use. */
  static of(redis: RedisClient): RedisScripts {
    let scripts = defined.get(redis);
    if (!scripts) defined.set(redis, (scripts = new RedisScripts(redis)));
    return scripts;
  }

  /** Takes the lease for `owner` (free, or already its own; the TTL restarts); false while another owner holds it. */
  async leaseTake(keys: { lease: string }, args: { owner: string; ttlMs: number }): Promise<boolean> {
    return Number(await this.run('leaseTake', [keys.lease], [args.owner, args.ttlMs])) === 1;
  }

  /** Gives the lease back if `owner` holds it. */
  async leaseRelease(keys: { lease: string }, args: { owner: string }): Promise<boolean> {
    return Number(await this.run('leaseRelease', [keys.lease], [args.owner])) === 1;
  }

  /** Counts a hit in the window; 0 when under `limit`, else the ms until the window ends. */
  async fixedWindowHit(keys: { window: string }, args: { limit: number; windowMs: number }): Promise<number> {
    return Number(await this.run('fixedWindowHit', [keys.window], [args.limit, args.windowMs]));
  }

  /** Takes a generation slot, or says which limit refused it and when to retry. */
  async takeGenerationSlot(
    keys: { minute: string; hour: string; inFlight: string },
    args: {
      perMinute: number;
      perHour: number;
      concurrent: number;
      nowMs: number;
      generationId: string;
      slotMs: number;
      minuteMs: number;
      hourMs: number;
    },
  ): Promise<{ taken: true } | { taken: false; reason: GenerationLimitReason; retryMs: number }> {
    const reply = await this.run(
      'takeGenerationSlot',
      [keys.minute, keys.hour, keys.inFlight],
      [args.perMinute, args.perHour, args.concurrent, args.nowMs, args.generationId, args.slotMs, args.minuteMs, args.hourMs],
    );
    const [code, retryMs] = numbers(reply, 'takeGenerationSlot');
    const reason = GENERATION_REASONS[code];
    return reason ? { taken: false, reason, retryMs } : { taken: true };
  }

  /** Undoes a generation slot taken (its windows' counts too); false when it was no longer held. */
  async untakeGenerationSlot(keys: { minute: string; hour: string; inFlight: string }, args: { generationId: string }): Promise<boolean> {
    return Number(await this.run('untakeGenerationSlot', [keys.minute, keys.hour, keys.inFlight], [args.generationId])) === 1;
  }

  /** Appends `json` after the log's last seq; returns the seq given. */
  async appendNext(keys: { log: string }, args: { json: string; ttlSeconds: number }): Promise<number> {
    return Number(await this.run('appendNext', [keys.log], [args.json, args.ttlSeconds]));
  }

  /** `appendNext` unless `tag` was appended already; returns the seq given, or 0. */
  async appendNextOnce(keys: { log: string; once: string }, args: { json: string; ttlSeconds: number; tag: string }): Promise<number> {
    return Number(await this.run('appendNextOnce', [keys.log, keys.once], [args.json, args.ttlSeconds, args.tag]));
  }

  /** Appends `[entry id, json]` pairs in order and renews the TTL; returns how many were appended. */
  async appendBatch(
    keys: { log: string },
    args: { ttlSeconds: number; entries: ReadonlyArray<readonly [string, string]> },
  ): Promise<number> {
    const argv: Arg[] = [args.ttlSeconds];
    for (const [id, json] of args.entries) argv.push(id, json);
    return Number(await this.run('appendBatch', [keys.log], argv));
  }

  /** Adds room event records to the adapter's stream (see the script); returns how many were added. */
  async roomRecordsAppend(
    keys: { stream: string },
    args: { maxLen: number; nsp: string; room: string; event: string; payloads: readonly string[] },
  ): Promise<number> {
    const argv: Arg[] = [args.maxLen, args.nsp, args.room, args.event, ...args.payloads];
    return Number(await this.run('roomRecordsAppend', [keys.stream], argv));
  }

  /** Counts a failed sign-in and locks past `threshold`; returns the failures counted. */
  async loginFailed(
    keys: { failures: string; lock: string },
    args: { threshold: number; firstLockMs: number; maxLockMs: number; failuresTtlMs: number },
  ): Promise<number> {
    const argv = [args.threshold, args.firstLockMs, args.maxLockMs, args.failuresTtlMs];
    return Number(await this.run('loginFailed', [keys.failures, keys.lock], argv));
  }

  /** Adds `jobIds` to the owner's set; for each, the set's size once it is in. */
  async fairShareTake(keys: { owned: string }, args: { ttlSeconds: number; jobIds: readonly string[] }): Promise<number[]> {
    return numbers(await this.run('fairShareTake', [keys.owned], [args.ttlSeconds, ...args.jobIds]), 'fairShareTake');
  }

  /** Takes a stream lease `leaseId` for `leaseMs`; false at `max`. */
  async sseLeaseAcquire(keys: { leases: string }, args: { leaseId: string; max: number; leaseMs: number }): Promise<boolean> {
    return Number(await this.run('sseLeaseAcquire', [keys.leases], [args.leaseId, args.max, args.leaseMs])) === 1;
  }

  /** Extends the leases `leaseIds` of `leases` that are still held to `leaseMs` from now (Redis time). */
  async sseLeaseRefresh(keys: { leases: string }, args: { leaseIds: readonly string[]; leaseMs: number }): Promise<void> {
    await this.run('sseLeaseRefresh', [keys.leases], [args.leaseMs, ...args.leaseIds]);
  }

  /**
   * Renews the worker lease `name` for `leaseMs` (Redis time) and takes out up to `max` lapsed
   * ones, those lapsed before `watchingSince` (Redis ms, 0 for this beat) only once a lease has
   * passed since; `renewed` is false when `name`'s own lease had lapsed (it is held again now).
   */
  async workerLeaseBeat(
    keys: { leases: string },
    args: { name: string; leaseMs: number; max: number; watchingSince: number },
  ): Promise<{ renewed: boolean; now: number; lapsed: string[] }> {
    const reply = await this.run('workerLeaseBeat', [keys.leases], [args.name, args.leaseMs, args.max, args.watchingSince]);
    if (!Array.isArray(reply) || reply.length < 2)
      throw new Error('The Redis script workerLeaseBeat answered something else than its list');
    const [renewed, now, ...lapsed] = reply as [number, number, ...string[]];
    return { renewed: Number(renewed) === 1, now: Number(now), lapsed: lapsed.map(String) };
  }

  /** Takes this process's first lease and takes out those of its identity's earlier incarnations; their names. */
  async workerLeaseTakeOver(keys: { leases: string }, args: { identity: string; name: string; leaseMs: number }): Promise<string[]> {
    const reply = await this.run('workerLeaseTakeOver', [keys.leases], [args.identity, args.name, args.leaseMs]);
    if (!Array.isArray(reply)) throw new Error('The Redis script workerLeaseTakeOver answered something else than its list');
    return reply.map(String);
  }

  /** Scores `members` with Redis's time now and drops those silent for `forgetMs`; returns that time (ms). */
  async queuePresenceBeat(keys: { workers: string }, args: { members: readonly string[]; forgetMs: number }): Promise<number> {
    return Number(await this.run('queuePresenceBeat', [keys.workers], [args.forgetMs, ...args.members]));
  }

  /** Takes (or renews) a socket lease until `untilMs`; false at `max`. */
  async socketAcquire(
    keys: { leases: string },
    args: { nowMs: number; untilMs: number; member: string; max: number; keyTtlMs: number },
  ): Promise<boolean> {
    const argv = [args.nowMs, args.untilMs, args.member, args.max, args.keyTtlMs];
    return Number(await this.run('socketAcquire', [keys.leases], argv)) === 1;
  }

  /** Replaces the device's presence with `json` if it still names `socketId`. */
  async deviceSetIfSameSocket(keys: { devices: string }, args: { deviceId: string; socketId: string; json: string }): Promise<boolean> {
    return Number(await this.run('deviceSetIfSameSocket', [keys.devices], [args.deviceId, args.socketId, args.json])) === 1;
  }

  /** Removes the device's presence if it still names `socketId`. */
  async deviceDeleteIfSameSocket(keys: { devices: string }, args: { deviceId: string; socketId: string }): Promise<boolean> {
    return Number(await this.run('deviceDeleteIfSameSocket', [keys.devices], [args.deviceId, args.socketId])) === 1;
  }

  /**
   * Gives the events (`openPayloads`: JSON objects without their closing `}`, each ending in
   * `,"seq":` or being `{"seq":`) the canvas's next seqs, logs them and, with
   * `keys.adapterStream` and `args.broadcast`, adds each to the adapter's stream. One call to Redis. Returns the seqs in
   * order, or an empty list when the canvas was deleted (nothing logged or sent).
   */
  async canvasAppend(
    keys: { seq: string; log: string; gone: string; adapterStream?: string },
    args: {
      event: string;
      maxLen: number;
      ttlMs: number;
      broadcast?: { maxLen: number; nsp: string; room: string };
      openPayloads: readonly string[];
    },
  ): Promise<number[]> {
    const { adapterStream } = keys;
    const { broadcast } = args;
    if ((adapterStream === undefined) !== (broadcast === undefined))
      throw new Error('canvasAppend: the adapter stream and its record settings are given together or not at all');
    const scriptKeys = [keys.seq, keys.log, keys.gone];
    const argv: Arg[] = [args.event, args.maxLen, args.ttlMs];
    if (adapterStream !== undefined && broadcast) {
      scriptKeys.push(adapterStream);
      argv.push(broadcast.maxLen, broadcast.nsp, broadcast.room);
    } else {
      argv.push('', '', '');
    }
    for (const payload of args.openPayloads) argv.push(payload);
    const script = adapterStream === undefined ? 'canvasAppend' : 'canvasAppendBroadcast';
    return numbers(await this.run(script, scriptKeys, argv), script);
  }

  /**
   * The canvas's last seq, the first seq its log still holds (0 when it holds none), and up to
   * `cap + 1` entries after `afterSeq` as `[entry id, fields]`.
   */
  async canvasSince(
    keys: { seq: string; log: string },
    args: { afterSeq: number; cap: number },
  ): Promise<{ lastSeq: number; firstSeq: number; entries: Array<[string, string[]]> }> {
    const reply = await this.run('canvasSince', [keys.seq, keys.log], [args.afterSeq, args.cap]);
    if (!Array.isArray(reply) || reply.length !== 3 || !Array.isArray(reply[2]))
      throw new Error('The Redis script canvasSince answered something other than {last, first, entries}');
    const [last, first, entries] = reply as [unknown, unknown, Array<[string, string[]]>];
    return { lastSeq: Number(last), firstSeq: Number(first), entries };
  }

  /** Reserves `amount` in both windows, or says which limit refused it (see BUDGET_RESERVE_LUA). */
  async budgetReserve(
    keys: { hour: string; month: string; reservation: string },
    args: {
      amount: BudgetAmount;
      started: boolean;
      ttlMs: { hour: number; month: number; reservation: number };
      /** Recorded usage of each window, sent once the script asked for it. */
      seed?: { hour: BudgetAmount; month: BudgetAmount };
      /** Per window, tokens / requests / micro-USD; null = no limit. */
      limits: { hour: BudgetLimitTriple; month: BudgetLimitTriple };
      /** The user's plan version: a window counted under another is read afresh. */
      version: number;
    },
  ): Promise<BudgetReserveReply> {
    const triple = (amount: BudgetAmount) => [amount.tokens, amount.requests, amount.microUsd];
    const limit = (limits: BudgetLimitTriple) => limits.map((value) => (value === null ? -1 : value));
    const zero = { tokens: 0, requests: 0, microUsd: 0 };
    const reply = numbers(
      await this.run(
        'budgetReserve',
        [keys.hour, keys.month, keys.reservation],
        [
          ...triple(args.amount),
          args.started ? 1 : 0,
          args.ttlMs.hour,
          args.ttlMs.month,
          args.ttlMs.reservation,
          args.seed ? 1 : 0,
          ...triple(args.seed?.hour ?? zero),
          ...triple(args.seed?.month ?? zero),
          ...limit(args.limits.hour),
          ...limit(args.limits.month),
          String(args.version),
        ],
      ),
      'budgetReserve',
    );
    if (reply[0] === 0) return { taken: true };
    if (reply[0] === 1) return { exists: true };
    if (reply[0] === 2) return { needsSeed: true };
    const [, window, dimension, limitValue, used, reserved] = reply;
    return {
      refused: {
        window: window === 1 ? 'hour' : 'month',
        dimension: BUDGET_DIMENSIONS[dimension - 1],
        limit: limitValue,
        used,
        reserved,
      },
    };
  }

  /** Settles a reservation (see BUDGET_SETTLE_LUA); the seconds it was open, or -1 when nothing was settled. */
  async budgetSettle(
    keys: { hour: string; month: string; reservation: string; reaped: string },
    args: { actual: BudgetAmount; mode: 'call' | 'reap' | 'release' },
  ): Promise<number> {
    const { actual } = args;
    return Number(
      await this.run(
        'budgetSettle',
        [keys.hour, keys.month, keys.reservation, keys.reaped],
        [actual.tokens, actual.requests, actual.microUsd, args.mode],
      ),
    );
  }

  /** Marks a reservation as taken by a call; its amounts when it was open and untaken, else null. */
  async budgetStart(keys: { reservation: string }, args: { ttlMs: number }): Promise<BudgetAmount | null> {
    const reply = numbers(await this.run('budgetStart', [keys.reservation], [args.ttlMs]), 'budgetStart');
    return reply.length ? { tokens: reply[0], requests: reply[1], microUsd: reply[2] } : null;
  }

  private run(script: ScriptName, keys: string[], args: Arg[]): Promise<unknown> {
    const { lua, numberOfKeys } = SCRIPTS[script];
    if (keys.length !== numberOfKeys) throw new Error(`The Redis script ${script} takes ${numberOfKeys} keys, not ${keys.length}`);
    // Calls made while the calls sent before a NOSCRIPT are still being sent again wait for them:
    // sent now, a call would reach the server before those EVALs and run out of order.
    if (this.held) return this.held.until.then(() => this.run(script, keys, args));
    if (!this.sent.has(script)) {
      this.sent.add(script);
      return this.redis.eval(lua, numberOfKeys, ...keys, ...args);
    }
    this.unanswered += 1;
    return this.redis.evalsha(SHAS[script], numberOfKeys, ...keys, ...args).then(
      (reply) => (this.answered(), reply),
      (error: unknown) => {
        if (!isNoScript(error)) {
          this.answered();
          throw error;
        }
        // The server lost its scripts: every call sent before this answer is answered NOSCRIPT too,
        // and each is sent again as EVAL as its answer comes, in the order they were made.
        if (!this.held) {
          let release = () => undefined as void;
          const until = new Promise<void>((resolve) => (release = resolve));
          this.held = { until, release };
        }
        const retry = this.redis.eval(lua, numberOfKeys, ...keys, ...args);
        this.answered();
        return retry;
      },
    );
  }

  /** One EVALSHA answered; once none is left on the wire, calls held behind a NOSCRIPT go. */
  private answered(): void {
    this.unanswered -= 1;
    if (this.unanswered > 0 || !this.held) return;
    const { release } = this.held;
    this.held = undefined;
    release();
  }
}

/** The scripts of `redis`, defined on it on first use. */
export function redisScripts(redis: RedisClient): RedisScripts {
  return RedisScripts.of(redis);
}

/** A script's array reply as numbers; anything else is a broken script, not bad input. */
function numbers(reply: unknown, script: ScriptName): number[] {
  if (!Array.isArray(reply)) throw new Error(`The Redis script ${script} answered ${typeof reply}, not an array`);
  return reply.map((value) => Number(value));
}

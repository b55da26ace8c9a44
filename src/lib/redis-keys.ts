/**
 * Every Redis key and pub/sub channel the server names, one function per family, under the
 * deployment's `REDIS_KEY_PREFIX`. A key built anywhere else is a bug: two modules that spell the
 * same key differently lose each other's data, and a rename must happen here, in one place.
 *
 * Redis Cluster: keys that one script, MULTI or multi-key command touches together must hash to
 * one slot. Each family wraps the id that groups such keys in a hash tag through {@link slot}
 * (`sb:canvas:{c1}:seq` and `sb:canvas:{c1}:log` share a slot), on every deployment, so a single
 * Redis holds the same layout a cluster does. BullMQ's own keys live under
 * {@link RedisKeys.bullmqPrefix}, itself a hash tag: BullMQ's scripts touch several keys of a queue.
 */

/**
 * The part of a key that decides its Cluster slot: the id as a hash tag, so every key of the same
 * id lands in one slot.
 */
function slot(id: string): string {
  return `{${id}}`;
}

/**
 * The Redis Cluster slot of `key` (CRC16 of its hash tag, or of the whole key without one, mod
 * 16384), as Redis computes it: to group keys by the node that holds them.
 */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key);
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  for (let i = start; i < end; i += 1) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ bytes[i]) & 0xff];
  return crc % 16_384;
}

/** CRC16-CCITT (XMODEM), polynomial 0x1021: the table Redis Cluster's slot hash uses. */
const CRC16_TABLE = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit += 1) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  return crc;
});

/** How many sorted sets the open budget reservations are spread over. */
export const BUDGET_OPEN_SHARDS = 16;

/** The key and channel names of one deployment (one key prefix). */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  // ── Limits ───────────────────────────────────────────────────────────────

  /** Counter of a fixed window of `action` for `subject` (a user id, `ip:…`, `token:…`); TTL the window. */
  rateWindow(action: string, subject: string): string {
    return `${this.prefix}:rl:${action}:${slot(subject)}`;
  }

  /**
   * A flow trigger's claim on one inbound `webhook-id` (hashed): set once, so a replay of the
   * delivery runs nothing; TTL past the signature's tolerance window, after which a replay's
   * timestamp is refused anyway.
   */
  triggerDelivery(triggerId: string, deliveryHash: string): string {
    return `${this.prefix}:trigger:${slot(triggerId)}:hook:${deliveryHash}`;
  }

  /** Counter of a user's generations in the minute since the first of them; TTL 1 min from that first one. */
  generationMinuteWindow(userId: string): string {
    return `${this.prefix}:rl:gen:${slot(userId)}:m`;
  }

  /** Counter of a user's generations in the hour since the first of them; TTL 1 h from that first one. */
  generationHourWindow(userId: string): string {
    return `${this.prefix}:rl:gen:${slot(userId)}:h`;
  }

  /** Sorted set of a user's in-flight generation ids, scored by when the slot lapses; TTL 15 min. */
  generationSlots(userId: string): string {
    return `${this.prefix}:gen:active:${slot(userId)}`;
  }

  /**
   * A user's budget window (`window`: `h<hours since epoch>` or `m<YYYYMM>`): hash of used and
   * reserved tokens, requests and micro-USD; TTL the window's end plus a day.
   */
  budgetWindow(userId: string, window: string): string {
    return `${this.prefix}:budget:${slot(userId)}:w:${window}`;
  }

  /** One open reservation of a user's budget (hash: amounts, started); TTL its deadline plus a day. */
  budgetReservation(userId: string, reservationId: string): string {
    return `${this.prefix}:budget:${slot(userId)}:r:${reservationId}`;
  }

  /** What the reaper charged for a reservation it settled, for the call that ends after it; TTL a day. */
  budgetReaped(userId: string, reservationId: string): string {
    return `${this.prefix}:budget:${slot(userId)}:x:${reservationId}`;
  }

  /**
   * One of {@link BUDGET_OPEN_SHARDS} sorted sets of the open reservations
   * (`userId|reservationId|hourWindow|monthWindow`), scored by deadline (ms). A user's reservations
   * sit in the shard of their user id, so every model call writes one of several keys (several
   * cluster slots), never one global key; the reaper reads every shard.
   */
  budgetOpen(shard: number): string {
    return `${this.prefix}:budget:open:${slot(`budget-open-${shard}`)}`;
  }

  /** The shard of `budgetOpen` that holds `userId`'s open reservations. */
  budgetOpenOf(userId: string): string {
    return this.budgetOpen(keySlot(userId) % BUDGET_OPEN_SHARDS);
  }

  /** Consecutive failed API-key attempts (`fails`) or the back-off lock (`lock`) of a client (`ipId`: a hash of the IP); TTL 24 h / the lock. */
  apiKeyFailures(what: 'fails' | 'lock', ipId: string): string {
    return `${this.prefix}:api-key-fail:${what}:${slot(ipId)}`;
  }

  /** Consecutive failed sign-ins (`fails`) or the back-off lock (`lock`) of an account (`accountId`: a hash of the email); TTL 24 h / the lock. */
  loginAccount(what: 'fails' | 'lock', accountId: string): string {
    return `${this.prefix}:login:${what}:${slot(accountId)}`;
  }

  /** The same for every operator secret (the dashboard's Basic password, METRICS_TOKEN), per client (`ipId`: a hash of the IP). */
  dashboardLogin(what: 'fails' | 'lock', ipId: string): string {
    return `${this.prefix}:dashboard-login:${what}:${slot(ipId)}`;
  }

  /** Set of an owner's job ids queued and not finished on `queue` (fair ordering); TTL 1 h after the last enqueue. */
  fairShare(queue: string, owner: string): string {
    return `${this.prefix}:fair:${queue}:${slot(owner)}`;
  }

  /** Sorted set of a user's open SSE stream leases, scored by expiry (Redis time); TTL one lease (60 s). */
  sseLeases(userId: string): string {
    return `${this.prefix}:sse:user:${slot(userId)}`;
  }

  /** The chat session an AI SDK chat id (`useChat`'s `id`, hashed) of one user or embed stands for. */
  uiChatSession(scope: string, chatIdHash: string): string {
    return `${this.prefix}:uichat:${slot(scope)}:${chatIdHash}`;
  }

  /**
   * The chat session an OpenAI-compatible client's conversation (its messages so far, hashed) of
   * one user and one model stands for: `/v1` clients send the whole conversation every time.
   */
  openaiConversation(scope: string, conversationHash: string): string {
    return `${this.prefix}:oaichat:${slot(scope)}:${conversationHash}`;
  }

  /** The turn (its message id) an AI SDK client of a session resumes with `GET …/:id/stream`. */
  uiChatActiveTurn(sessionId: string): string {
    return `${this.prefix}:uichat:active:${slot(sessionId)}`;
  }

  /** Sorted set of a user's open socket leases (`<namespace>#<socket id>`), scored by expiry; TTL two leases. */
  socketLeases(userId: string): string {
    return `${this.prefix}:sockets:user:${slot(userId)}`;
  }

  // ── Event logs ───────────────────────────────────────────────────────────

  /** Stream of a generation's sequenced events (SSE replay); TTL `GENERATION_EVENTS_TTL_SECONDS`. */
  generationEvents(generationId: string): string {
    return `${this.prefix}:gen:${slot(generationId)}:events`;
  }

  /** A generation's persisted blocks kept for its broadcast job; TTL 10 min. */
  generationBlocks(generationId: string): string {
    return `${this.prefix}:gen:${slot(generationId)}:blocks`;
  }

  /** Stream of a flow execution's sequenced events; TTL `GENERATION_EVENTS_TTL_SECONDS`. */
  flowExecutionEvents(executionId: string): string {
    return `${this.prefix}:flowexec:${slot(executionId)}:events`;
  }

  /** Stream of a chat turn's events (keyed by the user message id); TTL 1 h. */
  chatEvents(messageId: string): string {
    return `${this.prefix}:chat:${slot(messageId)}:events`;
  }

  /** Stream of one ingestion's progress (keyed by document and revision); TTL 1 h. */
  knowledgeEvents(documentId: string, revision: number): string {
    return `${this.prefix}:knowledge:${slot(documentId)}:${revision}:events`;
  }

  /** Stream of a ticket-notes session's events; TTL 1 h. */
  notesEvents(sessionId: string): string {
    return `${this.prefix}:notes:${slot(sessionId)}:events`;
  }

  // ── Generations, agents, auth ────────────────────────────────────────────

  /** The generation id an `Idempotency-Key` of a user produced; TTL 24 h. */
  generationIdempotency(userId: string, idempotencyKey: string): string {
    return `${this.prefix}:idem:gen:${slot(userId)}:${idempotencyKey}`;
  }

  /** Marks an OAuth `state` (by its `jti`) as used, so a replayed callback connects nothing; TTL 10 min. */
  oauthState(jti: string): string {
    return `${this.prefix}:oauth-state:${slot(jti)}`;
  }

  /** Stream of a local agent run's frames from the device; TTL 1 h after the last frame. */
  agentRunFrames(runId: string): string {
    return `${this.prefix}:agent-run:${slot(runId)}:frames`;
  }

  /** `<userId>\n<deviceId>` allowed to write a local agent run's frames; TTL the run's timeout. */
  agentRunOwner(runId: string): string {
    return `${this.prefix}:agent-run:${slot(runId)}:owner`;
  }

  /** Content bytes a local agent run's frames carried so far; TTL 1 h. */
  agentRunBytes(runId: string): string {
    return `${this.prefix}:agent-run:${slot(runId)}:bytes`;
  }

  /** A setup journey session (JSON); TTL `JOURNEY_TTL_SECONDS` after its last change. */
  journey(journeyId: string): string {
    return `${this.prefix}:journey:${slot(journeyId)}`;
  }

  /** The agent run a user's device is serving (its run id); TTL the run timeout and a minute. */
  agentDeviceLease(userId: string, deviceId: string): string {
    return `${this.prefix}:agent-device:${slot(userId)}:${deviceId}`;
  }

  /** The answer a queued journey turn is about to process; TTL `JOURNEY_TTL_SECONDS`. */
  journeyAnswer(journeyId: string, turn: number): string {
    return `${this.prefix}:journey:${slot(journeyId)}:answer:${turn}`;
  }

  /**
   * What a run holds until it ends (set of `userId|reservationId`: the budget reservations it was
   * given), for the run kernel to give back on the run's terminal move; TTL two days.
   */
  runHoldings(kind: string, id: string): string {
    return `${this.prefix}:run:${kind}:${slot(id)}:holds`;
  }

  /** Marks a cancel request for an operation (`kind`: generation, chat, flow); TTL 1 h. */
  cancelRequest(kind: string, id: string): string {
    return `${this.prefix}:cancel:${kind}:${slot(id)}`;
  }

  /** Which worker processes consume which queue: member `queue|process`, score its last beat (ms). */
  queueWorkers(): string {
    return `${this.prefix}:queue-workers`;
  }

  /** Lock that lets one process run the reaper's sweep per interval; TTL just under the interval. */
  reaperLock(): string {
    return `${this.prefix}:reaper:lock`;
  }

  // ── Devices ──────────────────────────────────────────────────────────────

  /** Hash of a user's connected devices (device id → presence JSON); no TTL, pruned when read. */
  devicesOfUser(userId: string): string {
    return `${this.prefix}:devices:user:${slot(userId)}`;
  }

  /** Heartbeat of a process holding device sockets; TTL the heartbeat TTL (30 s by default). */
  deviceNode(nodeId: string): string {
    return `${this.prefix}:devices:node:${slot(nodeId)}`;
  }

  // ── Canvas and Socket.IO ─────────────────────────────────────────────────

  /** A canvas's event seq counter; never expires (a seq is never reused), dropped with the canvas. */
  canvasSeq(canvasId: string): string {
    return `${this.prefix}:canvas:${slot(canvasId)}:seq`;
  }

  /** Stream of a canvas's recent events for catch-up; TTL the canvas log's. */
  canvasLog(canvasId: string): string {
    return `${this.prefix}:canvas:${slot(canvasId)}:log`;
  }

  /** The mark a deleted canvas leaves (canvas ids are never reused); TTL 24 h. */
  canvasGone(canvasId: string): string {
    return `${this.prefix}:canvas:${slot(canvasId)}:gone`;
  }

  /** The Socket.IO adapter's stream (every node's room events and cluster messages); capped by length. */
  socketIoStream(): string {
    return `${this.prefix}:socket.io`;
  }

  /** Channel of the Socket.IO adapter's requests of namespace `nsp` to every node. */
  socketIoChannel(nsp: string): string {
    return `${this.prefix}:socket.io#${nsp}#`;
  }

  /** Channel of the Socket.IO adapter's messages of namespace `nsp` to one adapter (`uid`: random per adapter). */
  socketIoNodeChannel(nsp: string, uid: string): string {
    return `${this.prefix}:socket.io#${nsp}#${uid}#`;
  }

  /** A dropped socket's session (by its private id), kept for connection state recovery; TTL the recovery window. */
  socketIoSession(pid: string): string {
    return `${this.prefix}:sio:session:${slot(pid)}`;
  }

  /**
   * Sorted set of the worker processes' leases (member: the process's worker name, score: when its
   * lease ends, Redis time); a lapsed member is a dead process whose active jobs go back to waiting.
   */
  workerLeases(): string {
    return `${this.prefix}:worker-leases`;
  }

  /**
   * Prefix of every BullMQ key (queues, jobs, locks); BullMQ names what follows. A hash tag: a
   * BullMQ script touches several keys of a queue (and a flow, of several queues) at once.
   */
  bullmqPrefix(): string {
    return `${slot(this.prefix)}:bull`;
  }

  // ── Pub/sub channels (hold nothing) ──────────────────────────────────────

  /** Channel of cancel requests (`<kind>:<id>`) to every worker process. */
  cancelChannel(): string {
    return `${this.prefix}:cancel`;
  }

  /** Channel of revoked credentials (sessions, API keys, deleted users) to every API node. */
  revocationChannel(): string {
    return `${this.prefix}:revoked`;
  }

  /** Channel of the users whose webhook endpoints or push configs changed, to every process (their cached subscriptions are dropped). */
  webhookSubscriptionsChannel(): string {
    return `${this.prefix}:webhook-subscriptions`;
  }

  /** One entity of the OAuth authorization server (a grant, token, code, session, interaction), by its model and id. */
  oauthEntity(model: string, id: string): string {
    return `${this.prefix}:oauth:${model}:${id}`;
  }

  /** The set of the entity keys of one OAuth grant: revoking the grant deletes them all. */
  oauthGrantIndex(grantId: string): string {
    return `${this.prefix}:oauth:grant-index:${grantId}`;
  }

  /** The set of the OAuth grant ids of one person (the clients they allowed), for their list and revocation. */
  oauthAccountGrants(accountId: string): string {
    return `${this.prefix}:oauth:account-grants:${accountId}`;
  }

  /** The id of the OAuth session with this uid. */
  oauthSessionUid(uid: string): string {
    return `${this.prefix}:oauth:uid:${uid}`;
  }

  /** Channel of cursor moves between API nodes. */
  cursorChannel(): string {
    return `${this.prefix}:canvas-cursor`;
  }

  /** Channel of the replies to one process's plain-WebSocket relay requests (`nodeToken`: random per process). */
  wsRelayReply(nodeToken: string): string {
    return `${this.prefix}:ws-relay:reply:${nodeToken}`;
  }

  /** Channel to whichever process holds a plain-WebSocket device. */
  wsRelayDevice(userId: string, deviceId: string): string {
    return `${this.prefix}:ws-relay:device:${userId}:${deviceId}`;
  }

  /** Channel to every process holding a plain-WebSocket device of a user. */
  wsRelayUser(userId: string): string {
    return `${this.prefix}:ws-relay:user:${userId}`;
  }

  /** Channel to the process holding a plain-WebSocket device session. */
  wsRelaySession(sessionId: string): string {
    return `${this.prefix}:ws-relay:session:${sessionId}`;
  }
}

/**
 * Hash of the tags already appended once to the sequenced log `logKey` (a generation's or flow
 * execution's events); TTL the log's. Derived from the log's key, so it shares the log's slot.
 */
export function eventLogOnce(logKey: string): string {
  return `${logKey}:once`;
}

/** The key and channel names under `prefix` (the deployment's `REDIS_KEY_PREFIX`). */
export function redisKeys(prefix: string): RedisKeys {
  return new RedisKeys(prefix);
}

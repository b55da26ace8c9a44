import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Request, Response } from 'express';
import type { RedisClient } from '../lib/redis';
import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { redactError } from '../lib/redact-error';
import { StreamAbort, untilEventOrAbort, type StreamSignal } from '../lib/stream-signal';
import type { LiveEnd, LivePhase } from '../lib/redis-streams';
import type { Frame } from '../lib/stream-follower';
import { framesDrained, pushFrames, type FrameTarget } from './sse-frames';
import { formatSse, openSse, type SseMessage } from './sse';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts, type RedisScripts } from '../lib/redis-scripts';
import { settled } from '../lib/settled';
import { Revocations, type RevocationWatcher } from '../auth/revocations';
import type { AuthUser } from './middleware/authenticate';

/**
 * What a route streams. The helper opens the response, writes `messages` in order and ends the
 * response when they end; everything else (cap, heartbeat, shutdown, client gone, failures) is
 * the helper's, the same for every stream.
 */
export interface SseSource {
  /**
   * The messages, ending after the terminal one (or when `signal` aborts). A source may hand its
   * live phase to `push` as ready SSE frames (shared between streams) instead of yielding it: it
   * then returns a `LiveHandoff`, and the helper runs the live phase and writes what follows it.
   * No generator of the source stays suspended while the stream only waits for events.
   */
  messages(signal: StreamSignal, push?: (frames: Frame[]) => void): AsyncGenerator<SseMessage, LiveHandoff | void>;
  /** Written when `messages` fails mid-stream (e.g. Redis unreachable); the client may reconnect. */
  interrupted: SseMessage;
  /** The last message when the stream's credential is revoked; without it, `error session_revoked`. */
  revoked?: SseMessage;
}

/** What a source returns when its live phase goes to `push`: run `live`, then write `after`'s messages. */
export interface LiveHandoff<T = SseMessage> {
  live: LivePhase;
  after: () => AsyncGenerator<T>;
}

/**
 * A source's messages from a followed log: what `replay` yields, then, when it returns a live
 * phase, a `LiveHandoff` whose `after` is `ending` (it yields whatever the stream still owes once
 * the log ended, e.g. a terminal built from the row); without a live phase `ending` runs in place.
 */
export async function* handOffLive<T>(
  replay: AsyncGenerator<T, LivePhase | undefined>,
  ending: () => AsyncGenerator<T>,
): AsyncGenerator<T, LiveHandoff<T> | undefined> {
  const live = yield* replay;
  if (live) return { live, after: ending };
  yield* ending();
  return undefined;
}

/** Ids for the log line of a failed stream (never user content). */
export type StreamLogContext = Record<string, string | number | undefined>;

const HEARTBEAT_MS = 15_000;
/** A lease outlives its refresh (each heartbeat) by this much, so a dead node's streams expire. */
const LEASE_MS = 60_000;
/** Leases refreshed or released by one command (each is short, so Redis serves others between them). */
const LEASES_PER_CALL = 1_000;
/** The heartbeat: an SSE comment, the same bytes for every stream. */
const PING: Frame[] = [{ bytes: Buffer.from(': ping\n\n'), terminal: false }];
/** The last frame of a stream whose credential was revoked (sign-out, key revoke, refresh reuse, deletion). */
const REVOKED: Frame[] = [
  {
    bytes: Buffer.from(
      formatSse({
        event: 'error',
        data: JSON.stringify({
          type: 'error',
          code: 'session_revoked',
          message: 'The credential of this stream was revoked; sign in again',
        }),
      }),
    ),
    terminal: true,
  },
];

/**
 * One open stream, for its whole life (10,000 per node): the response, its abort and lease, what
 * `pushFrames` keeps between calls and, once the source handed its live phase off, what runs when
 * that phase ends. It is the live phase's `LiveEnd` itself, so a waiting stream holds no promise
 * or callbacks of its own for it.
 */
class OpenStream implements FrameTarget, LiveEnd, RevocationWatcher {
  readonly controller = new StreamAbort();
  /** The ids of the stream's credential it watches for a revocation (none when nothing watches). */
  watched: readonly string[] | undefined = undefined;
  /** Set once its credential was revoked: the stream ends with `error session_revoked` (or its source's own last message). */
  revokedCredential = false;
  /** The frames a revocation writes last: the source's own, else `error session_revoked`. */
  revokedFrames: Frame[] = REVOKED;
  held: Buffer[] | undefined = undefined;
  drainer: NodeJS.EventEmitter | undefined = undefined;
  direct: Socket | undefined = undefined;
  /** Set at the live handoff: the source (its `interrupted` message), the log ids and what follows the live phase. */
  source: SseSource | undefined = undefined;
  context: StreamLogContext | undefined = undefined;
  after: LiveHandoff['after'] | undefined = undefined;

  constructor(
    private readonly streams: SseStreams,
    readonly res: Response,
    readonly leaseKey: string,
    readonly leaseId: string,
  ) {}

  get signal(): StreamSignal {
    return this.controller;
  }

  liveEnded(error?: Error): void {
    this.streams.afterLive(this, error);
  }

  revoked(): void {
    this.streams.revoke(this);
  }
}

/**
 * The one door for Server-Sent Events: generation, chat and ticket-notes streams
 * (flows next) all go through `serve`. It enforces `MAX_STREAMS_PER_USER` across nodes, writes one
 * heartbeat comment per interval for every open stream (one timer per process, not per stream),
 * refreshes the leases in one pipeline, aborts the source when the client leaves, respects
 * back-pressure, and on shutdown tells each client to reconnect (`retry:`) before closing.
 */
export class SseStreams {
  private readonly open = new Set<OpenStream>();
  /** Streams whose leases the next `flushReleases` removes. */
  private readonly releasing: OpenStream[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly scripts: RedisScripts;
  /** Runs a function in the async context the node started in (outside any request). */
  private readonly outsideRequests = AsyncLocalStorage.snapshot();

  constructor(
    private readonly deps: {
      redis: RedisClient;
      keyPrefix: string;
      maxPerUser: number;
      logger: Logger;
      /** True once shutdown began: new streams are refused with 503. */
      shuttingDown: () => boolean;
      /**
       * Revoked credentials on every node: a stream watches its caller's session or API key (and
       * user) and ends with `error session_revoked` when one is revoked. Absent: nothing watches.
       */
      revocations?: Pick<Revocations, 'watch' | 'unwatch'>;
      heartbeatMs?: number;
    },
  ) {
    this.log = deps.logger.child({ component: 'sse' });
    // EVALSHA after the first call: the refresh of 10,000 leases sends ids, not 10,000 scripts.
    this.scripts = redisScripts(deps.redis);
  }

  /** Streams open on this node. */
  get size(): number {
    return this.open.size;
  }

  /**
   * Serves one stream: checks shutdown and the user's cap (429 `too_many_streams`), then `prepare`
   * (validation, starting the work, response headers; a throw there is an ordinary JSON error and
   * frees the slot), then opens the stream and returns; the source is pumped until it ends or the
   * client leaves.
   *
   * With `alongsideSlot`, `prepare` starts at once, while the slot is being taken, and gets the
   * taking as `slot`: it awaits `slot` before anything it cannot undo (a refused slot rejects it
   * with the 429), and undoes what it did before when `slot` rejects. The answer is the same as
   * with the slot taken first: a refused slot's 429 before any error of `prepare`, and nothing
   * started for a refused stream. Without it, `prepare` runs once the slot is taken.
   */
  async serve(
    req: Request,
    res: Response,
    options: {
      userId: string;
      context: StreamLogContext;
      prepare: (signal: StreamSignal, slot: Promise<void>) => Promise<SseSource>;
      alongsideSlot?: boolean;
    },
  ): Promise<void> {
    if (this.deps.shuttingDown()) throw new AppError(503, 'shutting_down', 'This node is shutting down; retry on another');
    const stream = new OpenStream(this, res, redisKeys(this.deps.keyPrefix).sseLeases(options.userId), randomUUID());
    // Listening from the start: a client that leaves while the slot is taken or `prepare` runs
    // must not leave a stream following a generation for nobody.
    abortOnClose(res, stream.controller);
    // Watched from the start: a credential revoked while the slot is taken or `prepare` runs is
    // refused (401) instead of opening a stream.
    this.watch(stream, req.user);
    try {
      await this.start(req, res, stream, options);
    } catch (error) {
      this.unwatch(stream);
      throw stream.revokedCredential ? revokedError() : error;
    }
  }

  private async start(
    req: Request,
    res: Response,
    stream: OpenStream,
    options: {
      context: StreamLogContext;
      prepare: (signal: StreamSignal, slot: Promise<void>) => Promise<SseSource>;
      alongsideSlot?: boolean;
    },
  ): Promise<void> {
    const slot = this.acquire(stream);
    // Refused (or Redis away): nothing is held, and the error is the answer.
    if (!options.alongsideSlot) await slot;
    // Awaited below whatever `prepare` does, which reports a refusal; unhandled until then otherwise.
    else void settled(slot);
    let source: SseSource;
    try {
      source = await options.prepare(stream.controller.signal, slot);
      await slot;
    } catch (error) {
      // A slot that was not taken holds nothing, and its refusal is the answer.
      const refused = await slot.then(
        () => undefined,
        (reason: unknown) => ({ reason }),
      );
      if (refused) throw refused.reason;
      this.release(stream);
      throw error;
    }
    const { signal } = stream.controller;
    if (stream.revokedCredential) {
      this.release(stream);
      throw revokedError();
    }
    if (signal.aborted || res.destroyed) {
      this.release(stream);
      return;
    }
    if (source.revoked) stream.revokedFrames = [{ bytes: Buffer.from(formatSse(source.revoked)), terminal: true }];
    openSse(res);
    this.open.add(stream);
    this.startTimer();
    // The stream runs on without the request handler: once this returns, the route's async frames
    // and the router's per-request closures are free, so an idle stream holds only what it needs
    // (the ≤ 20 KB per stream target). The pump catches its own failures.
    // Express keeps its router's continuation on `req.next` (the layer stack, params, the final
    // handler: ~1 KB per request); nothing calls it once the stream is open.
    (req as { next?: unknown }).next = undefined;
    forgetRequestExtras(req, res);
    const reqId = String(req.id as string | number); // pino-http's ids: this app's genReqId makes strings
    void this.pump(stream, source, { reqId, ...options.context }).catch((error: unknown) =>
      this.log.error({ err: redactError(error), reqId }, 'stream pump failed'),
    );
  }

  /**
   * Writes the source's messages (and pushed frames) until it ends or the client leaves, then frees
   * the slot. A live phase handed off by the source runs on callbacks: this function has returned by
   * then, so an open stream keeps no suspended async frame of its own (nor its promise chain).
   */
  private async pump(stream: OpenStream, source: SseSource, context: StreamLogContext): Promise<void> {
    const { signal } = stream.controller;
    let handoff: LiveHandoff | void;
    try {
      handoff = await writeAll(stream, source.messages(signal, pushTo(stream)));
    } catch (error) {
      this.interrupt(stream, source, context, error);
      return this.finish(stream);
    }
    // The source's generators have all returned; only the live phase's callbacks remain.
    if (!handoff || signal.aborted) return this.finish(stream);
    stream.source = source;
    stream.context = context;
    stream.after = handoff.after;
    // The live phase runs outside the request's async context: its timer and callbacks would
    // otherwise keep that context (the request's origin and what was kept for the request, e.g.
    // the user's plan) for the stream's whole life. Nothing it does belongs to one request: the
    // follower's reads and the liveness checks are shared by every stream of the key.
    const { live } = handoff;
    this.outsideRequests(() => live.start(stream));
  }

  /**
   * Once a stream's live phase ended (its `LiveEnd`): what the source still writes (the handoff's
   * `after`, e.g. a terminal built from the row), or the interruption when the live phase failed
   * (`error`); then the end of the stream.
   */
  afterLive(stream: OpenStream, error?: Error): void {
    const source = stream.source!;
    const context = stream.context!;
    const after = stream.after;
    const run = async () => {
      try {
        if (error) this.interrupt(stream, source, context, error);
        else if (after && !stream.controller.signal.aborted) await writeAll(stream, after());
      } catch (failure) {
        this.interrupt(stream, source, context, failure);
      } finally {
        this.finish(stream);
      }
    };
    run().catch((failure: unknown) => this.log.error({ err: redactError(failure), reqId: context.reqId }, 'stream pump failed'));
  }

  /** A source that failed mid-stream: logged, and the client told to reconnect (unless it left). */
  private interrupt(stream: OpenStream, source: SseSource, context: StreamLogContext, error: unknown): void {
    if (stream.controller.signal.aborted) return;
    this.log.warn({ err: redactError(error), ...context }, 'stream failed');
    stream.res.write(formatSse(source.interrupted));
  }

  /** The stream is over: out of the open set, its slot freed, its response ended. */
  private finish(stream: OpenStream): void {
    this.open.delete(stream);
    this.release(stream);
    if (!this.open.size) this.stopTimer();
    stream.res.end();
  }

  /**
   * The stream's credential was revoked: an open stream writes `error session_revoked` as its last
   * frame and ends; one still being prepared is refused (401) when `prepare` returns.
   */
  revoke(stream: OpenStream): void {
    if (stream.revokedCredential) return;
    stream.revokedCredential = true;
    this.unwatch(stream);
    if (this.open.has(stream)) pushFrames(stream, stream.revokedFrames);
    stream.controller.abort();
  }

  private watch(stream: OpenStream, user: AuthUser | undefined): void {
    const revocations = this.deps.revocations;
    if (!revocations || !user) return;
    const credential = user.apiKey?.id ?? user.sessionId;
    stream.watched = credential ? [credential, Revocations.userId(user.id)] : [Revocations.userId(user.id)];
    revocations.watch(stream.watched, stream);
  }

  private unwatch(stream: OpenStream): void {
    if (!stream.watched) return;
    this.deps.revocations?.unwatch(stream.watched, stream);
    stream.watched = undefined;
  }

  /** Shutdown: every open stream gets a `retry:` hint (reconnect elsewhere with Last-Event-ID) and ends. */
  endAll(retryMs: number): void {
    for (const stream of this.open) {
      stream.res.write(`retry: ${retryMs}\n: node shutting down, reconnect with Last-Event-ID\n\n`);
      stream.controller.abort();
    }
  }

  private async acquire(stream: OpenStream): Promise<void> {
    // A sorted set of lease ids scored by expiry in Redis time (nodes' clocks do not matter);
    // leases of a node that died are dropped first.
    const taken = await this.scripts.sseLeaseAcquire(
      { leases: stream.leaseKey },
      { leaseId: stream.leaseId, max: this.deps.maxPerUser, leaseMs: LEASE_MS },
    );
    if (!taken) {
      throw new AppError(
        429,
        'too_many_streams',
        `At most ${this.deps.maxPerUser} streams may be open at once; close one first`,
        { limit: this.deps.maxPerUser },
        { 'Retry-After': '5' },
      );
    }
  }

  /**
   * Frees the stream's slot. Releases of one turn of the event loop go out together, one `ZREM` per
   * user: the 1,000 followers of a generation end together, and 1,000 separate commands were 1,000
   * writes to the Redis socket. Best effort: a lease that cannot be removed (Redis away) expires on its own.
   */
  private release(stream: OpenStream): void {
    this.unwatch(stream);
    this.releasing.push(stream);
    if (this.releasing.length === 1) setImmediate(() => this.flushReleases());
  }

  private flushReleases(): void {
    for (const [key, ids] of leaseBatches(this.releasing.splice(0)))
      this.deps.redis
        .zrem(key, ...ids)
        .catch((error: unknown) => this.log.warn({ err: error }, 'stream leases not released; they expire on their own'));
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.beat(), this.deps.heartbeatMs ?? HEARTBEAT_MS);
    this.timer.unref();
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * One pass over every open stream: a comment line to keep proxies from closing it (one shared
   * chunk, written as a live frame is), and its lease. The leases of one user (one key) are
   * refreshed together, `LEASES_PER_CALL` per script call: 10,000 streams of a user cost 10 calls,
   * not 10,000 commands whose replies and buffers the node would hold at once.
   */
  private beat(): void {
    for (const stream of this.open) pushFrames(stream, PING);
    for (const [key, ids] of leaseBatches(this.open))
      this.scripts
        .sseLeaseRefresh({ leases: key }, { leaseIds: ids, leaseMs: LEASE_MS })
        .catch((error: unknown) => this.log.warn({ err: error }, 'stream leases not refreshed; the next ping refreshes them'));
  }
}

/**
 * Writes `messages` in order, after any pushed frames still held (the order on the wire is the
 * order of the log), waiting on back-pressure; returns what the generator returned. Stopped
 * early (the client left), it closes the generator so its `finally` blocks run.
 */
async function writeAll<R>(stream: OpenStream, messages: AsyncGenerator<SseMessage, R>): Promise<R | undefined> {
  const { res, signal } = stream;
  let finished = false;
  try {
    for (;;) {
      const next = await messages.next();
      if (next.done) {
        finished = true;
        return next.value;
      }
      if (signal.aborted) return undefined;
      if (stream.held) await framesDrained(stream);
      if (!res.write(formatSse(next.value))) await drained(res, signal);
    }
  } finally {
    if (!finished) await messages.return(undefined as R);
  }
}

/** The source's `push`: live frames to the stream (a closure over the stream alone). */
function pushTo(stream: OpenStream): (frames: Frame[]) => void {
  return (frames) => pushFrames(stream, frames);
}

/** Aborts the stream when its response closes (the client left, or the stream ended). */
function abortOnClose(res: Response, controller: StreamAbort): void {
  res.on('close', () => controller.abort());
}

/** Waits until the client reads what was written (or leaves), so a slow reader cannot pile up memory. */
async function drained(res: Response, signal: StreamSignal): Promise<void> {
  if (signal.aborted || res.destroyed) return;
  await untilEventOrAbort(res, 'drain', signal);
}

/**
 * What an open stream's request no longer needs (the ≤ 20 KB per stream target): its headers, the
 * bearer token among them (verified already; one copy of a secret fewer in memory for the stream's
 * whole life), the authenticated user's row, and the route's params.
 * Express's `res.locals` (an object without prototype, so a hash table from the start) becomes a
 * plain object holding only the route template the request metrics read when the stream ends.
 * The request log line is bound when the request arrives (its id, method and path are already in
 * it), so the URL and original URL, two copies of a path with ids in it, become that shared
 * template. When the stream ends, only the method, the route template and the status are read.
 */
function forgetRequestExtras(req: Request, res: Response): void {
  req.headers = NO_HEADER_MAP;
  req.rawHeaders = NO_HEADERS;
  req.params = NO_PARAMS;
  (req as { user?: unknown }).user = undefined;
  // The request logger's lists of its loggers (`req.log` and `res.log` stay, and the one that
  // writes the request's log line is its own): arrays grown for 17, nothing reads them.
  (req as { allLogs?: unknown }).allLogs = undefined;
  (res as { allLogs?: unknown }).allLogs = undefined;
  const routeTemplate = (res.locals as { routeTemplate?: unknown }).routeTemplate;
  if (typeof routeTemplate !== 'string') {
    res.locals = NO_LOCALS;
    return;
  }
  const template = sharedTemplate(routeTemplate);
  res.locals = { routeTemplate: template };
  req.url = template;
  req.originalUrl = template;
}

/**
 * One copy of each route template (`/api/v1/canvases/:id/…`, built by concatenation per request)
 * for all the streams of that route. Templates come from the route table, so there are few; past
 * `MAX_TEMPLATES` (a router mounted on a path with values in it) each stream keeps its own.
 */
function sharedTemplate(template: string): string {
  const shared = TEMPLATES.get(template);
  if (shared !== undefined) return shared;
  if (TEMPLATES.size < MAX_TEMPLATES) TEMPLATES.set(template, template);
  return template;
}
const TEMPLATES = new Map<string, string>();
const MAX_TEMPLATES = 512;
const NO_HEADERS: string[] = Object.freeze([]) as unknown as string[];
const NO_HEADER_MAP = Object.freeze({}) as Request['headers'];
const NO_LOCALS = Object.freeze({}) as Response['locals'];
const NO_PARAMS = Object.freeze({}) as Request['params'];

function revokedError(): AppError {
  return new AppError(401, 'session_revoked', 'The credential of this request was revoked; sign in again');
}

/** The lease ids of `streams` by lease key (one key per user), `LEASES_PER_CALL` at most per batch. */
function* leaseBatches(streams: Iterable<OpenStream>): Generator<[key: string, ids: string[]]> {
  const byKey = new Map<string, string[]>();
  for (const { leaseKey, leaseId } of streams) {
    const ids = byKey.get(leaseKey);
    if (ids) ids.push(leaseId);
    else byKey.set(leaseKey, [leaseId]);
  }
  for (const [key, ids] of byKey)
    for (let from = 0; from < ids.length; from += LEASES_PER_CALL) yield [key, ids.slice(from, from + LEASES_PER_CALL)];
}

import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../lib/redis';
import type { Tier, TierLimits } from '../../config';
import { budgetWindows } from '../auth/limits';
import { Pricing, type PriceTable } from './pricing';
import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { BUDGET_OPEN_SHARDS, RedisKeys } from '../lib/redis-keys';
import { redisScripts, type BudgetAmount, type BudgetLimitTriple, type RedisScripts } from '../lib/redis-scripts';

/**
 * The one budget door: every model call, and every request that queues one, takes
 * a reservation of what the call may cost (prompt tokens counted + the `max_tokens` it is sent
 * with, its price, one request) against each of the user's windows (the UTC hour and the UTC
 * month) in one Redis script, all windows or none; a reservation that would pass a limit is
 * refused with 429 `budget_exceeded`. When the call ends the reservation is replaced by what the
 * call used. Because the model is sent the reserved `max_tokens`, spent never passes a limit,
 * however many requests arrive at once.
 *
 * A request reserves its first call before anything is queued (`admit`) and hands the
 * reservation's id to its job; the job's first model call takes it over (`forCall`), later calls
 * reserve their own. A reservation no call took (the run failed or was cancelled first) is
 * released (`releaseUnused`) by the run kernel when the run ends, by the request when nothing was
 * queued, or, when nobody ends it, expires: the reaper settles what expired (`settleExpired`). A user whose limits are all unlimited costs no Redis call.
 * A window's used amounts start from recorded usage (`llm_usage`), and start again from it when
 * the user's plan changed since the window was counted.
 */

/**
 * What `admit` hands a job when the user had no budget limits at the request: the job's calls are
 * not budgeted (no plan read per call); limits set meanwhile apply from the user's next request.
 */
export const NO_BUDGET = 'unlimited';

/** What one model call may cost: its counted prompt, the `max_tokens` it is sent with, its price at that size. */
export interface CallEstimate {
  inputTokens: number;
  maxTokens: number;
  costUsd: number;
  /** 1 for a model call, 0 for an embedding (embeddings count tokens only). */
  requests: number;
}

/** What a call used. */
export interface CallActual {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  requests: number;
}

/** What a run's model calls reserve under: its user and the reservation its request took before enqueueing. */
export interface BudgetTicket {
  userId: string;
  /** The reservation `admit` took; the run's first model call takes it over. */
  reservationId?: string;
  /** Set once the first call took the reservation over (or found it gone): later calls reserve their own. */
  taken?: boolean;
}

/** A reservation held: settle it once with what the call used. Null from the door = the user has no budget limits. */
export interface Reservation {
  userId: string;
  id: string;
  amount: BudgetAmount;
  tier: Tier;
}

/** The windows a reservation id names (it carries them, so any node can settle it from the id alone). */
interface WindowIds {
  hour: string;
  month: string;
}

/** A user's plan as the door reads it. */
type Plan = { tier: Tier; limits: TierLimits; version: number };

/** What the door reads: the user's plan and their recorded spend. */
export interface BudgetDoorDeps {
  redis: RedisClient;
  keyPrefix: string;
  limits: { forUser(userId: string): Promise<{ tier: Tier; limits: TierLimits; version: number } | null> };
  usage: { spentSince(userId: string, starts: Date[]): Promise<Array<{ tokens: number; requests: number; costUsd: number }>> };
  logger: Logger;
  metrics?: {
    budgetReservations: { inc(labels: { stage: string; result: string }): void };
    budgetRejections: { inc(labels: { window: string; limit: string; tier: string }): void };
    budgetSettlementSeconds: { observe(labels: { by: string }, seconds: number): void };
    budgetNearLimit: { inc(labels: { tier: string }): void };
  };
  /** How long a reservation may stay open before the reaper settles it (default 15 min). */
  reservationTtlMs?: number;
  /**
   * What `admitPrompt` estimates with: the `max_tokens` calls are sent with, prices, the default
   * model, and every model a call may fall back to (a call is priced at the dearest, as the gateway prices it).
   */
  calls?: { maxTokens: number; pricing: PriceTable; defaultModel: string; models?: readonly string[] };
}

/**
 * Tokens a request's first call is reserved for beyond its user's text when the caller does not
 * give the size of what the worker adds (the system prompt, tools and context).
 */
const PROMPT_ALLOWANCE_TOKENS = 1_000;

const DAY_MS = 86_400_000;
/** A reservation open this long was orphaned: its call or its queued job is gone. */
const DEFAULT_TTL_MS = 15 * 60_000;
/** Share of a monthly limit past which a reservation counts as "near the limit". */
const NEAR_LIMIT = 0.8;

/** Micro-USD, rounded up: what a budget counts cost in (integers, so Redis adds them exactly). */
const micro = (usd: number) => Math.ceil(usd * 1_000_000 - 1e-6);

/** 429 `budget_exceeded` with the numbers: the window, the limit, what was used and reserved, and when it resets. */
export class BudgetExceededError extends AppError {
  constructor(details: {
    window: 'hour' | 'month';
    limit: 'tokens' | 'requests' | 'cost';
    allowed: number;
    used: number;
    reserved: number;
    resetsAt: string;
  }) {
    const retryAfter = Math.max(1, Math.ceil((Date.parse(details.resetsAt) - Date.now()) / 1000));
    super(
      429,
      'budget_exceeded',
      `The ${details.window === 'hour' ? 'hourly' : 'monthly'} ${details.limit === 'cost' ? 'cost' : details.limit} budget is spent (limit ${details.allowed}, used ${details.used}, reserved ${details.reserved}); it resets at ${details.resetsAt}`,
      {
        window: details.window,
        dimension: details.limit,
        limit: details.allowed,
        used: details.used,
        reserved: details.reserved,
        resetsAt: details.resetsAt,
      },
      { 'Retry-After': String(retryAfter) },
    );
  }
}

export class BudgetDoor {
  private readonly keys: RedisKeys;
  private readonly scripts: RedisScripts;
  private readonly ttlMs: number;
  private readonly log: Logger;

  constructor(private readonly deps: BudgetDoorDeps) {
    this.keys = new RedisKeys(deps.keyPrefix);
    this.scripts = redisScripts(deps.redis);
    this.ttlMs = deps.reservationTtlMs ?? DEFAULT_TTL_MS;
    this.log = deps.logger.child({ component: 'budget-door' });
  }

  /**
   * Before a request queues work that calls a model: reserves its first call, or throws 429
   * `budget_exceeded` (nothing is to be written then). Returns the reservation's id for the job
   * (`BudgetTicket.reservationId`), or {@link NO_BUDGET} when the user has no budget limits.
   */
  async admit(userId: string, estimate: CallEstimate): Promise<string> {
    const plan = await this.budgetedPlan(userId);
    if (!plan) return NO_BUDGET;
    const reservation = await this.reserve(plan, userId, estimate, { stage: 'admit', started: false });
    return reservation.id;
  }

  /**
   * `admit` for a request whose first call carries `texts` (the user's message, the prompt, the
   * input) and what the worker adds to them: the reservation id for the job, {@link NO_BUDGET} when
   * the user has no budget limits (undefined: this door estimates no calls). 429 `budget_exceeded`
   * when a limit would be passed.
   *
   * With `fixed` (the size of everything else the first call sends: system prompt, tools), `texts`
   * and `fixed` are the whole first call, counted as the gateway will count it, so the worker's
   * first call takes the reservation over as it is: a request admitted here is not refused later
   * for its first call. Without it, the worker's additions are guessed ({@link PROMPT_ALLOWANCE_TOKENS}).
   * `fixed` may be a function that reads the part (the sizes of a user's MCP tools): it is called
   * only when the user has budget limits, so users without any pay no read for it. The cost is that
   * of the dearest model the call may be sent to.
   */
  async admitPrompt(
    userId: string,
    texts: readonly string[],
    model?: string,
    fixed?: PromptPart | (() => Promise<PromptPart>),
  ): Promise<string | undefined> {
    if (!this.deps.calls) return undefined;
    const plan = await this.budgetedPlan(userId);
    if (!plan) return NO_BUDGET;
    // What the part reads (a user's MCP servers) is read only for a user the budget applies to.
    if (typeof fixed === 'function') fixed = await fixed();
    const inputTokens = fixed ? promptTokenBound(texts, fixed) : promptTokenBound(texts) + PROMPT_ALLOWANCE_TOKENS;
    const reservation = await this.reserve(plan, userId, this.callEstimate(inputTokens, model), { stage: 'admit', started: false });
    return reservation.id;
  }

  /**
   * Before a run's first model call, when that call will send `extra` beyond what its request
   * reserved (tool definitions the request could not know the size of): takes a reservation that
   * covers the larger call, if the budget has room for it while the request's is still held, then
   * gives the request's back; the ticket names the new reservation from then on (the caller holds
   * it for the run). False when the budget has no room: the call must then send no more than was
   * reserved. True without a change when there is nothing to widen: no limits, no reservation, or
   * one a call took already (that call reserves what it sends).
   */
  async widen(ticket: BudgetTicket, extra: PromptPart, model?: string): Promise<boolean> {
    const calls = this.deps.calls;
    if (!calls || !ticket.reservationId || ticket.reservationId === NO_BUDGET || ticket.taken) return true;
    if (extra.bytes <= 0 && extra.texts <= 0) return true;
    const plan = await this.budgetedPlan(ticket.userId);
    if (!plan) return true;
    const held = await this.deps.redis.hmget(this.keys.budgetReservation(ticket.userId, ticket.reservationId), 't', 's');
    if (held[0] === null || held[1] === '1') return true;
    // The request's count plus the extra part counted alone: never less than the whole counted at once.
    const inputTokens = Number(held[0]) - calls.maxTokens + Math.ceil(Math.max(0, extra.bytes) / 3) + 8 * Math.max(0, extra.texts);
    let wider: Reservation;
    try {
      wider = await this.reserve(plan, ticket.userId, this.callEstimate(inputTokens, model), { stage: 'admit', started: false });
    } catch (error) {
      if (error instanceof BudgetExceededError) return false;
      throw error;
    }
    await this.releaseUnused(ticket);
    ticket.reservationId = wider.id;
    ticket.taken = false;
    return true;
  }

  /** One call of `inputTokens` prompt tokens, sent with the configured `max_tokens`, priced at the dearest model it may go to. */
  private callEstimate(inputTokens: number, model?: string): CallEstimate {
    const calls = this.deps.calls!;
    const pricing = Pricing.of(calls.pricing);
    const models = [model ?? calls.defaultModel, calls.defaultModel, ...(calls.models ?? [])];
    const costUsd = Math.max(...models.map((name) => pricing.costOf({ model: name, inputTokens, outputTokens: calls.maxTokens })));
    return { inputTokens, maxTokens: calls.maxTokens, costUsd, requests: 1 };
  }

  /**
   * Before one model call of a run: takes over the request's reservation when it is still open and
   * covers `estimate`, else reserves anew (429 `budget_exceeded` when a limit would be passed).
   * Null when the user has no budget limits.
   */
  async forCall(ticket: BudgetTicket, estimateCall: () => CallEstimate): Promise<Reservation | null> {
    if (ticket.reservationId === NO_BUDGET) return null;
    const plan = await this.budgetedPlan(ticket.userId);
    if (!plan) {
      // No limits now: a reservation the request took (limits lifted since) is given back.
      if (ticket.reservationId && !ticket.taken) await this.releaseUnused(ticket);
      return null;
    }
    const estimate = estimateCall();
    if (ticket.reservationId && !ticket.taken) {
      ticket.taken = true;
      const id = ticket.reservationId;
      const windows = windowsOf(id);
      const keys = windows && this.keysOf(ticket.userId, id, windows);
      const held = keys && (await this.scripts.budgetStart(keys, { ttlMs: this.ttlMs + DAY_MS }));
      if (held && keys) {
        await this.deps.redis.zadd(keys.open, Date.now() + this.ttlMs, member(ticket.userId, id));
        const wanted = amountOf(estimate);
        const reservation: Reservation = { userId: ticket.userId, id, amount: held, tier: plan.tier };
        if (held.tokens >= wanted.tokens && held.microUsd >= wanted.microUsd && held.requests >= wanted.requests) return reservation;
        // The prompt grew past what the request reserved (the canvas or history it was given): start over at its size.
        await this.settle(reservation, { inputTokens: 0, outputTokens: 0, costUsd: 0, requests: 0 });
      }
    }
    return this.reserve(plan, ticket.userId, estimate, { stage: 'call', started: true });
  }

  /** Replaces a call's reservation with what it used. Safe to call once per reservation; a later call is a no-op. */
  async settle(reservation: Reservation, actual: CallActual): Promise<void> {
    await this.end(reservation.userId, reservation.id, 'call', {
      tokens: actual.inputTokens + actual.outputTokens,
      requests: actual.requests,
      microUsd: micro(actual.costUsd),
    });
  }

  /** The run ended without a model call taking its request's reservation: it is given back whole. */
  async releaseUnused(ticket: BudgetTicket): Promise<void> {
    if (!ticket.reservationId || ticket.taken || ticket.reservationId === NO_BUDGET) return;
    ticket.taken = true;
    await this.end(ticket.userId, ticket.reservationId, 'release', { tokens: 0, requests: 0, microUsd: 0 });
  }

  /**
   * `releaseUnused` on a path that is already failing: a Redis error is logged, not thrown, so the
   * caller's own error is the one heard; the reaper (`settleExpired`) gives back what stays open.
   */
  async releaseUnusedQuietly(ticket: BudgetTicket): Promise<void> {
    await this.releaseUnused(ticket).catch((error: unknown) =>
      this.log.warn({ err: error, userId: ticket.userId }, 'reservation not given back; the reaper settles it'),
    );
  }

  /**
   * The reaper: settles reservations open past their deadline (their call's process died, or their
   * job never ran). One a call had taken is charged in full, since the provider may have billed up
   * to its `max_tokens`; one no call took is released. Returns how many were settled.
   */
  async settleExpired(limit = 500): Promise<number> {
    let settled = 0;
    for (let shard = 0; shard < BUDGET_OPEN_SHARDS && settled < limit; shard += 1) {
      const key = this.keys.budgetOpen(shard);
      const expired = await this.deps.redis.zrangebyscore(key, '-inf', Date.now(), 'LIMIT', 0, limit - settled);
      for (const entry of expired) {
        const [userId, id] = entry.split('|');
        if (userId && id && (await this.end(userId, id, 'reap', { tokens: 0, requests: 0, microUsd: 0 }))) settled += 1;
        else await this.deps.redis.zrem(key, entry);
      }
    }
    return settled;
  }

  /**
   * What the door counts for the user in the current hour and month (`GET /usage/budget`): reserved
   * amounts, and the used amounts it enforces limits with (null for a window it has not counted yet:
   * recorded usage is the answer then). Used can exceed recorded usage by the calls the reaper
   * charged in full after their process died.
   */
  async counts(userId: string, now = new Date()): Promise<Record<'hour' | 'month', { used: BudgetAmount | null; reserved: BudgetAmount }>> {
    const ids = windowIds(now);
    const read = (window: string) => this.deps.redis.hmget(this.keys.budgetWindow(userId, window), 'ut', 'ur', 'uc', 'rt', 'rr', 'rc');
    const [hour, month] = await Promise.all([read(ids.hour), read(ids.month)]);
    const amount = (tokens: string | null, requests: string | null, cost: string | null): BudgetAmount => ({
      tokens: Math.max(0, Number(tokens ?? 0)),
      requests: Math.max(0, Number(requests ?? 0)),
      microUsd: Math.max(0, Number(cost ?? 0)),
    });
    const window = ([ut, ur, uc, rt, rr, rc]: Array<string | null>) => ({
      used: ut === null ? null : amount(ut, ur, uc),
      reserved: amount(rt, rr, rc),
    });
    return { hour: window(hour), month: window(month) };
  }

  /** The user's reserved tokens, requests and micro-USD in the current hour and month. */
  async reserved(userId: string, now = new Date()): Promise<{ hour: BudgetAmount; month: BudgetAmount }> {
    const counts = await this.counts(userId, now);
    return { hour: counts.hour.reserved, month: counts.month.reserved };
  }

  /** The user's plan when any budget limit applies to them; null when none does (or no such user): nothing is reserved then. */
  private async budgetedPlan(userId: string): Promise<Plan | null> {
    const plan = await this.deps.limits.forUser(userId);
    return plan && hasBudget(plan.limits) ? plan : null;
  }

  /** Reserves `estimate` under `plan` (the user's, with a budget limit), or throws 429 `budget_exceeded`. */
  private async reserve(
    plan: Plan,
    userId: string,
    estimate: CallEstimate,
    how: { stage: 'admit' | 'call'; started: boolean },
  ): Promise<Reservation> {
    const { limits, tier } = plan;
    const now = new Date();
    const spans = budgetWindows(now);
    const ids = windowIds(now);
    const id = `${randomUUID()}.${ids.hour}.${ids.month}`;
    const amount = amountOf(estimate);
    const keys = this.keysOf(userId, id, ids);
    const windowLimits: { hour: BudgetLimitTriple; month: BudgetLimitTriple } = {
      hour: [limits.tokensPerHour, limits.requestsPerHour, null],
      month: [
        limits.tokensPerMonth,
        limits.requestsPerMonth,
        limits.costUsdPerMonth === null ? null : Math.floor(limits.costUsdPerMonth * 1_000_000 + 1e-6),
      ],
    };
    const ttlMs = {
      hour: spans[0].resetsAt.getTime() - now.getTime() + DAY_MS,
      month: spans[1].resetsAt.getTime() - now.getTime() + DAY_MS,
      reservation: this.ttlMs + DAY_MS,
    };
    const args = { amount, started: how.started, ttlMs, limits: windowLimits, version: plan.version };
    let reply = await this.scripts.budgetReserve(keys, args);
    if ('needsSeed' in reply) {
      // First reservation of a window (or Redis lost it): its used amounts start from recorded usage.
      const [hour, month] = await this.deps.usage.spentSince(userId, [spans[0].start, spans[1].start]);
      const seed = (spent: { tokens: number; requests: number; costUsd: number }) => ({
        tokens: Math.ceil(spent.tokens),
        requests: Math.ceil(spent.requests),
        microUsd: micro(spent.costUsd),
      });
      reply = await this.scripts.budgetReserve(keys, { ...args, seed: { hour: seed(hour), month: seed(month) } });
    }
    if ('refused' in reply) {
      const { window, dimension, limit, used, reserved } = reply.refused;
      this.deps.metrics?.budgetReservations.inc({ stage: how.stage, result: 'refused' });
      this.deps.metrics?.budgetRejections.inc({ window, limit: dimension, tier });
      const toUsd = (value: number) => (dimension === 'cost' ? value / 1_000_000 : value);
      throw new BudgetExceededError({
        window,
        limit: dimension,
        allowed: toUsd(limit),
        used: toUsd(used),
        reserved: toUsd(reserved),
        resetsAt: spans[window === 'hour' ? 0 : 1].resetsAt.toISOString(),
      });
    }
    if (!('taken' in reply)) throw new Error(`Budget reservation ${id} exists already`);
    await this.deps.redis.zadd(keys.open, now.getTime() + this.ttlMs, member(userId, id));
    this.deps.metrics?.budgetReservations.inc({ stage: how.stage, result: 'taken' });
    if (this.deps.metrics && limits.tokensPerMonth !== null) void this.noteNearLimit(userId, ids.month, limits, tier);
    return { userId, id, amount, tier };
  }

  /** Counts a reservation taken at or past 80 % of a monthly token limit (the alert's signal). */
  private async noteNearLimit(userId: string, month: string, limits: TierLimits, tier: Tier): Promise<void> {
    try {
      const [used, reserved] = await this.deps.redis.hmget(this.keys.budgetWindow(userId, month), 'ut', 'rt');
      if (limits.tokensPerMonth && Number(used ?? 0) + Number(reserved ?? 0) >= NEAR_LIMIT * limits.tokensPerMonth)
        this.deps.metrics?.budgetNearLimit.inc({ tier });
    } catch (error) {
      this.log.debug({ err: error }, 'could not read a budget window for the near-limit metric');
    }
  }

  /** Every key reservation `id` of `userId` (in `windows`) touches: its windows, itself, what the reaper charged, the open set it sits in. */
  private keysOf(userId: string, id: string, windows: WindowIds) {
    return {
      hour: this.keys.budgetWindow(userId, windows.hour),
      month: this.keys.budgetWindow(userId, windows.month),
      reservation: this.keys.budgetReservation(userId, id),
      reaped: this.keys.budgetReaped(userId, id),
      open: this.keys.budgetOpenOf(userId),
    };
  }

  /** Settles or releases reservation `id`; true when this call ended it. */
  private async end(userId: string, id: string, mode: 'call' | 'reap' | 'release', actual: BudgetAmount): Promise<boolean> {
    const windows = windowsOf(id);
    if (!windows) return false;
    const keys = this.keysOf(userId, id, windows);
    const seconds = await this.scripts.budgetSettle(keys, { actual, mode });
    if (seconds < 0) return false;
    await this.deps.redis.zrem(keys.open, member(userId, id));
    this.deps.metrics?.budgetSettlementSeconds.observe({ by: mode === 'reap' ? 'reaper' : mode }, seconds);
    if (mode === 'reap') this.log.warn({ userId, reservationId: id }, 'an expired budget reservation was settled by the reaper');
    return true;
  }
}

/** Whether any budget limit applies (all unlimited: the door is not involved). */
function hasBudget(limits: TierLimits): boolean {
  return (
    limits.tokensPerHour !== null ||
    limits.requestsPerHour !== null ||
    limits.tokensPerMonth !== null ||
    limits.costUsdPerMonth !== null ||
    limits.requestsPerMonth !== null
  );
}

/** The hour and month window ids at `now`: `h<hours since epoch>`, `m<YYYYMM>` (UTC). */
function windowIds(now: Date): WindowIds {
  const month = `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
  return { hour: `h${Math.floor(now.getTime() / 3_600_000)}`, month: `m${month}` };
}

/** The windows a reservation id names (`<uuid>.h<n>.m<YYYYMM>`), or null for an id that is not one. */
function windowsOf(id: string): WindowIds | null {
  const match = /^[0-9a-f-]{36}\.(h\d+)\.(m\d{6})$/.exec(id);
  return match ? { hour: match[1], month: match[2] } : null;
}

function member(userId: string, id: string): string {
  return `${userId}|${id}`;
}

function amountOf(estimate: CallEstimate): BudgetAmount {
  return { tokens: estimate.inputTokens + estimate.maxTokens, requests: estimate.requests, microUsd: micro(estimate.costUsd) };
}

/** A part of a prompt: the UTF-8 bytes of its texts and how many texts it is. */
export interface PromptPart {
  bytes: number;
  texts: number;
}

/**
 * Tokens a prompt may count, from above: UTF-8 bytes / 3 plus 8 per message (`fixed`: a part
 * measured beforehand, src/ai/prompt-sizes.ts). Tokenisers give
 * about 4 characters per token for English and at least a byte per token in the worst case; a
 * third of the bytes covers text, code and most scripts, so a prompt rarely costs more than it reserved.
 */
export function promptTokenBound(texts: readonly string[], fixed: PromptPart = { bytes: 0, texts: 0 }): number {
  let bytes = fixed.bytes;
  for (const text of texts) bytes += Buffer.byteLength(text, 'utf8');
  return Math.ceil(bytes / 3) + 8 * (texts.length + fixed.texts);
}

/** Parts counted together: their bytes and their texts added up. */
export function sumParts(...parts: readonly PromptPart[]): PromptPart {
  return parts.reduce((sum, part) => ({ bytes: sum.bytes + part.bytes, texts: sum.texts + part.texts }), { bytes: 0, texts: 0 });
}

import { randomUUID } from 'node:crypto';
import type { TierLimits } from '../../config';
import { DEFAULT_TIER_LIMITS } from '../../config/tiers';
import { createLogger } from '../../src/lib/logger';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { BudgetDoor, BudgetExceededError, NO_BUDGET, type CallEstimate } from '../../src/budget/budget-door';
import { testRedisTarget } from '../support/database';
import { deleteKeysEverywhere, keysEverywhere } from '../support/redis';

/**
 * The budget door against a real Redis: reservations across both windows, all or none; settling;
 * the reaper's view of orphans; and the promise that spent never passes a limit under a burst.
 * The user's plan and recorded spend are plain values here (the HTTP tests read them from PostgreSQL).
 */
describe('BudgetDoor', () => {
  let redis: RedisClient;
  let prefix: string;
  let limits: TierLimits;
  let version: number;
  let recorded: { tokens: number; requests: number; costUsd: number };
  let door: BudgetDoor;
  const userId = randomUUID();
  const estimate = (tokens: number, maxTokens = 0): CallEstimate => ({ inputTokens: tokens, maxTokens, costUsd: 0, requests: 1 });

  const makeDoor = (ttlMs?: number) =>
    new BudgetDoor({
      redis,
      keyPrefix: prefix,
      limits: { forUser: async () => ({ tier: 'free', limits, version }) },
      usage: { spentSince: async (_user, starts) => starts.map(() => ({ ...recorded })) },
      logger: createLogger({ level: 'silent' }),
      reservationTtlMs: ttlMs,
    });

  beforeEach(async () => {
    redis = createRedis(testRedisTarget('cache'), 'command');
    await redisReady(redis);
    prefix = `budget-test-${randomUUID().slice(0, 8)}`;
    limits = { ...DEFAULT_TIER_LIMITS.free, tokensPerHour: 1_000 };
    version = 1;
    recorded = { tokens: 0, requests: 0, costUsd: 0 };
    door = makeDoor();
  });

  afterEach(async () => {
    await deleteKeysEverywhere(redis, `${prefix}:*`);
    redis.disconnect();
  });

  test("a user without budget limits costs no reservation, and their job's calls no plan read", async () => {
    limits = { ...DEFAULT_TIER_LIMITS.free };
    const ticket = { userId, reservationId: await door.admit(userId, estimate(10_000_000)) };
    expect(ticket.reservationId).toBe(NO_BUDGET);
    // Its job's calls are not budgeted, even once limits apply: those start at the user's next request.
    limits = { ...limits, tokensPerHour: 1 };
    expect(await door.forCall(ticket, () => estimate(10_000_000))).toBeNull();
    expect(await door.forCall(ticket, () => estimate(10_000_000))).toBeNull();
    await door.releaseUnused(ticket);
    expect(await keysEverywhere(redis, `${prefix}:*`)).toEqual([]);
  });

  test('reserves until the limit is reached exactly, then refuses with the numbers; settling frees what was not used', async () => {
    const first = await door.forCall({ userId }, () => estimate(400, 200));
    const second = await door.forCall({ userId }, () => estimate(300, 100));
    expect(first && second).toBeTruthy();
    expect((await door.reserved(userId)).hour.tokens).toBe(1_000);

    const refused = await door.forCall({ userId }, () => estimate(1)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BudgetExceededError);
    expect((refused as BudgetExceededError).status).toBe(429);
    expect((refused as BudgetExceededError).details).toEqual(
      expect.objectContaining({ window: 'hour', dimension: 'tokens', limit: 1_000, used: 0, reserved: 1_000 }),
    );

    await door.settle(first!, { inputTokens: 350, outputTokens: 50, costUsd: 0, requests: 1 });
    await door.settle(first!, { inputTokens: 350, outputTokens: 50, costUsd: 0, requests: 1 });
    expect((await door.reserved(userId)).hour.tokens).toBe(400);
    // 400 used + 400 reserved: 200 fit, 201 do not.
    await expect(door.forCall({ userId }, () => estimate(201))).rejects.toBeInstanceOf(BudgetExceededError);
    expect(await door.forCall({ userId }, () => estimate(200))).toBeTruthy();
  });

  test('a window starts from recorded usage, and again when the plan changes', async () => {
    recorded = { tokens: 900, requests: 3, costUsd: 0 };
    await expect(door.admit(userId, estimate(101))).rejects.toBeInstanceOf(BudgetExceededError);
    expect(await door.admit(userId, estimate(100))).toEqual(expect.any(String));

    // An operator raised the limit; the recorded usage is read again under the new plan.
    limits = { ...limits, tokensPerHour: 5_000 };
    version = 2;
    recorded = { tokens: 1_000, requests: 4, costUsd: 0 };
    expect(await door.admit(userId, estimate(3_900))).toEqual(expect.any(String));
    await expect(door.admit(userId, estimate(1))).rejects.toBeInstanceOf(BudgetExceededError);
  });

  test('all windows or none: a refusal by the month leaves the hour untouched', async () => {
    limits = { ...limits, tokensPerHour: 10_000, requestsPerMonth: 2 };
    await door.admit(userId, estimate(10));
    await door.admit(userId, estimate(10));
    const refused = await door.admit(userId, estimate(10)).catch((error: unknown) => error);
    expect((refused as BudgetExceededError).details).toEqual(expect.objectContaining({ window: 'month', dimension: 'requests', limit: 2 }));
    expect((await door.reserved(userId)).hour).toEqual({ tokens: 20, requests: 2, microUsd: 0 });
  });

  test('cost is counted in micro-dollars and refused past costUsdPerMonth', async () => {
    limits = { ...limits, tokensPerHour: null, costUsdPerMonth: 0.01 };
    await door.admit(userId, { inputTokens: 1, maxTokens: 1, costUsd: 0.006, requests: 1 });
    const refused = await door
      .admit(userId, { inputTokens: 1, maxTokens: 1, costUsd: 0.005, requests: 1 })
      .catch((error: unknown) => error);
    expect((refused as BudgetExceededError).details).toEqual(
      expect.objectContaining({ window: 'month', dimension: 'cost', limit: 0.01, reserved: 0.006 }),
    );
  });

  test("a run's first call takes over its request's reservation; later calls reserve their own", async () => {
    const ticket = { userId, reservationId: await door.admit(userId, estimate(500)) };
    const taken = await door.forCall(ticket, () => estimate(300));
    expect(taken?.id).toBe(ticket.reservationId);
    expect((await door.reserved(userId)).hour.tokens).toBe(500);
    const next = await door.forCall(ticket, () => estimate(300));
    expect(next?.id).not.toBe(ticket.reservationId);
    expect((await door.reserved(userId)).hour.tokens).toBe(800);
    // A taken reservation is not released by the run's end: its call settles it.
    await door.releaseUnused(ticket);
    expect((await door.reserved(userId)).hour.tokens).toBe(800);
  });

  test('a prompt larger than the request reserved is reserved again at its size', async () => {
    const ticket = { userId, reservationId: await door.admit(userId, estimate(100)) };
    const taken = await door.forCall(ticket, () => estimate(700));
    expect(taken?.id).not.toBe(ticket.reservationId);
    expect((await door.reserved(userId)).hour.tokens).toBe(700);
  });

  describe('a first call whose tools grew after its request', () => {
    // 100 output tokens per call, no prices: a prompt of `b` bytes in `n` texts counts ceil(b / 3) + 8n tokens.
    const promptDoor = () =>
      new BudgetDoor({
        redis,
        keyPrefix: prefix,
        limits: { forUser: async () => ({ tier: 'free', limits, version }) },
        usage: { spentSince: async (_user, starts) => starts.map(() => ({ ...recorded })) },
        logger: createLogger({ level: 'silent' }),
        calls: { maxTokens: 100, pricing: {}, defaultModel: 'm' },
      });

    test('a lazy fixed part is read only for a user the budget applies to', async () => {
      door = promptDoor();
      let reads = 0;
      const part = async () => {
        reads += 1;
        return { bytes: 300, texts: 2 };
      };
      limits = { ...DEFAULT_TIER_LIMITS.free };
      expect(await door.admitPrompt(userId, ['hello'], undefined, part)).toBe(NO_BUDGET);
      expect(reads).toBe(0);
      limits = { ...limits, tokensPerHour: 1_000 };
      expect(await door.admitPrompt(userId, ['hello'], undefined, part)).toEqual(expect.any(String));
      expect(reads).toBe(1);
      // 'hello' and the part: ceil(305 / 3) + 8 * 3 prompt tokens, and the 100 output tokens.
      expect((await door.reserved(userId)).hour.tokens).toBe(102 + 24 + 100);
    });

    test('widens the request’s reservation when the budget has room for both, and the first call takes the wider one over', async () => {
      door = promptDoor();
      const ticket = { userId, reservationId: await door.admitPrompt(userId, ['x'.repeat(300)], undefined, { bytes: 0, texts: 0 }) };
      const admitted = ticket.reservationId;
      expect((await door.reserved(userId)).hour.tokens).toBe(100 + 8 + 100);
      expect(await door.widen(ticket, { bytes: 90, texts: 1 })).toBe(true);
      expect(ticket.reservationId).not.toBe(admitted);
      // The request's reservation is given back; the new one counts the extra part on its own.
      expect((await door.reserved(userId)).hour.tokens).toBe(100 + 8 + 30 + 8 + 100);
      const taken = await door.forCall(ticket, () => ({ inputTokens: 130 + 16, maxTokens: 100, costUsd: 0, requests: 1 }));
      expect(taken?.id).toBe(ticket.reservationId);
    });

    test('refuses to widen when the budget has no room for both: the request’s reservation is kept as it was', async () => {
      door = promptDoor();
      limits = { ...limits, tokensPerHour: 208 + 200 };
      const ticket = { userId, reservationId: await door.admitPrompt(userId, ['x'.repeat(300)], undefined, { bytes: 0, texts: 0 }) };
      const admitted = ticket.reservationId;
      expect(await door.widen(ticket, { bytes: 90, texts: 1 })).toBe(false);
      expect(ticket.reservationId).toBe(admitted);
      expect((await door.reserved(userId)).hour.tokens).toBe(208);
      // The call that sends no more than was reserved takes it over.
      expect((await door.forCall(ticket, () => ({ inputTokens: 108, maxTokens: 100, costUsd: 0, requests: 1 })))?.id).toBe(admitted);
    });

    test('nothing to widen: no limits, no reservation, or one a call took already', async () => {
      door = promptDoor();
      expect(await door.widen({ userId, reservationId: NO_BUDGET }, { bytes: 900, texts: 3 })).toBe(true);
      expect(await door.widen({ userId }, { bytes: 900, texts: 3 })).toBe(true);
      const ticket = { userId, reservationId: await door.admitPrompt(userId, ['x'], undefined, { bytes: 0, texts: 0 }) };
      await door.forCall(ticket, () => ({ inputTokens: 9, maxTokens: 100, costUsd: 0, requests: 1 }));
      const before = await door.reserved(userId);
      expect(await door.widen(ticket, { bytes: 900, texts: 3 })).toBe(true);
      expect(await door.reserved(userId)).toEqual(before);
    });
  });

  test('a reservation no call took is released whole by its run', async () => {
    const ticket = { userId, reservationId: await door.admit(userId, estimate(600)) };
    await door.releaseUnused(ticket);
    expect((await door.reserved(userId)).hour.tokens).toBe(0);
  });

  test('the reaper releases an expired queued reservation and charges an expired started call in full', async () => {
    door = makeDoor(1);
    const queued = await door.admit(userId, estimate(200));
    const running = await door.forCall({ userId }, () => estimate(300));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await door.settleExpired()).toBe(2);
    expect((await door.reserved(userId)).hour.tokens).toBe(0);
    // Used: the started call's 300; so 700 more fit, 701 do not.
    await expect(door.admit(userId, estimate(701))).rejects.toBeInstanceOf(BudgetExceededError);
    // The call that outlived its deadline ends: only what exceeds the reaper's charge is added.
    await door.settle(running!, { inputTokens: 300, outputTokens: 50, costUsd: 0, requests: 1 });
    await expect(door.admit(userId, estimate(651))).rejects.toBeInstanceOf(BudgetExceededError);
    expect(await door.admit(userId, estimate(650))).toEqual(expect.any(String));
    // The queued one's job starts late: its reservation is gone, so it reserves anew.
    const late = await door.forCall({ userId, reservationId: queued }, () => estimate(10)).catch((error: unknown) => error);
    expect(late).toBeInstanceOf(BudgetExceededError);
  });

  test('50 concurrent reservations on two doors never pass the limit', async () => {
    limits = { ...limits, tokensPerHour: 1_000 };
    const other = makeDoor();
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, index) => (index % 2 ? door : other).admit(userId, estimate(60, 40))),
    );
    const taken = results.filter((result) => result.status === 'fulfilled').length;
    expect(taken).toBe(10);
    expect(results.filter((result) => result.status === 'rejected').every((result) => result.reason instanceof BudgetExceededError)).toBe(
      true,
    );
    expect((await door.reserved(userId)).hour.tokens).toBe(1_000);
  });
});

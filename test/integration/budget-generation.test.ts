import { eq, sql } from 'drizzle-orm';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { redisKeys } from '../../src/lib/redis-keys';
import { generations, llmUsage } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';
import { testRedisTarget } from '../support/database';

/** Tokens one hour allows: about ten generations' reservations (the first call's prompt bound + max_tokens). */
const TOKENS_PER_HOUR = 14_000;

/**
 * Generations under a budget: reserved before anything is written, settled with what the model
 * used, and spent never past the limit, also when 50 requests arrive at once.
 */
describe('budgeted generations', () => {
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  let redis: RedisClient;

  beforeAll(async () => {
    redis = createRedis(testRedisTarget('cache'), 'command');
    await redisReady(redis);
    t = await startTestApp({
      env: {
        LLM_MAX_TOKENS: '100',
        // All 50 streams may be open at once: the only refusal under test is the budget's.
        MAX_STREAMS_PER_USER: '60',
        TIER_LIMITS: JSON.stringify({
          free: { generationsPerMinute: 1_000, generationsPerHour: 1_000, concurrentGenerations: 100, tokensPerHour: TOKENS_PER_HOUR },
        }),
      },
      // Far more text than max_tokens allows: the model is cut at what was reserved, and the
      // generation ends with `llm_output_truncated`.
      responder: () => ({ text: 'word '.repeat(2_000) }),
    });
    user = await registerUser(t.api, 'Budgeted');
    canvasId = await createCanvas(t.api, user);
  });

  afterAll(async () => {
    redis.disconnect();
    await t.stop();
  });

  const generate = (prompt: string) =>
    readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt },
      until: (message) => message.event === 'complete' || message.event === 'error',
      timeoutMs: 30_000,
    });

  const spent = async () => {
    const [row] = await t.app.repos.db
      .select({ tokens: sql<number>`coalesce(sum(${llmUsage.inputTokens} + ${llmUsage.outputTokens}), 0)::int` })
      .from(llmUsage)
      .where(eq(llmUsage.userId, user.id));
    return row.tokens;
  };

  const budget = async () => (await request('GET', `${t.api}/usage/budget`, { token: user.accessToken })).body;

  test('the model is sent the reserved max_tokens, and the budget shows the call settled', async () => {
    t.llm.requests.length = 0;
    const sse = await generate('A short note');
    expect(sse.status).toBe(200);
    expect(sse.messages.at(-1)).toMatchObject({ event: 'error', data: { code: 'llm_output_truncated' } });
    expect(t.llm.requests.at(-1)?.body).toEqual(expect.objectContaining({ max_tokens: 100 }));
    const hour = (await budget()).windows.find((window: { window: string }) => window.window === 'hour');
    expect(hour).toEqual(expect.objectContaining({ limitTokens: TOKENS_PER_HOUR, reservedTokens: 0 }));
    expect(hour.usedTokens).toBe(await spent());
    expect(hour.usedTokens).toBeGreaterThan(0);
  });

  test('a user without budget limits: the model is sent no max_tokens, and nothing is reserved', async () => {
    const free = await registerUser(t.api, 'Unbudgeted');
    await t.app.repos.users.changePlan(free.id, { limitOverrides: { tokensPerHour: null } }, { actorId: free.id });
    const canvas = await createCanvas(t.api, free);
    const sse = await readSse(`${t.api}/canvases/${canvas}/ai/generate-stream`, {
      method: 'POST',
      token: free.accessToken,
      body: { prompt: 'A short note' },
      until: (message) => message.event === 'complete' || message.event === 'error',
    });
    expect(sse.messages.at(-1)?.event).toBe('complete');
    expect(t.llm.requests.at(-1)?.body).not.toHaveProperty('max_tokens');
  });

  test('50 concurrent requests: spent never passes the limit, the refused ones are 429 with the numbers and write nothing', async () => {
    const before = await t.app.repos.db.select({ id: generations.id }).from(generations).where(eq(generations.userId, user.id));
    const results = await Promise.all(Array.from({ length: 50 }, (_, index) => generate(`Burst ${index}`)));
    const refused = results.filter((result) => result.status === 429);
    const admitted = results.filter((result) => result.status === 200);
    expect(admitted.length + refused.length).toBe(50);
    expect(admitted.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const result of refused) {
      expect(result.body.error).toEqual(
        expect.objectContaining({
          code: 'budget_exceeded',
          details: expect.objectContaining({ window: 'hour', dimension: 'tokens', limit: TOKENS_PER_HOUR, resetsAt: expect.any(String) }),
        }),
      );
      expect(Number(result.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // Each admitted generation ended cut at its max_tokens: its request reserved its first call whole,
    // so none is refused by the budget once admitted.
    for (const result of admitted) {
      const last = result.messages.at(-1);
      expect(last?.event).toBe('error');
      expect(last?.data.code).toBe('llm_output_truncated');
    }
    const after = await t.app.repos.db.select({ id: generations.id }).from(generations).where(eq(generations.userId, user.id));
    expect(after.length - before.length).toBe(admitted.length);

    expect(await spent()).toBeLessThanOrEqual(TOKENS_PER_HOUR);
    const hourOf = async () => (await budget()).windows.find((window: { window: string }) => window.window === 'hour');
    await eventually(hourOf, (hour) => hour.reservedTokens === 0);
    // One after another until the hour is spent: the last is refused, and spent is still within the limit.
    let last = await generate('One more');
    for (let i = 0; i < 60 && last.status === 200; i += 1) last = await generate(`One more ${i}`);
    expect(last.status).toBe(429);
    expect(await spent()).toBeLessThanOrEqual(TOKENS_PER_HOUR);
    expect(last.body.error.details.used).toBe(await spent());
    // The rate limit, taken beside the budget, counted the generations that started and no other.
    const counted = Number(await redis.get(redisKeys(t.keyPrefix).generationHourWindow(user.id)));
    const started = await t.app.repos.db.select({ id: generations.id }).from(generations).where(eq(generations.userId, user.id));
    expect(counted).toBe(started.length);
    const inFlight = await redis.zrange(redisKeys(t.keyPrefix).generationSlots(user.id), '0', '-1');
    expect(inFlight.every((id) => started.some((row) => row.id === id))).toBe(true);
  }, 60_000);
});

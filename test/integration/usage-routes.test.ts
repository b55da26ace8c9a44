import { AdminDirectory } from '../../src/auth/admins';
import { llmUsage } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/** `GET /usage`: tokens and cost by UTC day, provider and model; own usage, or everyone's for admins. */
describe('GET /usage', () => {
  let t: TestApp;
  let ada: TestUser;
  let bea: TestUser;
  let admin: TestUser;

  const row = (user: TestUser, at: string, model: string, inputTokens: number, outputTokens: number, costUsd: number) => ({
    userId: user.id,
    purpose: 'chat',
    provider: 'openai',
    model,
    inputTokens,
    outputTokens,
    costUsd,
    createdAt: new Date(at),
  });

  beforeAll(async () => {
    t = await startTestApp();
    [ada, bea, admin] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bea'), registerUser(t.api, 'Root')]);
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
    await t.app.repos.db.insert(llmUsage).values([
      row(ada, '2026-01-01T00:00:00Z', 'gpt-4o', 100, 10, 0.5),
      row(ada, '2026-01-01T23:59:59.999Z', 'gpt-4o', 50, 5, 0.25),
      row(ada, '2026-01-01T12:00:00Z', 'gpt-4o-mini', 7, 3, 0.001),
      row(ada, '2026-01-02T23:59:59Z', 'gpt-4o', 1, 2, 0.01),
      // Outside the range asked below, on both sides.
      row(ada, '2025-12-31T23:59:59Z', 'gpt-4o', 1_000, 1_000, 9),
      row(ada, '2026-01-03T00:00:00Z', 'gpt-4o', 1_000, 1_000, 9),
      row(bea, '2026-01-01T08:00:00Z', 'gpt-4o', 20, 2, 0.1),
    ]);
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
  });

  const get = (user: TestUser | null, query: string) => request('GET', `${t.api}/usage${query}`, { token: user?.accessToken });

  test("a user gets their own calls summed by UTC day and model, days inclusive, nobody else's", async () => {
    const res = await get(ada, '?from=2026-01-01&to=2026-01-02');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      days: [
        { day: '2026-01-01', provider: 'openai', model: 'gpt-4o', inputTokens: 150, outputTokens: 15, costUsd: expect.closeTo(0.75, 9) },
        { day: '2026-01-01', provider: 'openai', model: 'gpt-4o-mini', inputTokens: 7, outputTokens: 3, costUsd: 0.001 },
        { day: '2026-01-02', provider: 'openai', model: 'gpt-4o', inputTokens: 1, outputTokens: 2, costUsd: 0.01 },
      ],
    });
    const other = await get(bea, '?from=2026-01-01&to=2026-01-02');
    expect(other.body).toEqual({
      days: [{ day: '2026-01-01', provider: 'openai', model: 'gpt-4o', inputTokens: 20, outputTokens: 2, costUsd: 0.1 }],
    });
    // One day.
    expect((await get(ada, '?from=2026-01-02&to=2026-01-02')).body.days).toHaveLength(1);
  });

  test('with no range it answers the last 30 days, today included', async () => {
    await t.app.repos.usage.record({
      userId: bea.id,
      purpose: 'chat',
      provider: 'demo',
      model: 'demo',
      inputTokens: 3,
      outputTokens: 4,
      costUsd: 0,
    });
    const res = await get(bea, '');
    expect(res.status).toBe(200);
    expect(res.body.days).toEqual([
      { day: new Date().toISOString().slice(0, 10), provider: 'demo', model: 'demo', inputTokens: 3, outputTokens: 4, costUsd: 0 },
    ]);
  });

  test("an admin's all=true sums every user's calls; anyone else's all=true is 403", async () => {
    const all = await get(admin, '?from=2026-01-01&to=2026-01-01&all=true');
    expect(all.status).toBe(200);
    expect(all.body.days).toEqual([
      { day: '2026-01-01', provider: 'openai', model: 'gpt-4o', inputTokens: 170, outputTokens: 17, costUsd: expect.closeTo(0.85, 9) },
      { day: '2026-01-01', provider: 'openai', model: 'gpt-4o-mini', inputTokens: 7, outputTokens: 3, costUsd: 0.001 },
    ]);
    // Without all=true an admin sees their own (none).
    expect((await get(admin, '?from=2026-01-01&to=2026-01-01')).body).toEqual({ days: [] });
    const refused = await get(ada, '?from=2026-01-01&to=2026-01-01&all=true');
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
  });

  test.each([
    ['a malformed day', '?from=2026-1-1&to=2026-01-02'],
    ['a month that does not exist', '?from=2026-13-01&to=2026-12-31'],
    ['a day the calendar lacks', '?from=2026-02-30&to=2026-03-02'],
    ['a date-time instead of a day', '?from=2026-01-01T00:00:00Z&to=2026-01-02'],
    ['from after to', '?from=2026-01-03&to=2026-01-02'],
    ['a range over 367 days', '?from=2024-01-01&to=2026-01-01'],
    ['an unknown parameter', '?from=2026-01-01&user=someone'],
    ['all not a boolean', '?all=yes'],
    ['a repeated parameter', '?from=2026-01-01&from=2026-01-02'],
    ['a lone surrogate', '?from=%ED%A0%80'],
  ])('%s is 400 in the error shape', async (_name, query) => {
    const res = await get(ada, query);
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
  });

  test('without a token it is 401', async () => {
    expect((await get(null, '?from=2026-01-01&to=2026-01-02')).status).toBe(401);
  });
});

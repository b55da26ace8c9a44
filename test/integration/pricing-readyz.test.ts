import { startTestApp, type TestApp } from '../support/app';
import { request } from '../support/http';
import { eventually } from '../support/wait';

/**
 * A model the price catalog does not know, on a deployment whose free tier limits cost: its calls
 * would count $0 against the limit, so the operator is told at start (a log warning naming it) and
 * in `/readyz` (a warning, not a readiness failure).
 */
describe('an unpriced model under a cost limit', () => {
  let t: TestApp;
  const logs: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      logs: (line) => void logs.push(line),
      logLevel: 'warn',
      env: {
        TIER_LIMITS: JSON.stringify({ free: { costUsdPerMonth: 5 } }),
        LLM_PROVIDERS: JSON.stringify([
          { name: 'house', baseUrl: 'https://llm.example.com/v1', models: ['acme-private-7b', 'gpt-4o-mini'] },
        ]),
      },
    });
  }, 60_000);

  afterAll(() => t.stop(), 30_000);

  test('is named in a warning at start and in /readyz, which stays ready; a priced model is not', async () => {
    const warned = await eventually(
      async () => logs.map((line) => JSON.parse(line) as { level: number; msg: string; models?: string[] }).filter((entry) => entry.models),
      (entries) => entries.length > 0,
    );
    expect(warned[0]).toEqual(
      expect.objectContaining({ msg: expect.stringMatching(/costUsdPerMonth.*LLM_PRICING/), models: ['acme-private-7b'] }),
    );

    const ready = await request('GET', `${t.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ready');
    expect(ready.body.warnings).toEqual([
      { code: 'unpriced_models', message: expect.stringMatching(/LLM_PRICING/), models: ['acme-private-7b'] },
    ]);
  });
});

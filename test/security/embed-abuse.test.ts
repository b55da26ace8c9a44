import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * A chat widget's token is a credential in its URL and its budget is shared by every visitor:
 * the request log never shows the token, one visitor over their limit cannot spend the widget's
 * budget for everyone, and an origin pattern the check would never match is refused.
 */
describe('embeds', () => {
  let t: TestApp;
  let owner: TestUser;
  let flowId: string;
  const logs: string[] = [];

  beforeAll(async () => {
    // Client IPs from X-Forwarded-For (TRUST_PROXY), so one test machine can be several visitors.
    t = await startTestApp({
      responder: () => ({ text: 'Ahoy.' }),
      env: { EMBED_RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: 'loopback' },
      logs: (line) => logs.push(line),
      logLevel: 'info',
    });
    owner = await registerUser(t.api, 'Owner');
    const res = await request('POST', `${t.api}/flows`, {
      token: owner.accessToken,
      body: { type: 'chatflow', name: 'Helper', definition: { systemPrompt: 'You are a pirate helper.' } },
    });
    flowId = res.body.flow.id;
  }, 60_000);
  afterAll(() => t.stop());

  const embed = async (allowedOrigins = ['https://shop.example']) =>
    request('POST', `${t.api}/flows/${flowId}/embeds`, { token: owner.accessToken, body: { allowedOrigins } });
  const visit = (token: string, ip: string) =>
    request('POST', `${t.api}/embed/public/${token}/chat`, {
      body: { message: 'Hi' },
      headers: { 'x-forwarded-for': ip, origin: 'https://shop.example' },
    });

  test('the request log shows an embed path without its token', async () => {
    const { embedToken } = (await embed()).body;
    const res = await visit(embedToken, '192.0.2.10');
    expect(res.status).toBe(200);
    const requestLines = logs.filter((line) => line.includes('/embed/public/'));
    expect(requestLines.length).toBeGreaterThan(0);
    expect(requestLines.some((line) => line.includes('/embed/public/[redacted]/chat'))).toBe(true);
    expect(logs.filter((line) => line.includes(embedToken))).toEqual([]);
  });

  test("a visitor already over their limit does not spend a widget's budget for everyone", async () => {
    const elsewhere = (await embed()).body.embedToken as string;
    const widget = (await embed()).body.embedToken as string;
    // The visitor uses up their own allowance on another widget, then keeps hammering this one.
    for (let i = 0; i < 3; i += 1) expect((await visit(elsewhere, '203.0.113.50')).status).toBe(200);
    for (let i = 0; i < 5; i += 1) expect((await visit(widget, '203.0.113.50')).status).toBe(429);
    // Everyone else still gets the widget's whole budget.
    const others = [];
    for (const ip of ['203.0.113.51', '203.0.113.52', '203.0.113.53']) others.push((await visit(widget, ip)).status);
    expect(others).toEqual([200, 200, 200]);
  });

  test('a wildcard origin is refused with 400, not stored to never match', async () => {
    for (const origin of ['https://*.shop.example', '*', 'https://shop.example:*']) {
      const res = await embed([origin]);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(JSON.stringify(res.body.error)).toContain('wildcards are not supported');
    }
    expect((await embed(['https://shop.example'])).status).toBe(201);
  });
});

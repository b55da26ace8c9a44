import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * Chatflow embeds: `GET /embed.js` in a real Chromium (Debian's), on pages served by two other local
 * origins: the one the embed allows gets a chat box that streams the chatflow's answers; the one it
 * does not allow gets the box, but its message is refused (no CORS headers) and the box says so.
 */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WAIT_MS = 15_000;
const lastUser = (req: ChatRequest) => String([...req.messages].reverse().find((m) => m.role === 'user')?.content ?? '');

/** A tiny site on its own port (its own origin) whose page includes the widget with the token set later. */
async function hostSite(scriptUrl: string): Promise<{ server: Server; origin: string; page: { embedToken: string } }> {
  const page = { embedToken: '' };
  const server = createServer((req, res) => {
    if (req.url !== '/') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>A shop</h1><script src="${scriptUrl}" data-embed-token="${page.embedToken}" data-title="Ask the shop"></script></body></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, page };
}

describe('embed widget (embed.js) in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let owner: TestUser;
  let flowId: string;
  const sites: Server[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM_PATH))
      throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium package or set CHROMIUM_PATH.`);
    t = await startTestApp({ llmDelayMs: 10, responder: (req) => ({ text: `The shop says: we have ${lastUser(req)} in stock.` }) });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
    owner = await registerUser(t.api, 'Shopkeeper');
    const flow = await request('POST', `${t.api}/flows`, {
      token: owner.accessToken,
      body: { type: 'chatflow', name: 'Shop help', definition: { systemPrompt: 'You help shoppers.' } },
    });
    flowId = flow.body.flow.id;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    for (const server of sites) await new Promise((resolve) => server.close(resolve));
    await t?.stop();
  });

  /** Serves a page on a new origin; the embed allows it when `allowed`, else only some other origin. */
  async function pageOnNewOrigin(allowed: boolean): Promise<{ page: Page; errors: string[]; embedToken: string }> {
    // The origin is known once the site listens; the embed is made for it (or for another) after.
    const site = await hostSite(`${t.url}/embed.js`);
    sites.push(site.server);
    const embed = await request('POST', `${t.api}/flows/${flowId}/embeds`, {
      token: owner.accessToken,
      body: { allowedOrigins: [allowed ? site.origin : 'http://127.0.0.1:1'] },
    });
    expect(embed.status).toBe(201);
    site.page.embedToken = embed.body.embedToken;
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(WAIT_MS);
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(site.origin);
    return { page, errors, embedToken: site.page.embedToken };
  }

  test('on a page of an allowed origin the chat box streams the answer, and the conversation goes on in one session', async () => {
    const { page, errors } = await pageOnNewOrigin(true);
    const input = page.locator('[data-switchboard-embed] [data-role="input"]');
    const answers = page.locator('[data-switchboard-embed] [data-message-role="assistant"]');

    await input.fill('red boots');
    await page.locator('[data-switchboard-embed] [data-role="send"]').click();
    await answers.first().filter({ hasText: 'The shop says: we have red boots in stock.' }).waitFor();
    await page.locator('[data-switchboard-embed] [data-role="send"]:not([disabled])').waitFor();
    await input.fill('blue hats');
    await input.press('Enter');
    await answers.nth(1).filter({ hasText: 'The shop says: we have blue hats in stock.' }).waitFor();

    expect(await page.locator('[data-switchboard-embed] [data-role="error"]').isHidden()).toBe(true);
    expect(await page.locator('[data-switchboard-embed] .head').textContent()).toBe('Ask the shop');
    expect(errors).toEqual([]);
    // One session of this embed holds both turns; the owner sees it.
    const sessions = await request('GET', `${t.api}/chat/sessions`, { token: owner.accessToken });
    const embedSessions = sessions.body.sessions.filter((s: { embedId: string | null }) => s.embedId);
    expect(embedSessions).toHaveLength(1);
    const history = await request('GET', `${t.api}/chat/sessions/${embedSessions[0].id}/history`, { token: owner.accessToken });
    expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'red boots',
      'The shop says: we have red boots in stock.',
      'blue hats',
      'The shop says: we have blue hats in stock.',
    ]);
  });

  test('on a page of an origin the embed does not allow, the message is refused: no answer, an error in the box, no model call', async () => {
    const { page } = await pageOnNewOrigin(false);
    const modelCallsBefore = t.llm.chatRequests().length;
    // A JSON POST is preflighted: the preflight is refused (403, no CORS headers), so the POST fails in the browser.
    const refused = page.waitForEvent('requestfailed', (failed) => failed.url().includes('/embed/public/'));

    await page.locator('[data-switchboard-embed] [data-role="input"]').fill('green socks');
    await page.locator('[data-switchboard-embed] [data-role="send"]').click();
    const failed = await refused;
    const error = page.locator('[data-switchboard-embed] [data-role="error"]');
    await error.waitFor({ state: 'visible' });

    expect(failed.method()).toBe('POST');
    expect(failed.failure()?.errorText).toMatch(/net::ERR_FAILED|CORS/i);
    expect(await error.textContent()).toBe('This chat cannot be used on this site');
    expect(await page.locator('[data-switchboard-embed] [data-message-role="assistant"]').count()).toBe(0);
    expect(t.llm.chatRequests().length).toBe(modelCallsBefore);
  });

  test('embed.js is served to other origins (CORP cross-origin) as JavaScript', async () => {
    const res = await fetch(`${t.url}/embed.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/javascript/);
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(await res.text()).toContain('data-embed-token');
  });
});

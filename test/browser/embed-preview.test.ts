import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { launchChromium, WAIT_MS } from '../support/browser';
import { registerUser, request } from '../support/http';

const lastUser = (req: ChatRequest) => String([...req.messages].reverse().find((m) => m.role === 'user')?.content ?? '');

/** A page on its own local origin (an attacker's site), serving `html`. */
async function site(html: (origin: string) => string): Promise<{ server: Server; origin: string }> {
  let origin = '';
  const server = createServer((req, res) => {
    if (req.url !== '/') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html(origin));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, origin };
}

/**
 * `/console/embed-preview.html` in Chromium (Debian's): it runs the chat widget only inside a frame
 * of the console's origin that hands it the token by postMessage. Opened on its own with a token in
 * its address (a phishing link), opened by another site that posts it a token, or framed by another
 * site, it runs nothing: no /embed.js, no call to the public chat.
 */
describe('embed preview: only the console runs it', () => {
  let t: TestApp;
  let browser: Browser;
  let token: string;
  const servers: Server[] = [];

  beforeAll(async () => {
    t = await startTestApp({ llmDelayMs: 10, responder: (req) => ({ text: `Preview answer to: ${lastUser(req)}` }) });
    browser = await launchChromium();
    const owner = await registerUser(t.api, 'Previewer');
    const flow = await request('POST', `${t.api}/flows`, {
      token: owner.accessToken,
      body: { type: 'chatflow', name: 'Help', definition: { systemPrompt: 'You help.' } },
    });
    // The console's own origin is allowed, as the console's "also allow this console" does: the
    // attack needs no more than that.
    const embed = await request('POST', `${t.api}/flows/${flow.body.flow.id}/embeds`, {
      token: owner.accessToken,
      body: { allowedOrigins: [new URL(t.url).origin] },
    });
    expect(embed.status).toBe(201);
    token = embed.body.embedToken;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
    await t?.stop();
  });

  /** A fresh page recording every request it (or any of its frames and popups) makes. */
  async function freshPage(): Promise<{ page: Page; requested: string[]; errors: string[] }> {
    const context = await browser.newContext();
    const requested: string[] = [];
    const errors: string[] = [];
    context.on('request', (req) => requested.push(new URL(req.url()).pathname));
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (error) => errors.push(error.message));
    return { page, requested, errors };
  }
  const ranTheWidget = (requested: string[]) => requested.some((path) => path === '/embed.js' || path.includes('/embed/public/'));

  test('opened on its own with a token in its address, it says it only works in the console and runs nothing', async () => {
    const { page, requested, errors } = await freshPage();
    const fragment = new URLSearchParams({ token, title: 'Your session expired: type your password' });
    // Loaded (a script the page adds while it loads holds its load event): nothing of the widget ran.
    await page.goto(`${t.url}/console/embed-preview.html#${fragment}`, { waitUntil: 'load' });
    expect(ranTheWidget(requested)).toBe(false);
    expect(await page.locator('[data-switchboard-embed]').count()).toBe(0);
    await page.locator('[data-role="preview-note"]').filter({ hasText: 'only shows a preview inside' }).waitFor();
    // Posting the token to itself from the page changes nothing (it is nobody's frame).
    await page.evaluate((value) => window.postMessage({ type: 'switchboard:embed-preview', token: value, title: 'x' }, '*'), token);
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 0)));
    expect(await page.locator('[data-switchboard-embed]').count()).toBe(0);
    expect(ranTheWidget(requested)).toBe(false);
    expect(errors).toEqual([]);
  });

  test('another site that opens it in a window and posts it the token gets nothing run', async () => {
    const attacker = await site(
      () => `<!doctype html><html><body><button id="go">Continue</button><script>
document.getElementById('go').onclick = function () {
  var popup = window.open(${JSON.stringify(`${t.url}/console/embed-preview.html`)}, 'preview');
  var tries = 0;
  var timer = setInterval(function () {
    popup.postMessage({ type: 'switchboard:embed-preview', token: ${JSON.stringify(token)}, title: 'Sign in again' }, '*');
    if (++tries === 20) { clearInterval(timer); document.title = 'posted'; }
  }, 50);
};
</script></body></html>`,
    );
    servers.push(attacker.server);
    const { page, requested } = await freshPage();
    await page.goto(attacker.origin);
    const popupOpened = page.waitForEvent('popup');
    await page.click('#go');
    const popup = await popupOpened;
    await page.waitForFunction(() => document.title === 'posted');
    await popup.waitForLoadState('load');
    expect(ranTheWidget(requested)).toBe(false);
    expect(await popup.locator('[data-switchboard-embed]').count()).toBe(0);
    await popup.locator('[data-role="preview-note"]').filter({ hasText: 'only shows a preview inside' }).waitFor();
  });

  test('another site that frames it and posts it the token gets nothing run (the frame is refused)', async () => {
    const attacker = await site(
      () => `<!doctype html><html><body><iframe id="f" src=${JSON.stringify(`${t.url}/console/embed-preview.html`)}></iframe><script>
var frame = document.getElementById('f');
var tries = 0;
var timer = setInterval(function () {
  frame.contentWindow.postMessage({ type: 'switchboard:embed-preview', token: ${JSON.stringify(token)} }, '*');
  if (++tries === 20) { clearInterval(timer); document.title = 'posted'; }
}, 50);
</script></body></html>`,
    );
    servers.push(attacker.server);
    const { page, requested } = await freshPage();
    await page.goto(attacker.origin);
    await page.waitForFunction(() => document.title === 'posted');
    expect(ranTheWidget(requested)).toBe(false);
    expect(
      page
        .frames()
        .some((frame) => frame.url().includes('embed-preview') && frame.url() !== 'about:blank' && frame.childFrames().length > 0),
    ).toBe(false);
  });

  test('framed by a console page, which hands the token over on the frame’s request, the widget runs and answers', async () => {
    const { page, requested } = await freshPage();
    await page.goto(`${t.url}/`);
    // What the console's Embeds section does: frame the page, answer its request with the token.
    await page.evaluate((value) => {
      const frame = document.createElement('iframe');
      frame.setAttribute('data-testid', 'preview-under-test');
      window.addEventListener('message', (event) => {
        if (event.source !== frame.contentWindow || event.origin !== location.origin) return;
        if ((event.data as { type?: string })?.type !== 'switchboard:embed-preview-ready') return;
        frame.contentWindow!.postMessage({ type: 'switchboard:embed-preview', token: value, title: 'Console preview' }, location.origin);
      });
      frame.src = '/console/embed-preview.html?n=1';
      document.body.appendChild(frame);
    }, token);
    const frame = page.frameLocator('[data-testid="preview-under-test"]');
    await frame.locator('[data-switchboard-embed] [data-role="input"]').fill('green socks');
    await frame.locator('[data-switchboard-embed] [data-role="input"]').press('Enter');
    await frame
      .locator('[data-switchboard-embed] [data-message-role="assistant"]')
      .filter({ hasText: 'Preview answer to: green socks' })
      .waitFor();
    expect(await frame.locator('[data-switchboard-embed] .head').textContent()).toBe('Console preview');
    expect(requested.filter((path) => path === '/embed.js')).toHaveLength(1);
    // The token travels only to the public chat it is for, never in the preview's address.
    expect(requested.filter((path) => path.includes(token)).every((path) => path.startsWith('/api/v1/embed/public/'))).toBe(true);
    expect(page.frames().every((f) => !f.url().includes(token))).toBe(true);
  });
});

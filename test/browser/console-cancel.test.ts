import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * The console's Stop button in a real Chromium (Debian's): a generation whose model
 * streams slowly is stopped from the page; the stream ends `cancelled`, the drafts go, nothing is
 * stored, and the button hides again.
 */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(process.cwd(), 'test-artifacts', 'screenshots');
const WAIT_MS = 15_000;
const byTestId = (id: string) => `[data-testid="${id}"]`;
const longTurn: ChatTurn = { toolCalls: Array.from({ length: 40 }, (_, i) => ({ name: 'create_text', args: { text: `paragraph ${i}` } })) };

describe('web console: the Stop button', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM_PATH))
      throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium package or set CHROMIUM_PATH.`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    // 200 ms between tool calls: the 40 calls take 8 s, so the click (after a full-page screenshot, on a
    // loaded CI machine) lands well inside the first turn; the cancel itself takes tens of ms.
    t = await startTestApp({ llmDelayMs: 200, responder: () => longTurn });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
    page = await (await browser.newContext({ viewport: { width: 1366, height: 900 } })).newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('response', (response) => {
      if (response.status() >= 400) pageErrors.push(`${response.status()} ${response.url()}`);
    });
    user = await registerUser(t.api, 'Stopper');
    await page.goto(t.url);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  test('Stop ends a streaming generation: `cancelled` in the log, drafts cleared, nothing stored, the button hides', async () => {
    await page.locator(byTestId('signin-email')).fill(user.email);
    await page.locator(byTestId('signin-password')).fill('correct horse battery');
    await page.locator(byTestId('signin-submit')).click();
    await page.locator(byTestId('create-canvas-title')).fill('Stoppable');
    await page.locator(byTestId('create-canvas-title')).press('Enter');
    await page.locator(`${byTestId('connection-status')}[data-state="live"]`).waitFor();
    const canvasId = /#\/canvases\/(.+)$/.exec(page.url())![1];

    const stop = page.locator(byTestId('stop-button'));
    expect(await stop.isHidden()).toBe(true);
    await page.locator(byTestId('prompt-input')).fill('Forty paragraphs about the launch');
    await page.locator(byTestId('generate-button')).click();
    // Running: the Stop button shows and blocks are streaming in as drafts.
    await stop.waitFor({ state: 'visible' });
    await page
      .locator(`${byTestId('generation-event')}[data-event="tool_output"]`)
      .first()
      .waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'cancel-01-streaming.png'), fullPage: true });

    await stop.click();
    await page.locator(`${byTestId('generation-event')}[data-event="cancelled"]`).waitFor();
    await stop.waitFor({ state: 'hidden' });
    expect(await page.locator(byTestId('generation-state')).textContent()).toBe('Stopped: nothing was saved.');
    expect(await page.locator(`${byTestId('draft-list')} > *`).count()).toBe(0);
    expect(await page.locator(`${byTestId('block-list')} > ${byTestId('block')}`).count()).toBe(0);
    const streamed = await page.locator(`${byTestId('generation-event')}[data-event="tool_output"]`).count();
    expect(streamed).toBeGreaterThan(0);
    expect(streamed).toBeLessThan(40);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'cancel-02-stopped.png'), fullPage: true });

    const blocks = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken });
    expect(blocks.body.blocks).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 60_000);
});

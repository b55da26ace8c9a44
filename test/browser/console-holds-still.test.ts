import type { Browser, Page } from 'playwright-core';
import type { ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openCanvas, openPage, screenshot, signIn, WAIT_MS } from '../support/browser';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { startTcpProxy } from '../support/tcp-proxy';

/**
 * The console holds still in Chromium at a laptop's 1280 px: a generation's Stop button does not
 * widen the side panel or scroll the page sideways; offline is a banner with Generate disabled; the
 * keys page renders its Markdown code spans; block controls are visible; the flows page opens
 * compact and a flow's execution sits below its edit form.
 */
const longTurn: ChatTurn = { toolCalls: Array.from({ length: 30 }, (_, i) => ({ name: 'create_text', args: { text: `paragraph ${i}` } })) };

describe('web console: holds still', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  const problems: string[] = [];

  beforeAll(async () => {
    // Thirty slow blocks, then a plain answer: a run that is not stopped still ends.
    t = await startTestApp({
      llmDelayMs: 150,
      responder: (request) => (request.messages.some((m) => m.role === 'tool') ? { text: 'Done.' } : longTurn),
    });
    user = await registerUser(t.api, 'Still');
    browser = await launchChromium();
    page = await openPage(browser, t.url, 'Still', problems);
    await page.setViewportSize({ width: 1280, height: 800 });
    await signIn(page, user);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  const layout = () =>
    page.evaluate(() => ({
      side: document.querySelector('aside.side')!.getBoundingClientRect().width,
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
    }));

  test('at 1280 px the Stop button neither widens the side panel nor scrolls the page sideways', async () => {
    const canvasId = await createCanvas(t.api, user, 'Steady');
    await page.goto(`${t.url}/#/`);
    await openCanvas(page, canvasId, user.id);
    const before = await layout();
    expect(before.scrollWidth).toBeLessThanOrEqual(before.clientWidth);

    await page.locator(byTestId('prompt-input')).fill('Thirty paragraphs about the launch');
    await page.locator(byTestId('generate-button')).click();
    await page.locator(byTestId('stop-button')).waitFor({ state: 'visible' });
    const during = await layout();
    await screenshot(page, 'holds-still-stop-1280', { fullPage: false });
    expect(during.side).toBe(before.side);
    expect(during.scrollWidth).toBeLessThanOrEqual(during.clientWidth);
    // Every button of the row stays inside the panel.
    const overflow = await page.evaluate(() => {
      const panel = document.querySelector('[data-testid="generate-form"]')!.getBoundingClientRect();
      return [...document.querySelectorAll('[data-testid="generate-form"] .row button:not([hidden])')].filter(
        (button) => button.getBoundingClientRect().right > panel.right + 0.5,
      ).length;
    });
    expect(overflow).toBe(0);
    await page.locator(byTestId('stop-button')).click();
    await page.locator(byTestId('stop-button')).waitFor({ state: 'hidden' });
  });

  test('offline: a banner over the board and Generate disabled, both gone when the connection is back', async () => {
    const canvasId = await createCanvas(t.api, user, 'Offline');
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(t.url).port) });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const tab = await context.newPage();
      tab.setDefaultTimeout(WAIT_MS);
      await tab.goto(`http://127.0.0.1:${proxy.port}`);
      await signIn(tab, user);
      await openCanvas(tab, canvasId, user.id);
      const banner = tab.locator(byTestId('offline-banner'));
      const generate = tab.locator(byTestId('generate-button'));
      expect(await banner.isHidden()).toBe(true);
      expect(await generate.isEnabled()).toBe(true);

      await proxy.cut();
      await banner.waitFor({ state: 'visible' });
      expect(await banner.getAttribute('role')).toBe('alert');
      expect(await banner.textContent()).toMatch(/offline/i);
      expect(await generate.isDisabled()).toBe(true);
      expect(await generate.getAttribute('title')).toMatch(/offline/i);
      // Ctrl+Enter in the prompt starts nothing either.
      await tab.locator(byTestId('prompt-input')).fill('Anything');
      await tab.locator(byTestId('prompt-input')).press('Control+Enter');
      expect(await tab.locator(byTestId('generation-state')).textContent()).toBe('');
      await screenshot(tab, 'holds-still-offline', { fullPage: false });

      await proxy.restore();
      await tab.locator(`${byTestId('connection-status')}[data-state="live"]`).waitFor({ timeout: 30_000 });
      expect(await banner.isHidden()).toBe(true);
      expect(await generate.isEnabled()).toBe(true);
    } finally {
      await context.close();
      await proxy.close();
    }
  }, 60_000);

  test('the keys page shows its code spans as code, not backticks', async () => {
    await page.goto(`${t.url}/#/keys`);
    const help = page.locator(byTestId('keys-help'));
    await help.waitFor();
    expect(await help.textContent()).not.toContain('`');
    expect(await help.locator('code').allTextContents()).toEqual(['Authorization: Bearer sb_live_…', 'X-API-Key']);
  });

  test('per-block controls are always visible: full opacity, readable contrast, 24 px targets, beside the text', async () => {
    const canvasId = await createCanvas(t.api, user, 'Controls');
    const added = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text: 'A block with controls' } },
    });
    expect(added.status).toBe(201);
    await page.goto(`${t.url}/#/`);
    await openCanvas(page, canvasId, user.id);
    await page
      .locator(`${byTestId('block')} .block-controls`)
      .first()
      .waitFor();
    // The mouse is elsewhere: the controls at rest.
    await page.mouse.move(5, 5);
    const controls = await page.evaluate(() => {
      const rgb = (value: string) => (value.match(/[\d.]+/g) ?? []).slice(0, 3).map(Number);
      const luminance = (value: string) => {
        const [r, g, b] = rgb(value).map((c) => {
          const s = c / 255;
          return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const contrast = (a: string, b: string) => {
        const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
        return (hi + 0.05) / (lo + 0.05);
      };
      const block = document.querySelector<HTMLElement>('[data-testid="block-list"] > [data-testid="block"]')!;
      const box = block.querySelector<HTMLElement>('.block-controls')!;
      const content = [...block.children].find((child) => child !== box)!;
      const board = getComputedStyle(document.querySelector('[data-testid="canvas-board"]')!).backgroundColor;
      return {
        opacity: Number(getComputedStyle(box).opacity),
        overlap: { controlsRight: box.getBoundingClientRect().right, contentLeft: content.getBoundingClientRect().left },
        buttons: [...box.querySelectorAll<HTMLElement>('button')].map((button) => {
          const style = getComputedStyle(button);
          const rect = button.getBoundingClientRect();
          return {
            width: rect.width,
            height: rect.height,
            text: contrast(style.color, style.backgroundColor),
            edge: contrast(style.borderTopColor, board),
          };
        }),
      };
    });
    expect(controls.opacity).toBe(1);
    expect(controls.overlap.controlsRight).toBeLessThanOrEqual(controls.overlap.contentLeft + 0.5);
    expect(controls.buttons.length).toBeGreaterThanOrEqual(4);
    for (const button of controls.buttons) {
      expect(button.width).toBeGreaterThanOrEqual(24);
      expect(button.height).toBeGreaterThanOrEqual(24);
      expect(button.text).toBeGreaterThanOrEqual(4.5);
      expect(button.edge).toBeGreaterThanOrEqual(3);
    }
  });

  test('the flows page opens compact: a new flow is one empty step, the example one click away', async () => {
    await page.goto(`${t.url}/#/flows`);
    await page.locator(byTestId('flow-form')).waitFor();
    const nodes = page.locator(byTestId('flow-node-editor'));
    await nodes.first().waitFor();
    expect(await nodes.count()).toBe(1);
    expect(await nodes.first().getByLabel('Prompt').inputValue()).toBe('');
    const pageHeight = () => page.evaluate(() => document.documentElement.scrollHeight);
    const height = await pageHeight();
    await screenshot(page, 'holds-still-flows-new');
    await page.getByRole('button', { name: 'Start from an example' }).click();
    expect(await nodes.count()).toBe(4);
    // The example is the long form it used to open with; the new form is a fraction of it.
    const example = await pageHeight();
    // The one step shows its kind, its fields and what it runs after; the graph sits beside it.
    expect(height).toBeLessThan(2_300);
    expect(example).toBeGreaterThan(1.8 * height);
  });

  test("a flow's execution is a page of its own, not stacked above the edit form", async () => {
    const flow = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Brief',
        definition: { nodes: [{ id: 'facts', prompt: 'Facts about {{input.topic}}' }], output: 'facts' },
      },
    });
    expect(flow.status).toBe(201);
    const flowId = flow.body.flow.id as string;
    const run = await request('POST', `${t.api}/flows/${flowId}/execute`, {
      token: user.accessToken,
      body: { input: { topic: 'otters' } },
    });
    expect(run.status).toBe(202);
    await page.goto(`${t.url}/#/flows/${flowId}/executions/${run.body.executionId}`);
    const execution = page.locator(byTestId('flow-execution-view'));
    await execution.waitFor();
    expect(await page.locator(byTestId('flow-form')).isVisible()).toBe(false);
    expect(await page.locator(byTestId('flow-run')).isVisible()).toBe(false);
    const top = await page.evaluate(() => ({
      execution: document.querySelector('[data-testid="flow-execution-view"]')!.getBoundingClientRect().top + scrollY,
      main: document.querySelector('[data-testid="flows-main"]')!.getBoundingClientRect().top + scrollY,
      height: document.documentElement.scrollHeight,
    }));
    expect(top.execution).toBe(top.main);
    await page.getByRole('link', { name: '← Brief' }).click();
    await page.locator(byTestId('flow-form')).waitFor({ state: 'visible' });
    expect(await execution.isVisible()).toBe(false);
  });

  test('no script errors or failed requests', () => {
    expect(problems).toEqual([]);
  });
});

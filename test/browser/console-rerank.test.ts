import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app';
import { plantCrowdedPair } from '../support/ranks';
import { byTestId, launchChromium, openCanvas, openPage, screenshot, signIn, WAIT_MS } from '../support/browser';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';

/**
 * Decision 0150 in the web console (real Chromium): a collaborator's board holds two blocks whose
 * ranks are at the rebalance threshold; the owner inserts between them (the canvas is rebalanced)
 * and then appends one more. The board must show left, middle, right, tail: it reloads on
 * `blocks_reranked`. With the old ranks kept, the new ones would sort before or after both.
 */
describe('web console: a rebalance reorders the board correctly', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let owner: TestUser;
  let viewer: TestUser;
  const problems: string[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    [owner, viewer] = await Promise.all([registerUser(t.api, 'Olga'), registerUser(t.api, 'Vic')]);
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  const boardTexts = () => page.locator(`${byTestId('block-list')} > ${byTestId('block')}`).allTextContents();

  test('after blocks_reranked the board reloads, and a block added later lands in its place', async () => {
    const canvasId = await createCanvas(t.api, owner, 'Crowded');
    await addMember(t.api, owner, canvasId, viewer, 'viewer');
    const { left } = await plantCrowdedPair(t.app.repos.db, canvasId, owner.id);
    page = await openPage(browser, t.url, 'viewer', problems);
    await signIn(page, viewer);
    await openCanvas(page, canvasId, viewer.id);
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid="block-list"] > [data-testid="block"]').length === 2,
      undefined,
      { timeout: WAIT_MS },
    );

    const middle = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'middle' }, afterId: left.id },
    });
    expect(middle.status).toBe(201);
    // block_added (1), blocks_reranked (2): the board has applied both once its reload is in.
    await page.waitForFunction(
      () => document.querySelector<HTMLElement>('[data-testid="block-list"]')?.dataset.lastSeq === '2',
      undefined,
      { timeout: WAIT_MS },
    );
    const tail = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: owner.accessToken,
      body: { type: 'text', content: { text: 'tail' } },
    });
    expect(tail.status).toBe(201);
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid="block-list"] > [data-testid="block"]').length === 4,
      undefined,
      { timeout: WAIT_MS },
    );

    const texts = await boardTexts();
    expect(texts.map((text) => text.replace(/\s+/g, ' ').trim())).toEqual([
      expect.stringContaining('left'),
      expect.stringContaining('middle'),
      expect.stringContaining('right'),
      expect.stringContaining('tail'),
    ]);
    await screenshot(page, 'rerank-01-board', { fullPage: false });
    expect(problems).toEqual([]);
  });
});

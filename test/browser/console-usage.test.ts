import type { Browser, Page } from 'playwright-core';
import { AdminDirectory } from '../../src/auth/admins';
import { llmUsage } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, type TestUser } from '../support/http';

/**
 * The console's Usage page in Chromium: a user sees their own tokens and cost by day
 * and model; an admin can also ask for every user's; a non-admin's page never asks (no 403 in its
 * console), and neither page gets any error answer.
 */
describe('web console: the Usage page', () => {
  let t: TestApp;
  let browser: Browser;
  let plain: TestUser;
  let admin: TestUser;
  const problems: string[] = [];
  const today = new Date().toISOString().slice(0, 10);
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);

  beforeAll(async () => {
    t = await startTestApp();
    [plain, admin] = await Promise.all([registerUser(t.api, 'Plain'), registerUser(t.api, 'Root')]);
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
    const row = (user: TestUser, day: string, model: string, inputTokens: number, outputTokens: number, costUsd: number) => ({
      userId: user.id,
      purpose: 'chat',
      provider: 'openai',
      model,
      inputTokens,
      outputTokens,
      costUsd,
      createdAt: new Date(`${day}T12:00:00Z`),
    });
    await t.app.repos.db
      .insert(llmUsage)
      .values([
        row(plain, yesterday, 'gpt-4o', 1200, 300, 0.0105),
        row(plain, today, 'gpt-4o', 800, 200, 0.007),
        row(plain, today, 'gpt-4o-mini', 5000, 1000, 0.0013),
        row(admin, today, 'gpt-4o', 100_000, 20_000, 0.45),
      ]);
    browser = await launchChromium();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  const openUsage = async (user: TestUser, label: string) => {
    const page = await openPage(browser, t.url, label, problems);
    const seen: string[] = [];
    page.on('request', (req) => seen.push(new URL(req.url()).pathname + new URL(req.url()).search));
    await signIn(page, user);
    await page.locator(byTestId('nav-usage')).click();
    await page.locator(`${byTestId('usage-table')}:not([hidden])`).waitFor();
    return { page, seen };
  };
  const rows = (page: Page) =>
    page.locator(byTestId('usage-row')).evaluateAll((nodes) => nodes.map((n) => [...n.querySelectorAll('td')].map((td) => td.textContent)));

  test('a user sees their own usage by day and model, with totals; no "All users" box', async () => {
    const { page, seen } = await openUsage(plain, 'plain');
    expect(await rows(page)).toEqual([
      [yesterday, 'openai', 'gpt-4o', '1,200', '300', '$0.0105'],
      [today, 'openai', 'gpt-4o', '800', '200', '$0.0070'],
      [today, 'openai', 'gpt-4o-mini', '5,000', '1,000', '$0.0013'],
    ]);
    expect(await page.locator(byTestId('usage-total-input')).textContent()).toBe('7,000');
    expect(await page.locator(byTestId('usage-total-output')).textContent()).toBe('1,500');
    expect(await page.locator(byTestId('usage-total-cost')).textContent()).toBe('$0.0188');
    expect(await page.locator(byTestId('usage-all-label')).isHidden()).toBe(true);
    await screenshot(page, 'usage-01-own');
    // Narrowing the range to today drops yesterday's row.
    await page.locator(byTestId('usage-from')).fill(today);
    await page.locator(byTestId('usage-submit')).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="usage-row"]').length === 2);
    expect(seen.some((url) => url.includes('all=true'))).toBe(false);
    expect(seen.some((url) => url.includes('/admin'))).toBe(false);
    await page.context().close();
  });

  test('an admin ticks "All users" and sees everyone\'s calls summed', async () => {
    const { page } = await openUsage(admin, 'admin');
    expect(await rows(page)).toEqual([[today, 'openai', 'gpt-4o', '100,000', '20,000', '$0.4500']]);
    await page.locator(byTestId('usage-all')).check();
    await page.locator(`${byTestId('usage-table')}[data-scope="all"]`).waitFor();
    expect(await rows(page)).toEqual([
      [yesterday, 'openai', 'gpt-4o', '1,200', '300', '$0.0105'],
      [today, 'openai', 'gpt-4o', '100,800', '20,200', '$0.4570'],
      [today, 'openai', 'gpt-4o-mini', '5,000', '1,000', '$0.0013'],
    ]);
    expect(await page.locator(byTestId('usage-state')).textContent()).toContain('All users');
    await screenshot(page, 'usage-02-admin-all');
    await page.context().close();
  });

  test('no script errors and no error answers (no 403s) on either page', () => {
    expect(problems).toEqual([]);
  });
});

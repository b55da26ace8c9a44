import { randomUUID } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { AdminDirectory } from '../../src/auth/admins';
import { llmUsage } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * The console's Budget panel and "User plan" form in Chromium: a user sees their tier and, per
 * window, the limits in effect beside what their recorded model calls used; an admin moves that
 * user to another tier and sets a limit, and the user's budget follows; a non-admin's page has no
 * plan form and never asks an admin route; no page shows a script error or gets an unexpected error answer.
 */
describe('web console: the Budget panel and the User plan form', () => {
  let t: TestApp;
  let browser: Browser;
  let plain: TestUser;
  let admin: TestUser;
  const problems: string[] = [];
  const unknownUser = randomUUID();

  // Two calls in this hour; one earlier in the month, unless this hour is the month's first. The
  // windows are the clock's: the file's rows and every read of them fall in one clock hour, so when
  // fewer than three minutes of this one are left, the file waits for the next to begin.
  let now: Date;
  let earlierInMonth: boolean;
  let monthTokens: string;

  beforeAll(async () => {
    const HOUR_MS = 3_600_000;
    const leftInHour = HOUR_MS - (Date.now() % HOUR_MS);
    if (leftInHour < 180_000) await new Promise((resolve) => setTimeout(resolve, leftInHour + 1_000));
    now = new Date();
    const hourStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), now.getUTCHours());
    earlierInMonth = hourStart > Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    monthTokens = earlierInMonth ? '5,000' : '2,500';
    t = await startTestApp({ env: { TIER_LIMITS: JSON.stringify({ free: { tokensPerHour: 5000, requestsPerMonth: 100 } }) } });
    [plain, admin] = await Promise.all([registerUser(t.api, 'Plain'), registerUser(t.api, 'Root')]);
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
    const row = (createdAt: Date, inputTokens: number, outputTokens: number, costUsd: number) => ({
      userId: plain.id,
      purpose: 'chat',
      provider: 'openai',
      model: 'gpt-4o',
      inputTokens,
      outputTokens,
      costUsd,
      createdAt,
    });
    await t.app.repos.db
      .insert(llmUsage)
      .values([
        row(now, 1200, 300, 0.01),
        row(now, 800, 200, 0.005),
        ...(earlierInMonth ? [row(new Date(hourStart - 60_000), 2000, 500, 0.02)] : []),
      ]);
    browser = await launchChromium();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  /** Signs `user` in, waits for `/me` (which decides the admin parts), opens Usage and waits for the budget. */
  const openUsage = async (user: TestUser, label: string, allowed?: (status: number, pathname: string) => boolean) => {
    const page = await openPage(browser, t.url, label, problems, allowed);
    const seen: string[] = [];
    page.on('request', (req) => seen.push(new URL(req.url()).pathname));
    const me = page.waitForResponse((response) => new URL(response.url()).pathname === '/api/v1/me');
    await signIn(page, user);
    expect((await me).status()).toBe(200);
    await page.locator(byTestId('nav-usage')).click();
    await page.locator(`${byTestId('budget-table')}:not([hidden])`).waitFor();
    return { page, seen };
  };
  /** Each window's row: [window, tokens, share, reserved, requests, cost]. */
  const budgetRows = (page: Page) =>
    page
      .locator(byTestId('budget-window'))
      .evaluateAll((nodes) =>
        nodes.map((n) => [
          (n as HTMLElement).dataset.window,
          ...[...n.querySelectorAll('td')].slice(0, 5).map((td) => td.textContent?.trim()),
        ]),
      );
  const budgetOf = async (user: TestUser) => {
    const res = await request('GET', `${t.api}/usage/budget`, { token: user.accessToken });
    expect(res.status).toBe(200);
    return res.body;
  };

  test('a user sees their budget windows: limits of their tier, used figures of their calls, when each resets', async () => {
    const { page, seen } = await openUsage(plain, 'plain');
    expect(await page.locator(byTestId('budget-tier')).textContent()).toBe('free');
    expect(await budgetRows(page)).toEqual([
      ['hour', '2,500 / 5,000', '50%', '0', '2 / unlimited', '$0.0150 / unlimited'],
      [
        'month',
        `${monthTokens} / unlimited`,
        '—',
        '0',
        `${earlierInMonth ? 3 : 2} / 100`,
        `$${earlierInMonth ? '0.0350' : '0.0150'} / unlimited`,
      ],
    ]);
    const resets = await page.locator(byTestId('budget-resets')).evaluateAll((nodes) => nodes.map((n) => n.getAttribute('datetime')));
    expect(resets).toEqual((await budgetOf(plain)).windows.map((w: { resetsAt: string }) => w.resetsAt));
    await screenshot(page, 'budget-01-user');
    // Not an admin: no plan form, and no request to an admin route.
    expect(await page.locator(byTestId('plan-panel')).isHidden()).toBe(true);
    expect(seen.filter((path) => path.includes('/admin'))).toEqual([]);
    await page.context().close();
  });

  test("an admin moves the user to another tier and sets a limit; the user's budget follows", async () => {
    const { page, seen } = await openUsage(
      admin,
      'admin',
      (status, pathname) => status === 404 && pathname === `/api/v1/admin/users/${unknownUser}/tier`,
    );
    await page.locator(`${byTestId('plan-panel')}:not([hidden])`).waitFor();
    const state = page.locator(byTestId('plan-state'));

    // An unknown user: the API's message is shown, nothing else changes.
    await page.locator(byTestId('plan-user')).fill(unknownUser);
    await page.locator(byTestId('plan-tier')).selectOption('pro');
    await page.locator(byTestId('plan-submit')).click();
    await page.locator(`${byTestId('plan-state')}[data-status="error"]`).waitFor();
    expect(await state.textContent()).toBe('User not found');
    expect(await page.locator(byTestId('plan-result')).isHidden()).toBe(true);

    await page.locator(byTestId('plan-user')).fill(plain.id);
    await page.locator(byTestId('plan-tokensPerMonth')).fill('10000');
    await page.locator(byTestId('plan-submit')).click();
    await page.locator(`${byTestId('plan-state')}[data-status="ok"]`).waitFor();
    expect(await page.locator(byTestId('plan-result-tier')).textContent()).toBe('pro');
    expect(await page.locator(byTestId('plan-result-tokensPerMonth')).textContent()).toBe('10,000');
    // The pro tier has no budget limits of its own.
    expect(await page.locator(byTestId('plan-result-tokensPerHour')).textContent()).toBe('unlimited');
    expect(await page.locator(byTestId('plan-result-requestsPerMonth')).textContent()).toBe('unlimited');
    expect(seen.filter((path) => path.startsWith(`/api/v1/admin/users/${plain.id}/`))).toEqual([
      `/api/v1/admin/users/${plain.id}/tier`,
      `/api/v1/admin/users/${plain.id}/limits`,
    ]);
    // Loading the user's plan puts their overrides back in the form, so a later save keeps them.
    await page.locator(byTestId('plan-tokensPerMonth')).fill('');
    await page.locator(byTestId('plan-state')).evaluate((node) => (node.textContent = ''));
    await page.locator(byTestId('plan-load')).click();
    await page.locator(`${byTestId('plan-state')}[data-status="ok"]:text-matches("is on pro")`).waitFor();
    expect(await page.locator(byTestId('plan-tokensPerMonth')).inputValue()).toBe('10000');
    expect(await page.locator(byTestId('plan-tokensPerHour')).inputValue()).toBe('');
    expect(await page.locator(byTestId('plan-result-tier')).textContent()).toBe('pro');
    await screenshot(page, 'budget-02-admin-plan');

    const budget = await budgetOf(plain);
    expect(budget.tier).toBe('pro');
    expect(
      budget.windows.map((w: { limitTokens: number | null; limitRequests: number | null }) => [w.limitTokens, w.limitRequests]),
    ).toEqual([
      [null, null],
      [10_000, null],
    ]);

    const user = await openUsage(plain, 'plain-after');
    expect(await user.page.locator(byTestId('budget-tier')).textContent()).toBe('pro');
    expect((await budgetRows(user.page)).map((row) => row.slice(0, 3))).toEqual([
      ['hour', '2,500 / unlimited', '—'],
      ['month', `${monthTokens} / 10,000`, earlierInMonth ? '50%' : '25%'],
    ]);
    await screenshot(user.page, 'budget-03-user-after');
    await user.page.context().close();

    // Clearing the overrides leaves the tier's limits: pro has none.
    await page.locator(byTestId('plan-clear')).click();
    await page.locator(`${byTestId('plan-result-tokensPerMonth')}:text-is("unlimited")`).waitFor();
    expect(await state.getAttribute('data-status')).toBe('ok');
    const cleared = await budgetOf(plain);
    expect(cleared.tier).toBe('pro');
    expect(cleared.windows.map((w: { limitTokens: number | null }) => w.limitTokens)).toEqual([null, null]);
    await page.context().close();
  });

  test('no script errors and no unexpected error answers on any page', () => {
    expect(problems).toEqual([]);
  });
});

import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { AdminDirectory } from '../../src/auth/admins';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, type TestUser } from '../support/http';

/**
 * The console's queue-dashboard link (0090) in a real Chromium: shown to a user an operator
 * granted admin rights, hidden from everyone else, and decided from `/me` so a non-admin's page
 * never requests the dashboard (no 403 in its console).
 */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WAIT_MS = 15_000;
const byTestId = (id: string) => `[data-testid="${id}"]`;

describe('web console: the admin link', () => {
  let t: TestApp;
  let browser: Browser;
  let admin: TestUser;
  let plain: TestUser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM_PATH))
      throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium package or set CHROMIUM_PATH.`);
    t = await startTestApp();
    admin = await registerUser(t.api, 'Operator');
    plain = await registerUser(t.api, 'Plain');
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  /** Signs `user` in on a fresh page; returns it with every response status and URL path it saw. */
  const signIn = async (user: TestUser) => {
    const page: Page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(WAIT_MS);
    const seen: string[] = [];
    page.on('response', (response) => seen.push(`${response.status()} ${new URL(response.url()).pathname}`));
    await page.goto(t.url);
    await page.locator(byTestId('signin-email')).fill(user.email);
    await page.locator(byTestId('signin-password')).fill('correct horse battery');
    // The console asks /me right after signing in; wait for its answer (registered before the click).
    const me = page.waitForResponse((response) => new URL(response.url()).pathname === '/api/v1/me');
    await page.locator(byTestId('signin-submit')).click();
    expect((await me).status()).toBe(200);
    await page.locator(byTestId('canvas-list-item')).or(page.getByText('No canvases yet.')).first().waitFor();
    return { page, seen };
  };

  test('a granted admin sees the dashboard link', async () => {
    const { page, seen } = await signIn(admin);
    await page.locator(byTestId('admin-link')).waitFor({ state: 'visible' });
    expect(seen.filter((line) => /^[45]/.test(line))).toEqual([]);
  });

  test('a plain user does not, and their page never asks the dashboard (no 403 anywhere)', async () => {
    const { page, seen } = await signIn(plain);
    expect(await page.locator(byTestId('admin-link')).isHidden()).toBe(true);
    expect(seen.filter((line) => line.includes('/admin/queues'))).toEqual([]);
    expect(seen.filter((line) => /^[45]/.test(line))).toEqual([]);
  });
});

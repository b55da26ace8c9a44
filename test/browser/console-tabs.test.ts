import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, signIn, WAIT_MS } from '../support/browser';
import { registerUser, request } from '../support/http';
import { eventually } from '../support/wait';

/**
 * One browser, several console tabs, one session (decision 0330): a new tab opens signed in from
 * the HttpOnly session cookie, which no script can read; tabs that refresh at the same moment take
 * turns (the refresh token rotates, and a reused one ends the session); signing out in one tab
 * signs out every tab, and the cookie's token is refused afterwards; a reused refresh token still
 * revokes the whole session.
 */
describe('web console: tabs share one session', () => {
  let t: TestApp;
  let browser: Browser;
  const problems: string[] = [];
  /** 401s of a refresh or request made with a token that was revoked on purpose. */
  let expect401 = false;

  beforeAll(async () => {
    t = await startTestApp();
    browser = await launchChromium();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  /** A tab of `context` at the console, recording problems under `label`. */
  async function tab(context: BrowserContext, label: string): Promise<Page> {
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (error) => problems.push(`${label}: ${error.message}`));
    page.on('response', (response) => {
      if (response.status() >= 400 && !(expect401 && response.status() === 401))
        problems.push(`${label}: ${response.status()} ${new URL(response.url()).pathname}`);
    });
    await page.goto(t.url);
    return page;
  }

  const refreshCookie = async (context: BrowserContext) => (await context.cookies()).find((c) => c.name === 'sb_refresh');

  test('a second tab opens signed in, and no script can read the refresh token', async () => {
    const user = await registerUser(t.api, 'Tabby');
    const context = await browser.newContext();
    const first = await tab(context, 'first');
    await signIn(first, user);
    const second = await tab(context, 'second');
    await second.locator(byTestId('home-view')).waitFor();
    expect(await second.locator(byTestId('current-user')).textContent()).toContain(user.email);

    const cookie = await refreshCookie(context);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/api/v1/auth/' });
    for (const page of [first, second]) {
      const seen = await page.evaluate(() => ({
        cookie: document.cookie,
        stored: JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }),
      }));
      expect(seen.cookie).not.toContain(cookie!.value);
      expect(seen.stored).not.toContain(cookie!.value);
      expect(seen.stored).not.toContain('refreshToken');
    }
    await context.close();
  });

  test('tabs whose tokens expired together refresh one at a time and both stay signed in', async () => {
    const user = await registerUser(t.api, 'Together');
    const context = await browser.newContext();
    const pages = [await tab(context, 'one'), await tab(context, 'two')];
    await signIn(pages[0], user);
    // The second tab, told of the sign-in, takes the session from the cookie (one rotation); the
    // reload comes after that exchange has answered, not in the middle of it.
    await pages[1].locator(byTestId('home-view')).waitFor();
    await pages[1].reload();
    await pages[1].locator(byTestId('home-view')).waitFor();
    // Both access tokens forged at once: each tab's next request is a 401 and a refresh.
    expect401 = true;
    await Promise.all(
      pages.map((page) =>
        page.evaluate(() => {
          const key = 'switchboard.console.session';
          sessionStorage.setItem(key, JSON.stringify({ ...JSON.parse(sessionStorage.getItem(key)!), accessToken: 'expired.or.forged' }));
        }),
      ),
    );
    const refreshes = pages.map((page) =>
      page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/refresh') && r.request().method() === 'POST'),
    );
    await Promise.all(pages.map((page) => page.reload()));
    expect((await Promise.all(refreshes)).map((r) => r.status())).toEqual([200, 200]);
    for (const page of pages) await page.locator(byTestId('home-view')).waitFor();
    // The session survived both exchanges: the cookie's token still refreshes.
    const still = await pages[0].evaluate(
      async () =>
        (
          await fetch('/api/v1/auth/refresh', {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-session-cookie': '1' },
            body: '{}',
          })
        ).status,
    );
    expect(still).toBe(200);
    expect401 = false;
    await context.close();
  });

  test('signing out in one tab signs out every tab, and the cookie token is refused afterwards', async () => {
    const user = await registerUser(t.api, 'Leaver');
    const context = await browser.newContext();
    const first = await tab(context, 'leaver-1');
    await signIn(first, user);
    const second = await tab(context, 'leaver-2');
    await second.locator(byTestId('home-view')).waitFor();
    const token = (await refreshCookie(context))!.value;

    // Both tabs sign out at once; the cookie goes with the logout's answer, a moment later.
    const loggedOut = first.waitForResponse((r) => r.url().endsWith('/api/v1/auth/logout') && r.request().method() === 'POST');
    await first.getByRole('button', { name: 'Sign out' }).click();
    await first.locator(byTestId('auth-view')).waitFor();
    await second.locator(byTestId('auth-view')).waitFor();
    expect((await loggedOut).status()).toBe(204);
    expect(await refreshCookie(context)).toBeUndefined();
    const refused = await request('POST', `${t.api}/auth/refresh`, { body: { refreshToken: token } });
    expect(refused.status).toBe(401);
    // A new tab asks for nothing and shows the sign-in form.
    const third = await tab(context, 'leaver-3');
    await third.locator(byTestId('auth-view')).waitFor();
    await context.close();
  });

  test('a reused refresh token still ends the session, and the tab is signed out', async () => {
    const user = await registerUser(t.api, 'Reused');
    const context = await browser.newContext();
    const page = await tab(context, 'reused');
    await signIn(page, user);
    const stolen = (await refreshCookie(context))!.value;
    // The tab rotates the token (its access token is renewed), then the stolen copy is presented.
    expect401 = true;
    await page.evaluate(() => {
      const key = 'switchboard.console.session';
      sessionStorage.setItem(key, JSON.stringify({ ...JSON.parse(sessionStorage.getItem(key)!), accessToken: 'expired.or.forged' }));
    });
    await page.reload();
    await page.locator(byTestId('home-view')).waitFor();
    // The home view may show before the refresh that follows its first 401 has rotated the cookie.
    await eventually(
      async () => (await refreshCookie(context))?.value,
      (value) => value !== undefined && value !== stolen,
    );
    const replay = await request('POST', `${t.api}/auth/refresh`, { body: { refreshToken: stolen } });
    expect(replay).toMatchObject({ status: 401, body: { error: { code: 'refresh_token_reused' } } });
    // The family is revoked: the tab's next refresh from the cookie fails and it is signed out.
    await page.reload();
    await page.locator(byTestId('auth-view')).waitFor();
    expect401 = false;
    await context.close();
  });

  test('no script errors or unexpected failed requests', () => {
    expect(problems).toEqual([]);
  });
});

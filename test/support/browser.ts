import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { request, type TestUser } from './http';

/**
 * Chromium helpers for the console's browser tests: Debian's Chromium (no browser download), a
 * page that records script errors and failed requests, sign-in, and checked screenshots.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Gitignored: screenshots for a person to look at, rewritten on every run. */
export const SCREENSHOTS = path.join(process.cwd(), 'test', 'browser', 'screenshots');
export const WAIT_MS = 15_000;
/**
 * A fresh page's first load: it fetches every module of the console at once, and when the browser
 * suites start together (several apps and Chromiums starting on two cores) that alone can take
 * longer than a step's `WAIT_MS`.
 */
export const FIRST_LOAD_MS = 60_000;
export const byTestId = (id: string) => `[data-testid="${id}"]`;

const LAUNCH = { executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] };

/**
 * A Chromium for one test file: the run's shared one when the browser suite's global setup started
 * it (TEST_CHROMIUM_WS), else one of the file's own. `close()` it when done: a shared one then only
 * drops the file's contexts. Each page has its own context either way (see `openPage`).
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH.`,
    );
  mkdirSync(SCREENSHOTS, { recursive: true });
  const shared = process.env.TEST_CHROMIUM_WS;
  return shared ? chromium.connect(shared) : chromium.launch(LAUNCH);
}

/**
 * Starts the Chromium the browser suite's files share (a launch costs more than a second of CPU a
 * file), unless Chromium is missing: then each file's `launchChromium` says how to install it.
 */
export async function startSharedChromium(): Promise<{ wsEndpoint: string; stop(): Promise<void> } | undefined> {
  if (!existsSync(CHROMIUM_PATH)) return undefined;
  const server = await chromium.launchServer(LAUNCH);
  return { wsEndpoint: server.wsEndpoint(), stop: () => server.close() };
}

/**
 * A fresh page (own context: own sessionStorage) at `url`. Script errors, console errors, CSP
 * violations and every HTTP answer ≥ 400 are pushed to `problems` as `label: …`, unless `allowed`
 * says that answer was expected.
 */
export async function openPage(
  browser: Browser,
  url: string,
  label: string,
  problems: string[],
  allowed: (status: number, pathname: string) => boolean = () => false,
): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  // A violation of the page's Content-Security-Policy reaches its console only for some directives
  // (a blocked eval does not): the page says each one there, so every test fails on any of them.
  await context.addInitScript(() =>
    document.addEventListener('securitypolicyviolation', (event) =>
      console.error(`Content-Security-Policy violation: ${event.violatedDirective} (${event.blockedURI || 'inline'})`),
    ),
  );
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (error) => problems.push(`${label}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`${label}: ${message.text()}`);
  });
  page.on('response', (response) => {
    const { pathname } = new URL(response.url());
    if (response.status() >= 400 && !allowed(response.status(), pathname)) problems.push(`${label}: ${response.status()} ${pathname}`);
  });
  await page.goto(url, { timeout: FIRST_LOAD_MS });
  return page;
}

/** Signs `user` in (password of test/support/http's registerUser) and waits for the home view. */
export async function signIn(page: Page, user: TestUser): Promise<void> {
  await page.locator(byTestId('signin-email')).fill(user.email);
  await page.locator(byTestId('signin-password')).fill('correct horse battery');
  await page.locator(byTestId('signin-submit')).click();
  await page.locator(byTestId('home-view')).waitFor();
}

/** Opens a canvas from the home list and waits until its room is joined. */
export async function openCanvas(page: Page, canvasId: string, userId: string): Promise<void> {
  await page.locator(`${byTestId('canvas-list-item')}[data-canvas-id="${canvasId}"] ${byTestId('open-canvas')}`).click();
  // What the page showed instead, so a failure on CI says more than "timeout".
  const explain = async (error: Error) => {
    const shown = await page.evaluate(() => ({
      hash: location.hash,
      views: [...document.querySelectorAll('main > section[data-testid$="-view"]')]
        .filter((node) => !(node as HTMLElement).hidden)
        .map((node) => (node as HTMLElement).dataset.testid),
      connection: document.querySelector('[data-testid="connection-status"]')?.textContent,
      notice: document.querySelector('[data-testid="notice"]')?.textContent,
      presence: [...document.querySelectorAll('[data-testid="presence-user"]')].map((node) => (node as HTMLElement).dataset.userId),
    }));
    throw new Error(`${error.message}\nthe page showed: ${JSON.stringify(shown)}`);
  };
  await page
    .locator(`${byTestId('connection-status')}[data-state="live"]`)
    .waitFor()
    .catch(explain);
  await page
    .locator(`${byTestId('presence-user')}[data-user-id="${userId}"]`)
    .waitFor()
    .catch(explain);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A screenshot (full page unless `fullPage: false`, quicker) at SCREENSHOTS/`name`.png; checks it is a non-empty PNG. */
export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<string> {
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: options.fullPage ?? true });
  const bytes = readFileSync(file);
  if (bytes.length < 1_000 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE))
    throw new Error(`${file} is not a PNG screenshot (${bytes.length} bytes)`);
  return file;
}

/** Waits until the console's board shows exactly `texts`, in order (each block's text). */
export function boardShows(page: Page, texts: string[]) {
  return page.waitForFunction(
    (want) =>
      JSON.stringify(
        [...document.querySelectorAll('[data-testid="block-list"] > [data-testid="block"]')].map((n) => n.textContent?.trim()),
      ) === JSON.stringify(want),
    texts,
    { timeout: WAIT_MS },
  );
}

/** The text of each block stored on a canvas, in rank order, as the API lists them. */
export async function storedBlockTexts(api: string, canvasId: string, token: string): Promise<string[]> {
  const res = await request('GET', `${api}/canvases/${canvasId}/blocks`, { token });
  return res.body.blocks.map((b: { content: { text: string } }) => b.content.text);
}

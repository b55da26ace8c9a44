import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from './app';
import { launchChromium, openCanvas, openPage, signIn } from './browser';
import { createCanvas, registerUser, request, type TestUser } from './http';
import { startTcpProxy, type TcpProxy } from './tcp-proxy';

/** The access tokens' life in the idle-tab suites: the shortest ACCESS_TOKEN_TTL_SECONDS allows. */
export const TTL_S = 60;
export const PAST_EXPIRY_MS = (TTL_S + 20) * 1000;

/**
 * A console tab left open on a shared canvas, for the suites that keep one open past its access
 * token's life (`test/browser/console-idle-*.test.ts`, one way it goes each, so the three waits run
 * at once): an app whose tokens live `TTL_S` seconds, Ida's tab signed in through a TCP proxy (so a
 * test can take the network away) on a canvas Otto edits over the API, and what each suite asks of
 * them. Every change of the tab's connection badge is logged, in order.
 */
export async function openIdleTab(): Promise<IdleTab> {
  // A pause per streamed piece, so a generation is still streaming when the network goes.
  const t = await startTestApp({ llmDelayMs: 250, env: { ACCESS_TOKEN_TTL_SECONDS: String(TTL_S) } });
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(t.url).port) });
  const [user, other] = await Promise.all([registerUser(t.api, 'Ida'), registerUser(t.api, 'Otto')]);
  const canvasId = await createCanvas(t.api, user, 'Left open');
  await request('POST', `${t.api}/canvases/${canvasId}/members`, { token: user.accessToken, body: { email: other.email, role: 'editor' } });
  const browser = await launchChromium();
  const problems: string[] = [];
  // Through the proxy, so the test can take the network away. A request that leaves with a token
  // that expired meanwhile (a resumed stream, the moment the network is back) is answered 401 and
  // sent again after the transport's refresh: expected here; the tab staying signed in is asserted.
  const page = await openPage(browser, `http://127.0.0.1:${proxy.port}`, 'Ida', problems, (status) => status === 401);
  await signIn(page, user);
  await openCanvas(page, canvasId, user.id);
  await page.evaluate(() => {
    const badge = document.querySelector<HTMLElement>('[data-testid="connection-status"]')!;
    const seen: string[] = [badge.dataset.state ?? ''];
    (window as any).__connection = seen;
    new MutationObserver(() => seen.at(-1) !== badge.dataset.state && seen.push(badge.dataset.state ?? '')).observe(badge, {
      attributes: true,
    });
  });
  return new IdleTab(t, proxy, browser, page, user, other, canvasId, problems);
}

/**
 * A test file's idle tab: opened before its tests, closed after them. Call it in the file's
 * `describe`; the returned function gives the tab once it is open.
 */
export function idleTabForThisFile(): () => IdleTab {
  let tab: IdleTab | undefined;
  beforeAll(async () => {
    tab = await openIdleTab();
  }, 180_000);
  afterAll(() => tab?.close());
  return () => {
    if (!tab) throw new Error('the idle tab is opened in beforeAll');
    return tab;
  };
}

export class IdleTab {
  private added = 0;

  constructor(
    readonly t: TestApp,
    readonly proxy: TcpProxy,
    readonly browser: Browser,
    readonly page: Page,
    readonly user: TestUser,
    readonly other: TestUser,
    readonly canvasId: string,
    /** What the page reported as a problem (console errors, failed requests). */
    readonly problems: string[],
  ) {}

  /** The tab's stored session (its access token among it). */
  session(): Promise<{ accessToken: string }> {
    return this.page.evaluate(() => JSON.parse(sessionStorage.getItem('switchboard.console.session') ?? 'null'));
  }

  expiryOf(token: string): number {
    return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp * 1000;
  }

  /** Resolves once the page's clock has passed `at` (a condition on time, polled by Playwright). */
  async pageClockPast(at: number): Promise<void> {
    await this.page.waitForFunction((when) => Date.now() > when, at, { timeout: PAST_EXPIRY_MS, polling: 500 });
  }

  connectionLog(): Promise<string[]> {
    return this.page.evaluate(() => (window as any).__connection as string[]);
  }

  async resetConnectionLog(): Promise<void> {
    await this.page.evaluate(() => ((window as any).__connection as string[]).splice(0, Infinity, 'live'));
  }

  /** Otto adds a block over the API (on a fresh token: his expire too); it must reach Ida's board through the room. */
  async collaboratorAdds(): Promise<string> {
    this.added += 1;
    const text = `from Otto ${this.added}`;
    const refreshed = await request('POST', `${this.t.api}/auth/refresh`, { body: { refreshToken: this.other.refreshToken } });
    if (refreshed.status !== 200) throw new Error(`Otto's refresh answered ${refreshed.status}`);
    this.other.refreshToken = refreshed.body.refreshToken;
    this.other.accessToken = refreshed.body.accessToken;
    const res = await request('POST', `${this.t.api}/canvases/${this.canvasId}/blocks`, {
      token: this.other.accessToken,
      body: { type: 'text', content: { text } },
    });
    if (res.status !== 201) throw new Error(`Otto's block answered ${res.status}`);
    return text;
  }

  /** Waits until the board shows each of `texts` exactly once, and no block twice. */
  async boardHasEach(texts: string[]): Promise<void> {
    await this.page.waitForFunction(
      (want) => {
        const shown = [...document.querySelectorAll('[data-testid="block-list"] > [data-testid="block"]')].map((n) =>
          n.textContent?.trim(),
        );
        return want.every((text) => shown.filter((s) => s === text).length === 1) && shown.length === new Set(shown).size;
      },
      texts,
      { timeout: 30_000 },
    );
  }

  async close(): Promise<void> {
    await this.browser.close();
    await this.proxy.close();
    await this.t.stop();
  }
}

import type { Route } from 'playwright-core';
import { byTestId } from '../support/browser';
import { idleTabForThisFile, PAST_EXPIRY_MS } from '../support/console-idle';

/**
 * A tab left open past its access token's life (60 s here), in Chromium, whose renewal comes late:
 * the server closes the socket at expiry (`auth:expired`), and the console refreshes, reconnects
 * and catches the board up, each of a collaborator's blocks shown once.
 */
describe('web console: a tab left open past its token expiry, renewed late', () => {
  const idleTab = idleTabForThisFile();

  test(
    'a late renewal: the server closes the socket at expiry (auth:expired); the console refreshes, reconnects and catches up',
    async () => {
      const tab = idleTab();
      const { page } = tab;
      // Hold every refresh until the server has closed the socket for its expired token.
      const held: Route[] = [];
      let released = false;
      await page.route('**/api/v1/auth/refresh', (route) => void (released ? route.continue() : held.push(route)));
      await tab.resetConnectionLog();
      const token = (await tab.session()).accessToken;
      await page.locator(`${byTestId('connection-status')}[data-state="offline"]`).waitFor({ timeout: PAST_EXPIRY_MS });
      expect(Date.now()).toBeGreaterThanOrEqual(tab.expiryOf(token) - 1_000);
      const missed = await tab.collaboratorAdds();
      released = true;
      expect(held.length).toBeGreaterThan(0);
      for (const route of held.splice(0)) await route.continue();
      await page.unroute('**/api/v1/auth/refresh');
      await page.locator(`${byTestId('connection-status')}[data-state="live"]`).waitFor({ timeout: 30_000 });
      expect(await tab.connectionLog()).toEqual(['live', 'offline', 'live']);
      expect((await tab.session()).accessToken).not.toBe(token);
      await tab.boardHasEach([missed, await tab.collaboratorAdds()]);
      expect(await page.locator(byTestId('auth-view')).isVisible()).toBe(false);
    },
    PAST_EXPIRY_MS + 60_000,
  );
});

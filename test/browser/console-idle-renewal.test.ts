import { idleTabForThisFile, PAST_EXPIRY_MS } from '../support/console-idle';
import { screenshot } from '../support/browser';

/**
 * A tab left open past its access token's life (60 s here), in Chromium, when all goes well: the
 * token is renewed before it expires and handed to the open socket (`auth:refresh`), so the socket
 * never drops and a collaborator's block reaches the board once. (The late renewal and the network
 * gone across the expiry are the other `console-idle-*` suites, run at the same time.)
 */
describe('web console: a tab left open past its token expiry, renewed ahead', () => {
  const idleTab = idleTabForThisFile();

  test(
    'the token is renewed before it expires and given to the open socket: no drop, live events keep coming',
    async () => {
      const tab = idleTab();
      const first = (await tab.session()).accessToken;
      await tab.pageClockPast(tab.expiryOf(first) + 3_000);
      const now = (await tab.session()).accessToken;
      expect(now).not.toBe(first);
      expect(tab.expiryOf(now)).toBeGreaterThan(tab.expiryOf(first));
      expect(await tab.connectionLog()).toEqual(['live']);
      const text = await tab.collaboratorAdds();
      await tab.boardHasEach([text]);
      await screenshot(tab.page, 'idle-01-renewed', { fullPage: false });
    },
    PAST_EXPIRY_MS + 30_000,
  );
});

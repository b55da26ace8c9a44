import { byTestId, screenshot } from '../support/browser';
import { idleTabForThisFile, PAST_EXPIRY_MS } from '../support/console-idle';

/**
 * A tab left open past its access token's life (60 s here), in Chromium, with the network gone
 * across the expiry while a generation streams: on its return the console refreshes, reconnects,
 * catches the board up by cursor and resumes the stream, each block shown once.
 */
describe('web console: a tab whose network is gone across its token expiry', () => {
  const idleTab = idleTabForThisFile();

  test(
    'the network gone across the expiry, mid-generation: on its return the console refreshes, reconnects, resyncs the board by cursor and resumes the stream',
    async () => {
      const tab = idleTab();
      const { page, proxy, t } = tab;
      const token = (await tab.session()).accessToken;
      const streamed = ['idle one', 'idle two', 'idle three', 'idle four', 'idle five', 'idle six'];
      t.llm.push({ toolCalls: streamed.map((text) => ({ name: 'create_text', args: { text } })) });
      await page.getByLabel('Prompt').fill('six paragraphs');
      await page.getByRole('button', { name: 'Generate' }).click();
      await page.locator(byTestId('draft-block')).first().waitFor();
      await proxy.cut();
      await page.locator(`${byTestId('connection-status')}[data-state="offline"]`).waitFor();
      const whileAway = [await tab.collaboratorAdds(), await tab.collaboratorAdds()];
      await tab.pageClockPast(tab.expiryOf(token) + 2_000);
      await proxy.restore();
      await page.locator(`${byTestId('connection-status')}[data-state="live"]`).waitFor({ timeout: 30_000 });
      expect((await tab.session()).accessToken).not.toBe(token);
      // The generation's stream is resumed with Last-Event-ID on the renewed token and ends with its blocks, each once.
      await page.getByText('Done: 6 block(s).').waitFor({ timeout: 30_000 });
      expect(await page.locator(`${byTestId('generation-event')}[data-event="resumed"]`).count()).toBeGreaterThan(0);
      await tab.boardHasEach([...whileAway, ...streamed]);
      // A new generation works on the renewed session too: its SSE stream runs to the end.
      t.llm.push({ toolCalls: [{ name: 'create_text', args: { text: 'after a long idle' } }] });
      await page.getByLabel('Prompt').fill('one more paragraph');
      await page.getByRole('button', { name: 'Generate' }).click();
      await tab.boardHasEach([...whileAway, ...streamed, 'after a long idle']);
      await page.getByText('Done: 1 block(s).').waitFor();
      await screenshot(page, 'idle-02-back-after-expiry', { fullPage: false });
      // Chromium reports each request that could not reach the server while the network was gone: expected here.
      expect(tab.problems.filter((problem) => !/WebSocket connection to .* failed|ERR_CONNECTION|Failed to fetch/.test(problem))).toEqual(
        [],
      );
    },
    PAST_EXPIRY_MS + 60_000,
  );
});

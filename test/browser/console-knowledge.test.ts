import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, type TestUser } from '../support/http';
import { waitUntil } from '../support/wait';

/** A long text: several rounds of chunks, so the ingestion behind it takes a while. */
const LONG_TEXT = Array.from(
  { length: 30 },
  (_, section) =>
    `Section ${section}. ` +
    Array.from({ length: 40 }, (_, n) => `Part ${section}-${n} explains step ${(section * 53 + n) % 991}.`).join(' '),
).join('\n\n');
const NOTES = '# Security\n\nRotate the vault passphrase every quarter.\n\n# Holidays\n\nThe office closes on midsummer.\n';
/** A file name the page must show as text. */
const HOSTILE_NAME = '<img src=x onerror=window.__pwned=1>notes.md';

/**
 * The console's Knowledge page in Chromium, as a person uses it: a base created by form, files
 * uploaded with the bytes' progress and each document followed live (its progress stream) to ready,
 * an empty file failed with the reason, the chunks previewed, a search that cites the document and
 * its section; a web page added, refused on a private address, and re-ingested; deletions. A second
 * user sees none of it, not even by the base's address. Server text is shown as text, never markup.
 */
describe('web console: knowledge', () => {
  let t: TestApp;
  let browser: Browser;
  let pages: http.Server;
  let origin: string;
  let pageFetches = 0;
  const problems: string[] = [];

  beforeAll(async () => {
    pages = http.createServer((_req, res) => {
      pageFetches += 1;
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        .end(
          '<!doctype html><html><head><title>Shipping FAQ</title></head><body><article><h1>Shipping</h1>' +
            '<p>Parcels to Norway travel by sea freight and take twelve days to arrive at the harbour.</p></article></body></html>',
        );
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
    // One ingestion at a time: the second file of an upload waits queued behind the first, so the page follows it live.
    t = await startTestApp({ env: { KNOWLEDGE_CONCURRENCY: '1', KNOWLEDGE_PRIVATE_ORIGINS: origin } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    pages.closeAllConnections();
    await new Promise((resolve) => pages.close(resolve));
  });
  afterEach(() => expect(problems.splice(0)).toEqual([]));

  const openKnowledge = async (user: TestUser, label: string): Promise<Page> => {
    const page = await openPage(browser, t.url, label, problems);
    await signIn(page, user);
    await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Knowledge', exact: true }).click();
    await page.locator(byTestId('knowledge-view')).waitFor();
    return page;
  };
  /** Records from now on each status the row of the document named `name` is drawn with; `statuses` reads them. */
  const recordStatuses = (page: Page, name: string) =>
    page.evaluate((name) => {
      const seen: string[] = [];
      (window as unknown as { statuses: Record<string, string[]> }).statuses ??= {};
      (window as unknown as { statuses: Record<string, string[]> }).statuses[name] = seen;
      new MutationObserver(() => {
        for (const tr of document.querySelectorAll<HTMLElement>('[data-testid="knowledge-document"]'))
          if (tr.querySelector('[data-testid="knowledge-document-name"]')?.textContent === name && tr.isConnected)
            seen.push(tr.dataset.status ?? '');
      }).observe(document.querySelector('[data-testid="knowledge-document-rows"]')!, { childList: true, subtree: true });
    }, name);
  const statuses = (page: Page, name: string) =>
    page.evaluate((name) => (window as unknown as { statuses: Record<string, string[]> }).statuses[name], name);
  const row = (page: Page, name: string) =>
    page.locator(byTestId('knowledge-document')).filter({ has: page.locator(byTestId('knowledge-document-name'), { hasText: name }) });

  test('upload with progress, follow to ready, preview chunks, search and see the hit; a stranger sees nothing', async () => {
    const [owner, stranger] = await Promise.all([registerUser(t.api, 'Librarian'), registerUser(t.api, 'Stranger')]);
    const page = await openKnowledge(owner, 'owner');
    const view = page.locator(byTestId('knowledge-view'));
    const streams: string[] = [];
    page.on('request', (request) => {
      if (/\/knowledge\/documents\/[0-9a-f-]+\/events$/.test(new URL(request.url()).pathname)) streams.push(request.url());
    });
    await view.getByText('No knowledge bases yet.').waitFor();

    await view.getByLabel('Name', { exact: true }).first().fill('Handbook <b>2026</b>');
    await view.getByLabel('Description').fill('What the office knows.');
    await view.getByRole('button', { name: 'Create', exact: true }).click();
    await page.waitForURL(/#\/knowledge\/[0-9a-f-]{36}$/);
    const baseId = /#\/knowledge\/([0-9a-f-]{36})$/.exec(page.url())![1];
    await view.getByRole('heading', { name: 'Handbook <b>2026</b>', exact: true }).waitFor();
    await view.getByText('What the office knows.').waitFor();

    // What the page shows while it works: the upload's state lines and every status a row of the notes takes.
    await page.evaluate(() => {
      const seen = { upload: [] as string[], statuses: [] as string[], chunkCounts: [] as string[] };
      (window as unknown as { seen: typeof seen }).seen = seen;
      new MutationObserver(() => {
        seen.upload.push(document.querySelector('[data-testid="knowledge-upload-state"]')?.textContent ?? '');
        for (const tr of document.querySelectorAll<HTMLElement>('[data-testid="knowledge-document"]')) {
          if (!tr.querySelector('[data-testid="knowledge-document-name"]')?.textContent?.endsWith('notes.md')) continue;
          seen.statuses.push(tr.dataset.status ?? '');
          const progress = tr.querySelector('[data-testid="knowledge-document-status"] .small')?.textContent;
          if (progress) seen.chunkCounts.push(progress);
        }
      }).observe(document.querySelector('[data-testid="knowledge-view"]')!, { subtree: true, childList: true, characterData: true });
    });

    await view.getByLabel('Files').setInputFiles([
      { name: 'manual.txt', mimeType: 'text/plain', buffer: Buffer.from(LONG_TEXT) },
      { name: HOSTILE_NAME, mimeType: 'text/markdown', buffer: Buffer.from(NOTES) },
      { name: 'empty.txt', mimeType: 'text/plain', buffer: Buffer.alloc(0) },
    ]);
    await view.getByRole('button', { name: 'Upload', exact: true }).click();
    await view.getByText(/^Uploaded 3 files\. Refused: empty\.txt \(The file is empty \(0 bytes\)\)/).waitFor();

    const notes = row(page, HOSTILE_NAME);
    await notes.and(page.locator('[data-status="ready"]')).waitFor({ timeout: 60_000 });
    await row(page, 'manual.txt').and(page.locator('[data-status="ready"]')).waitFor({ timeout: 60_000 });
    const empty = row(page, 'empty.txt');
    expect(await empty.getAttribute('data-status')).toBe('failed');
    await empty.getByText('The file is empty (0 bytes)').waitFor();
    expect(Number(await notes.locator(byTestId('knowledge-document-chunks')).textContent())).toBeGreaterThan(0);

    const seen = await page.evaluate(
      () => (window as unknown as { seen: { upload: string[]; statuses: string[]; chunkCounts: string[] } }).seen,
    );
    // The upload's bytes were reported as they went, to the end.
    expect(seen.upload).toContain('Uploading 3 files… 100%');
    // The notes waited queued behind the manual, and the page followed their ingestion from its stream to ready.
    expect(seen.statuses[0]).toBe('queued');
    expect(seen.statuses).toEqual(expect.arrayContaining(['embedding', 'ready']));
    expect(seen.chunkCounts.some((text) => /^\d+ of \d+ chunks$/.test(text))).toBe(true);
    expect(streams.length).toBeGreaterThanOrEqual(2);
    // The hostile name is text: no element was made of it.
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator(`${byTestId('knowledge-view')} img`).count()).toBe(0);
    await view.getByText('3 documents', { exact: false }).first().waitFor();

    await notes.getByRole('button', { name: `Chunks of ${HOSTILE_NAME}` }).click();
    const chunks = page.locator(byTestId('knowledge-chunks'));
    await chunks.getByRole('heading', { name: `Chunks of ${HOSTILE_NAME}` }).waitFor();
    await chunks.getByText('Rotate the vault passphrase every quarter.').waitFor();
    await chunks.getByText(/section “Security”/).waitFor();
    await screenshot(page, 'knowledge-documents');

    await view.getByRole('searchbox', { name: 'Question or words' }).fill('How often is the vault passphrase rotated?');
    await view.getByRole('button', { name: 'Search', exact: true }).click();
    const hit = page.locator(byTestId('knowledge-hit')).first();
    await hit.waitFor();
    expect(await hit.locator(byTestId('knowledge-hit-document')).textContent()).toBe(HOSTILE_NAME);
    expect(await hit.locator(byTestId('knowledge-hit-place')).textContent()).toBe('section “Security”');
    expect(await hit.locator(byTestId('knowledge-hit-snippet')).textContent()).toContain('Rotate the vault passphrase every quarter.');
    expect(await hit.locator('mark').allTextContents()).toEqual(expect.arrayContaining(['vault', 'passphrase']));
    await screenshot(page, 'knowledge-search');

    // The stranger: no bases, the owner's base by its address is not found, and a search finds nothing.
    const other = await openKnowledge(stranger, 'stranger');
    const otherView = other.locator(byTestId('knowledge-view'));
    await otherView.getByText('No knowledge bases yet.').waitFor();
    await other.evaluate((id) => (location.hash = `#/knowledge/${id}`), baseId);
    await other
      .locator(byTestId('notice'))
      .getByText(/not found/)
      .waitFor();
    await other.waitForURL(/#\/knowledge$/);
    expect(await otherView.getByText('Handbook').count()).toBe(0);
    await otherView.getByRole('searchbox', { name: 'Question or words' }).fill('vault passphrase');
    await otherView.getByRole('button', { name: 'Search', exact: true }).click();
    await otherView.getByText('No passage matches.').waitFor();
    expect(await other.locator(byTestId('knowledge-hit')).count()).toBe(0);
    await other.context().close();

    // Deleting: the failed document, then the base with the rest.
    const remove = empty.locator(byTestId('knowledge-document-delete'));
    // Described by the document's name, for a screen reader in a table of Delete buttons.
    expect(await page.locator(`[id="${await remove.getAttribute('aria-describedby')}"]`).textContent()).toBe('empty.txt');
    await empty.getByRole('button', { name: 'Delete', exact: true }).click();
    await empty.getByRole('button', { name: 'Click again to delete' }).click();
    await row(page, 'empty.txt').waitFor({ state: 'detached' });
    await view.getByRole('button', { name: 'Delete base' }).click();
    await view.getByRole('button', { name: 'Click again to delete it and its documents' }).click();
    await page.waitForURL(/#\/knowledge$/);
    await view.getByText('No knowledge bases yet.').waitFor();
    await page.context().close();
  }, 180_000);

  test('a web page is added and re-ingested; a private address is refused with the reason', async () => {
    const owner = await registerUser(t.api, 'Surfer');
    const page = await openKnowledge(owner, 'surfer');
    const view = page.locator(byTestId('knowledge-view'));
    await view.getByLabel('Name', { exact: true }).first().fill('Web');
    await view.getByRole('button', { name: 'Create', exact: true }).click();
    await view.getByRole('heading', { name: 'Web', exact: true }).waitFor();
    const urlForm = page.locator(byTestId('knowledge-url-form'));

    await urlForm.getByLabel('URL', { exact: true }).fill('http://169.254.169.254/latest/meta-data');
    await urlForm.getByRole('button', { name: 'Add URL' }).click();
    await urlForm.getByText(/^Refused: The URL may not be fetched/).waitFor();
    const refused = row(page, 'http://169.254.169.254/latest/meta-data');
    expect(await refused.getAttribute('data-status')).toBe('failed');
    await refused.getByText(/The URL may not be fetched/).waitFor();

    await urlForm.getByLabel('URL', { exact: true }).fill(`${origin}/faq`);
    await urlForm.getByLabel('Name').fill('Shipping FAQ');
    await urlForm.getByRole('button', { name: 'Add URL' }).click();
    const faq = row(page, 'Shipping FAQ');
    await faq.and(page.locator('[data-status="ready"]')).waitFor({ timeout: 60_000 });
    expect(pageFetches).toBe(1);

    await recordStatuses(page, 'Shipping FAQ');
    await faq.getByRole('button', { name: 'Re-ingest Shipping FAQ' }).click();
    await waitUntil(() => pageFetches === 2, 30_000);
    // Queued again, then followed to ready.
    await page.waitForFunction(
      (name) => (window as unknown as { statuses: Record<string, string[]> }).statuses[name].at(-1) === 'ready',
      'Shipping FAQ',
      { timeout: 60_000 },
    );
    expect((await statuses(page, 'Shipping FAQ'))[0]).toBe('queued');

    await view.getByRole('searchbox', { name: 'Question or words' }).fill('How long do parcels to Norway take?');
    await view.getByRole('button', { name: 'Search', exact: true }).click();
    const hit = page.locator(byTestId('knowledge-hit')).first();
    await hit.waitFor();
    expect(await hit.locator(byTestId('knowledge-hit-document')).textContent()).toBe('Shipping FAQ');
    expect(await hit.locator(byTestId('knowledge-hit-snippet')).textContent()).toContain('twelve days');
    await page.context().close();
  }, 120_000);
});

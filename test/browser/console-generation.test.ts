import type { Browser, Page } from 'playwright-core';
import type { ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openCanvas, openPage, screenshot, signIn } from '../support/browser';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

/**
 * A generation seen from both sides, in Chromium: the requester's drafts are readable
 * and marked as drafts; a collaborator sees "Ada is generating…" and a progress bar over the
 * broadcast's chunks; and when the requester's connection drops mid-stream (A reaches the server
 * through a TCP proxy the test cuts), the console resumes the stream with `Last-Event-ID` and
 * shows every block exactly once instead of "stream ended early".
 */
const BLOCKS = 25; // three broadcast chunks of up to 10
const turn = (label: string): ChatTurn => ({
  toolCalls: Array.from({ length: BLOCKS }, (_, i) => ({ name: 'create_text', args: { text: `${label} paragraph ${i + 1}` } })),
});

describe('web console: generation progress for collaborators, readable drafts, resumed streams', () => {
  let t: TestApp;
  let proxy: TcpProxy;
  let browser: Browser;
  let pageA: Page;
  let pageB: Page;
  let userA: TestUser;
  let userB: TestUser;
  let canvasId: string;
  const problems: string[] = [];

  beforeAll(async () => {
    // Slow enough to watch: a pause per streamed piece, and 1 s between broadcast chunks.
    t = await startTestApp({ llmDelayMs: 80, env: { BROADCAST_CHUNK_DELAY_MS: '1000' } });
    proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(t.url).port) });
    [userA, userB] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bea')]);
    canvasId = await createCanvas(t.api, userA, 'Progress');
    await addMember(t.api, userA, canvasId, userB, 'editor');
    browser = await launchChromium();
    [pageA, pageB] = await Promise.all([
      openPage(browser, `http://127.0.0.1:${proxy.port}`, 'A', problems),
      openPage(browser, t.url, 'B', problems),
    ]);
    await Promise.all([signIn(pageA, userA), signIn(pageB, userB)]);
    await Promise.all([openCanvas(pageA, canvasId, userA.id), openCanvas(pageB, canvasId, userB.id)]);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await t?.stop();
  });

  const blockCount = (page: Page, n: number) =>
    page.waitForFunction((want) => document.querySelectorAll('[data-testid="block-list"] > [data-testid="block"]').length === want, n, {
      timeout: 30_000,
    });

  /** Records every state of the collaborator banner in the page (window.__banner). */
  const watchBanner = (page: Page) =>
    page.evaluate(() => {
      const seen: string[] = [];
      (window as any).__banner = seen;
      const banner = document.querySelector<HTMLElement>('[data-testid="collab-generation"]')!;
      const progress = document.querySelector<HTMLProgressElement>('[data-testid="collab-generation-progress"]')!;
      // The banner's words (its text and chunk count; not its Stop button) and its bar.
      const words = () =>
        ['collab-generation-text', 'collab-generation-chunks']
          .map((id) => banner.querySelector(`[data-testid="${id}"]`)?.textContent ?? '')
          .join(' ')
          .replace(/\s+/g, ' ')
          .trim();
      const record = () => {
        const state = banner.hidden
          ? 'hidden'
          : `${words()} [${progress.hasAttribute('value') ? `${progress.value}/${progress.max}` : 'indeterminate'}]`;
        if (seen.at(-1) !== state) seen.push(state);
      };
      new MutationObserver(record).observe(banner, { attributes: true, childList: true, subtree: true, characterData: true });
    });

  test("A generates; A's drafts are readable and marked; B sees 'Ada is generating…' and the chunk progress bar; A does not", async () => {
    t.llm.push(turn('First'), { text: 'Done.' });
    await Promise.all([watchBanner(pageA), watchBanner(pageB)]);
    await pageA.locator(byTestId('prompt-input')).fill('Twenty-five paragraphs about progress');
    await pageA.locator(byTestId('generate-button')).click();
    // B's side, watched from now on while A's drafts are checked: a determinate bar part-way.
    const bPartWay = pageB
      .waitForFunction(
        () => {
          const progress = document.querySelector<HTMLProgressElement>('[data-testid="collab-generation-progress"]');
          return progress?.hasAttribute('value') && progress.max === 3 && progress.value >= 1 && progress.value < 3;
        },
        undefined,
        { timeout: 30_000, polling: 'raf' },
      )
      .then(() => screenshot(pageB, 'generation-02-b-progress'));

    // The requester's drafts: full-strength text, a visible "Draft" label, a dashed outline.
    const draft = pageA.locator(byTestId('draft-block')).nth(2);
    await draft.waitFor();
    const look = await draft.evaluate(async (node) => {
      // After its fade-in (the same short appear animation as every block).
      await Promise.all(node.getAnimations({ subtree: true }).map((animation) => animation.finished));
      const style = getComputedStyle(node);
      const text = getComputedStyle(node.querySelector('.block-text')!);
      return {
        opacity: style.opacity,
        textOpacity: text.opacity,
        border: style.borderTopStyle,
        color: text.color,
        label: node.querySelector('[data-testid="draft-label"]')?.textContent,
      };
    });
    expect(look).toEqual({ opacity: '1', textOpacity: '1', border: 'dashed', color: 'rgb(29, 35, 48)', label: 'Draft · not saved yet' });
    expect(await draft.textContent()).toContain('First paragraph 3');
    // The viewport only: quick enough to catch the drafts before they are saved.
    await screenshot(pageA, 'generation-01-a-drafts', { fullPage: false });

    // B: who is generating, then a determinate bar over the chunks.
    await bPartWay;
    const banner = pageB.locator(byTestId('collab-generation'));
    await Promise.all([blockCount(pageA, BLOCKS), blockCount(pageB, BLOCKS)]);
    await banner.waitFor({ state: 'hidden', timeout: 10_000 });
    const seenB: string[] = await pageB.evaluate(() => (window as any).__banner);
    // The stages, then chunk 1, 2, 3 of 3 in order, then "all here", then hidden.
    const chunks = seenB.map((s) => /\[(\d)\/3\]$/.exec(s)?.[1]).filter(Boolean);
    expect(chunks).toEqual(['1', '2', '3']);
    expect(seenB.some((s) => /^Ada is generating… \[indeterminate\]$/.test(s))).toBe(true);
    expect(seenB.some((s) => /^Ada is sending the blocks… chunk 1 of 3 \[1\/3\]$/.test(s))).toBe(true);
    expect(seenB).toContain("Ada's blocks are all here. chunk 3 of 3 [3/3]");
    expect(seenB.at(-1)).toBe('hidden');
    // The requester follows it in the Generate panel: the banner never showed on A.
    expect((await pageA.evaluate(() => (window as any).__banner as string[])).filter((state) => state !== 'hidden')).toEqual([]);
  }, 60_000);

  test("A's connection drops mid-stream: the console resumes with Last-Event-ID, and every block arrives once", async () => {
    t.llm.push(turn('Second'), { text: 'Done.' });
    const resumed: string[] = [];
    pageA.on('request', (req) => {
      if (req.url().includes('/ai/generations/') && req.url().endsWith('/events')) resumed.push(req.headers()['last-event-id'] ?? 'none');
    });
    await pageA.locator(byTestId('prompt-input')).fill('Twenty-five more paragraphs');
    await pageA.locator(byTestId('generate-button')).click();
    await pageA
      .locator(`${byTestId('generation-event')}[data-event="tool_output"]`)
      .nth(4)
      .waitFor();

    // Cut everything between A and the server (the stream and the socket), then bring it back.
    await proxy.cut();
    // Down long enough that a resume attempt itself fails (refused) and the next one is tried.
    await pageA
      .locator(`${byTestId('generation-event')}[data-event="resumed"]`)
      .nth(1)
      .waitFor();
    await proxy.restore();

    await pageA
      .locator(`${byTestId('generation-event')}[data-event="complete"]`)
      .last()
      .waitFor({ timeout: 30_000 });
    await screenshot(pageA, 'generation-03-a-resumed');
    expect(await pageA.locator(byTestId('generation-state')).textContent()).toBe(`Done: ${BLOCKS} block(s).`);
    const log = await pageA
      .locator(byTestId('generation-event'))
      .evaluateAll((nodes) => nodes.map((n) => `${(n as HTMLElement).dataset.event} ${n.textContent}`));
    // The log starts with this generation.
    const second = log.filter((line) => line.startsWith('tool_output'));
    // Each of the 25 streamed blocks exactly once, in order, across the drop.
    expect(second.map((line) => /Second paragraph (\d+)/.exec(line)![1])).toEqual(Array.from({ length: BLOCKS }, (_, i) => String(i + 1)));
    expect(log.some((line) => line.includes('stream lost') || line.includes('ended early'))).toBe(false);
    expect(resumed.length).toBeGreaterThanOrEqual(1);
    expect(Number(resumed[0])).toBeGreaterThan(0);
    await blockCount(pageA, 2 * BLOCKS);
    await blockCount(pageB, 2 * BLOCKS);
    const stored = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: userA.accessToken });
    expect(stored.body.blocks).toHaveLength(2 * BLOCKS);
  }, 90_000);

  test('no script errors or failed requests on either page (but the refused reconnects while A was cut off)', () => {
    expect(problems.filter((problem) => !(problem.startsWith('A: ') && problem.includes('ERR_CONNECTION_REFUSED')))).toEqual([]);
  });
});

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import type { ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, screenshot, WAIT_MS } from '../support/browser';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { startStaticProxy, type StaticProxy } from '../support/static-proxy';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');

const threeBlocks: ChatTurn = { toolCalls: ['Goals', 'Budget', 'Timeline'].map((text) => ({ name: 'create_text', args: { text } })) };
const longTurn: ChatTurn = { toolCalls: Array.from({ length: 40 }, (_, i) => ({ name: 'create_text', args: { text: `paragraph ${i}` } })) };

/**
 * The React example (examples/react-canvas, built by Vite 7 from the packages' builds)
 * in Chromium against a live Switchboard: two users on one canvas through @switchboard/react's
 * hooks. A generates, both boards show the blocks in rank order; A stops a second generation
 * (nothing of it is stored); A undoes the first, and the blocks leave both boards.
 */
describe('React example (examples/react-canvas) with two users in Chromium', () => {
  let t: TestApp;
  let site: StaticProxy;
  let outDir: string;
  let browser: Browser;
  let pageA: Page;
  let pageB: Page;
  let userA: TestUser;
  let userB: TestUser;
  let canvasId: string;
  const problems: string[] = [];

  const board = (page: Page) => page.locator(`${byTestId('blocks')} > ${byTestId('block')}`).allTextContents();
  const boardIs = (page: Page, expected: string[]) =>
    page.waitForFunction(
      (want) =>
        JSON.stringify([...document.querySelectorAll('[data-testid="blocks"] > [data-testid="block"]')].map((n) => n.textContent)) ===
        JSON.stringify(want),
      expected,
      { timeout: WAIT_MS },
    );
  const generationIs = (page: Page, status: string) => page.locator(`${byTestId('generation-status')}[data-status="${status}"]`).waitFor();

  async function open(label: string, user: TestUser): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (error) => problems.push(`${label}: ${error.message}`));
    page.on(
      'response',
      (response) => response.status() >= 400 && problems.push(`${label}: ${response.status()} ${new URL(response.url()).pathname}`),
    );
    await page.goto(`${site.url}/#${canvasId}`);
    await page.locator(byTestId('email')).fill(user.email);
    await page.locator(byTestId('password')).fill('correct horse battery');
    await page.locator(byTestId('sign-in')).click();
    await page
      .locator(`${byTestId('status')}[data-state="live"]`)
      .waitFor()
      .catch(async (error: Error) => {
        throw new Error(
          `${label} did not go live: ${error.message}\npage: ${await page.locator('#root').innerHTML()}\nproblems: ${problems.join('; ')}`,
        );
      });
    return page;
  }

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'sb-react-example-'));
    // The example's production build (the packages' dist/ were built by the test run's globalSetup).
    const build = run(
      process.execPath,
      [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', 'examples/react-canvas', '--outDir', outDir, '--emptyOutDir'],
      { cwd: ROOT },
    );
    t = await startTestApp({ llmDelayMs: 60, script: [threeBlocks, { text: 'Done.' }], responder: () => longTurn });
    await build;
    site = await startStaticProxy(outDir, t.url);
    userA = await registerUser(t.api, 'Ada');
    userB = await registerUser(t.api, 'Bea');
    canvasId = await createCanvas(t.api, userA, 'React canvas');
    await addMember(t.api, userA, canvasId, userB, 'editor');
    browser = await launchChromium();
    pageA = await open('A', userA);
    pageB = await open('B', userB);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await t?.stop();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  test('both users are present on both screens (useCanvas presence)', async () => {
    for (const page of [pageA, pageB]) {
      for (const user of [userA, userB]) await page.locator(`${byTestId('presence-user')}[data-user-id="${user.id}"]`).waitFor();
    }
    await screenshot(pageA, 'react-01-presence');
  });

  test('A generates: A streams drafts, and both boards show the stored blocks in rank order', async () => {
    await pageA.locator(byTestId('prompt')).fill('Plan the launch');
    await pageA.locator(byTestId('generate')).click();
    await generationIs(pageA, 'completed');
    await boardIs(pageA, ['Goals', 'Budget', 'Timeline']);
    await boardIs(pageB, ['Goals', 'Budget', 'Timeline']);
    const ranks = await pageB
      .locator(`${byTestId('blocks')} > ${byTestId('block')}`)
      .evaluateAll((nodes) => nodes.map((n) => (n as HTMLElement).dataset.rank!));
    expect([...ranks].sort()).toEqual(ranks);
    expect(await pageA.locator(byTestId('generation-status')).textContent()).toContain('3 streamed');
    await screenshot(pageB, 'react-02-generated-B');
  });

  test('A stops a long generation part way: it ends cancelled, nothing of it is stored, both boards keep the first three', async () => {
    await pageA.locator(byTestId('prompt')).fill('Forty paragraphs');
    await pageA.locator(byTestId('generate')).click();
    await pageA.waitForFunction(() =>
      /[1-9]\d* streamed/.test(document.querySelector('[data-testid="generation-status"]')?.textContent ?? ''),
    );
    await pageA.locator(byTestId('stop')).click();
    await generationIs(pageA, 'cancelled');
    const streamed = Number((await pageA.locator(byTestId('generation-status')).textContent())!.match(/(\d+) streamed/)![1]);
    expect(streamed).toBeLessThan(40);
    const stored = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: userA.accessToken });
    expect(stored.body.blocks.map((block: { content: { text: string } }) => block.content.text)).toEqual(['Goals', 'Budget', 'Timeline']);
    expect(await board(pageA)).toEqual(['Goals', 'Budget', 'Timeline']);
    expect(await board(pageB)).toEqual(['Goals', 'Budget', 'Timeline']);
    await screenshot(pageA, 'react-03-stopped-A');
  });

  test('A undoes the completed generation: its blocks leave both boards', async () => {
    await pageA.locator(byTestId('undo')).click();
    await generationIs(pageA, 'undone');
    await boardIs(pageA, []);
    await boardIs(pageB, []);
    const stored = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: userA.accessToken });
    expect(stored.body.blocks).toEqual([]);
    await screenshot(pageB, 'react-04-undone-B');
    expect(problems).toEqual([]);
  });
});

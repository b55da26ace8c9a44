import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

/**
 * Exactly-once room events in the web console (real Chromium): the console reaches the server through a TCP proxy
 * the test cuts while blocks are being added, so its socket drops for real and reconnects when the
 * proxy is back. Every block written meanwhile must reach the board exactly once: the console
 * catches up by seq after the reconnect (recovered or not) and applies each event once.
 */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WAIT_MS = 30_000;
const byTestId = (id: string) => `[data-testid="${id}"]`;

describe('web console: no lost blocks across a dropped connection', () => {
  let t: TestApp;
  let proxy: TcpProxy;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  let canvasId: string;
  const scriptErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM_PATH))
      throw new Error(`Chromium not found at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`);
    t = await startTestApp();
    proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(t.url).port) });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (error) => scriptErrors.push(error.message));
    user = await registerUser(t.api, 'Cato');
    canvasId = await createCanvas(t.api, user, 'Churned');
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await t?.stop();
  });

  const addBlock = async (text: string) => {
    const res = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text } },
    });
    expect(res.status).toBe(201);
  };
  const boardState = () =>
    page.evaluate(() => {
      const list = document.querySelector<HTMLElement>('[data-testid="block-list"]')!;
      const ids = [...list.querySelectorAll<HTMLElement>('[data-testid="block"]')].map((node) => node.dataset.blockId);
      return {
        ids,
        texts: [...list.querySelectorAll('[data-testid="block"]')].map((node) => node.textContent?.trim()),
        lastSeq: list.dataset.lastSeq,
        applied: list.dataset.applied,
      };
    });

  test('blocks added while the socket is down arrive once it reconnects, each exactly once', async () => {
    await page.goto(`http://127.0.0.1:${proxy.port}`);
    await page.locator(byTestId('signin-email')).fill(user.email);
    await page.locator(byTestId('signin-password')).fill('correct horse battery');
    await page.locator(byTestId('signin-submit')).click();
    await page.locator(`${byTestId('canvas-list-item')}[data-canvas-id="${canvasId}"] ${byTestId('open-canvas')}`).click();
    await page.locator(`${byTestId('connection-status')}[data-state="live"]`).waitFor();
    await page.locator(`${byTestId('presence-user')}[data-user-id="${user.id}"]`).waitFor();

    // Live first: two blocks reach the board by their room events (seq 1, 2).
    await addBlock('before 1');
    await addBlock('before 2');
    await page.waitForFunction(
      () => document.querySelector<HTMLElement>('[data-testid="block-list"]')?.dataset.lastSeq === '2',
      undefined,
      { timeout: WAIT_MS },
    );

    // The connection drops in the middle of a run of writes and comes back before its end.
    await addBlock('during 1');
    await proxy.cut();
    await page.locator(`${byTestId('connection-status')}[data-state="offline"]`).waitFor();
    for (let i = 2; i <= 6; i += 1) await addBlock(`during ${i}`);
    await proxy.restore();
    await addBlock('after 1');
    await page.locator(`${byTestId('connection-status')}[data-state="live"]`).waitFor();
    await addBlock('after 2');

    await page.waitForFunction(
      () => document.querySelector<HTMLElement>('[data-testid="block-list"]')?.dataset.lastSeq === '10',
      undefined,
      { timeout: WAIT_MS },
    );
    const state = await boardState();
    const expected = ['before 1', 'before 2', 'during 1', 'during 2', 'during 3', 'during 4', 'during 5', 'during 6', 'after 1', 'after 2'];
    expect([...state.texts].sort()).toEqual([...expected].sort());
    expect(new Set(state.ids).size).toBe(10);
    // Ten room events since the join at seq 0, each handed to the board once.
    expect(state).toMatchObject({ lastSeq: '10', applied: '10' });
    expect(scriptErrors).toEqual([]);
  }, 120_000);

  test("the console's sequencer (web/canvas-sync.js, run in the page): a jump asks canvas:sync once its grace has passed, repeats are dropped, a resync reload holds live events", async () => {
    // A page of its own that may evaluate a dynamic import (the console's CSP rightly forbids eval).
    const lab = await (await browser.newContext({ bypassCSP: true })).newPage();
    await lab.goto(`${t.url}/console/styles.css`);
    const outcome = await lab.evaluate(async () => {
      // eslint-disable-next-line @typescript-eslint/no-implied-eval -- a dynamic import inside the page: swc would rewrite a literal import() to require()
      const { CanvasSync } = await (new Function('path', 'return import(path)') as (path: string) => Promise<any>)(
        '/console/canvas-sync.js',
      );
      const C = 'c1';
      const entry = (seq: number) => ({ seq, event: 'block_deleted', payload: { canvasId: C, blockId: `b${seq}`, seq } });
      const log: string[] = [];
      // Waits in the page for a line of the log (a gap is asked for after a grace of up to half a second).
      const until = async (line: string) => {
        for (const deadline = Date.now() + 5_000; !log.includes(line); await new Promise((resolve) => setTimeout(resolve, 10)))
          if (Date.now() > deadline) throw new Error(`never logged: ${line}`);
      };
      let finishReload: () => void = () => undefined;
      const sync = new CanvasSync({
        sync: async (_id: string, afterSeq: number) => {
          log.push(`sync after ${afterSeq}`);
          if (afterSeq < 5) return { ok: true, resync: false, events: [2, 3, 4].filter((n) => n > afterSeq).map(entry), lastSeq: 4 };
          return afterSeq === 5 ? { ok: true, resync: true, lastSeq: 9 } : { ok: true, resync: false, events: [], lastSeq: 9 };
        },
        apply: (_event: string, payload: { seq: number }) => log.push(`apply ${payload.seq}`),
        reload: () => new Promise<void>((resolve) => (finishReload = () => (log.push('reloaded'), resolve()))),
      });
      sync.start(C, 0);
      sync.loaded();
      sync.receive('block_deleted', entry(1).payload);
      sync.receive('block_deleted', entry(4).payload); // 2 and 3 were lost: asked for after the grace
      sync.receive('block_deleted', entry(1).payload); // a repeat
      await until('apply 4'); // the catch-up the jump started
      sync.receive('block_deleted', entry(5).payload);
      sync.receive('block_deleted', entry(11).payload); // a jump past what the server keeps
      await until('sync after 5');
      sync.receive('block_deleted', entry(10).payload); // arrives while the reload runs
      const beforeReload = [...log];
      finishReload();
      await until('apply 11');
      return { beforeReload, log, lastSeq: sync.lastSeq, applied: sync.applied };
    });
    expect(outcome.beforeReload).toEqual(['apply 1', 'sync after 1', 'apply 2', 'apply 3', 'apply 4', 'apply 5', 'sync after 5']);
    expect(outcome.log.slice(outcome.beforeReload.length)).toEqual(['reloaded', 'apply 10', 'apply 11']);
    expect(outcome).toMatchObject({ lastSeq: 11, applied: 7 });
  });
});

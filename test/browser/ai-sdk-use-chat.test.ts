import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { demoResponder } from '../../src/demo-model';
import { messageText } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, WAIT_MS } from '../support/browser';
import { registerUser } from '../support/http';
import { startStaticProxy, type StaticProxy } from '../support/static-proxy';
import { userWithDevice } from '../support/user-device';
import { waitUntil } from '../support/wait';

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

/**
 * `useChat` of `@ai-sdk/react` rendered by React in Chromium (test/browser/use-chat-app, bundled
 * by esbuild) against a live Switchboard behind one origin: a dangerous tool's approval button
 * decides the call and the answer streams on; a page reloaded while the answer is still coming
 * resumes it (`resume: true`).
 */
describe('useChat (AI SDK) rendered in Chromium', () => {
  let t: TestApp;
  let site: StaticProxy;
  let outDir: string;
  let browser: Browser;
  const devices: DeviceSimulator[] = [];
  const problems: string[] = [];
  let release: () => void = () => undefined;
  let holding = false;

  beforeAll(async () => {
    t = await startTestApp({
      env: { HITL_TIMEOUT_MS: '60000' },
      responder: async (req) => {
        const last = req.messages.filter((m) => m.role === 'user').at(-1);
        if (last && messageText(last).includes('[hold]')) {
          await new Promise<void>((done) => {
            release = done;
            holding = true;
          });
          return { text: 'The held answer, at last.' };
        }
        return demoResponder(req);
      },
    });
    outDir = await mkdtemp(join(tmpdir(), 'use-chat-'));
    await build({
      entryPoints: [resolve(__dirname, 'use-chat-app/main.tsx')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      jsx: 'automatic',
      outfile: join(outDir, 'app.js'),
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'silent',
    });
    await writeFile(join(outDir, 'index.html'), '<!doctype html><div id="root"></div><script type="module" src="/app.js"></script>');
    site = await startStaticProxy(outDir, t.url);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await site?.close();
    devices.forEach((device) => device.close());
    await t.stop();
    await rm(outDir, { recursive: true, force: true });
  });
  afterEach(() => {
    expect(problems).toEqual([]);
    problems.length = 0;
  });

  test('the approval button decides the tool call and the answer streams into the same message', async () => {
    const { user, device } = await userWithDevice(t.url, devices, { name: 'Ada', seed });
    const page = await openPage(browser, `${site.url}/?token=${user.accessToken}&chat=${randomUUID()}&tools=device`, 'ada', problems);
    await page.fill(byTestId('input'), `Delete task ${TASK_ID}`);
    await page.click(byTestId('send'));

    await page.waitForSelector(`${byTestId('tool')}[data-state="approval-requested"]`);
    expect(await page.textContent(byTestId('status'))).toBe('ready');
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
    await page.click(byTestId('approve'));

    await page.waitForSelector(`${byTestId('tool')}[data-state="output-available"]`);
    await page.waitForFunction(() => /delet/i.test(document.querySelector('[data-testid="message-assistant"]')?.textContent ?? ''));
    await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.textContent === 'ready');
    expect(await page.locator(byTestId('message-assistant')).count()).toBe(1);
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([expect.objectContaining({ data: { id: TASK_ID } })]);
  });

  test('a page reloaded mid-answer resumes it (resume: true) and shows it once', async () => {
    const user = await registerUser(t.api, 'Reloader');
    const chat = randomUUID();
    holding = false;
    const page = await openPage(browser, `${site.url}/?token=${user.accessToken}&chat=${chat}`, 'reloader', problems);
    await page.fill(byTestId('input'), '[hold] tell me something');
    await page.click(byTestId('send'));
    await waitUntil(() => holding, WAIT_MS);

    await page.reload();
    await page.waitForFunction(() =>
      ['submitted', 'streaming'].includes(document.querySelector('[data-testid="status"]')?.textContent ?? ''),
    );
    release();

    await page.waitForFunction(() => document.querySelector('[data-testid="text"]')?.textContent === 'The held answer, at last.');
    await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.textContent === 'ready');
    expect(await page.locator(byTestId('text')).allTextContents()).toEqual(['The held answer, at last.']);
  });
});

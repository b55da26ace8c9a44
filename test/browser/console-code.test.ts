import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, type TestUser } from '../support/http';

/**
 * The console's Code page in Chromium: a device serves a project folder; the page lists it, the
 * Coder's edit shows its diff with Approve, approving changes the file on disk, the plan and the
 * working agent show while the Orchestrator's steps run, and Undo in the changes list restores
 * the file.
 */
const MATH = 'export function add(a, b) {\n  return a - b;\n}\n';

describe('web console: the Code page', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  let device: DeviceConnection;
  let root: string;
  let history: string;
  const problems: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { HITL_TIMEOUT_MS: '60000' } });
    user = await registerUser(t.api, 'Ada');
    root = await mkdtemp(join(tmpdir(), 'sb-console-code-'));
    history = await mkdtemp(join(tmpdir(), 'sb-console-history-'));
    await mkdir(join(root, 'src'));
    await writeFile(join(root, 'src/math.js'), MATH);
    device = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      project: await projectTools({ root, historyDir: history, name: 'calc' }),
      reconnection: false,
    });
    browser = await launchChromium();
    page = await openPage(browser, t.url, 'A', problems);
    await signIn(page, user);
    await page.locator(byTestId('nav-code')).click();
    await page.locator(byTestId('code-view')).waitFor();
  }, 90_000);

  afterAll(async () => {
    device?.close();
    await browser?.close();
    await t?.stop();
    await Promise.all([root, history].filter(Boolean).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  test("the Coder's diff is approved on the page, the file changes, Undo restores it", async () => {
    await page.locator(`${byTestId('code-device')} option`, { hasText: `calc on ${device.deviceId}` }).waitFor({ state: 'attached' });
    t.llm.push(
      {
        toolCalls: [
          { name: 'edit_file', args: { path: 'src/math.js', edits: [{ search: '  return a - b;', replace: '  return a + b;' }] } },
        ],
      },
      { text: 'Fixed add().' },
    );
    await page.locator(byTestId('code-agent')).selectOption('coder');
    await page.locator(byTestId('code-input')).fill('Fix add');
    await page.locator(byTestId('code-send')).click();

    const diff = page.locator(byTestId('code-diff'));
    await diff.waitFor();
    expect(await diff.textContent()).toContain('-  return a - b;\n+  return a + b;');
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toBe(MATH);
    await screenshot(page, 'console-code-approval');
    await page.locator(byTestId('code-approve')).click();
    await page.locator(`${byTestId('code-answer')}[data-status="done"]`, { hasText: 'Fixed add().' }).waitFor();
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toContain('return a + b;');
    expect(await page.locator(byTestId('code-tool')).first().textContent()).toContain('edit_file');

    const change = page.locator(byTestId('code-change')).first();
    await change.waitFor();
    expect(await change.textContent()).toContain('src/math.js');
    await change.locator(byTestId('code-undo')).click();
    await page.locator(`${byTestId('code-change')}[data-undone="true"]`).waitFor();
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toBe(MATH);
  });

  test("the Orchestrator's plan shows its steps and the agent at work", async () => {
    t.llm.push(
      {
        toolCalls: [
          {
            name: 'plan_steps',
            args: {
              steps: [
                { agent: 'architect', task: 'Design multiply' },
                { agent: 'ask', task: 'Say where add is' },
              ],
            },
          },
        ],
      },
      { text: 'Two steps.' },
      { text: 'Design: multiply beside add.' },
      { text: 'add is in src/math.js.' },
    );
    await page.locator(byTestId('code-agent')).selectOption('orchestrator');
    await page.locator(byTestId('code-input')).fill('Plan and explain multiply');
    await page.locator(byTestId('code-send')).click();
    await page.locator(`${byTestId('code-answer')}[data-status="done"]`, { hasText: 'add is in src/math.js.' }).waitFor();
    const steps = page.locator(byTestId('code-plan-step'));
    expect(await steps.count()).toBe(2);
    expect(await steps.evaluateAll((nodes) => nodes.map((n) => (n as HTMLElement).dataset.status))).toEqual(['done', 'done']);
    expect(await page.locator(byTestId('code-state')).getAttribute('data-agent')).toBe('ask');
    expect(problems).toEqual([]);
  });
});

import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, request, type TestUser } from '../support/http';

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

  /** A Coder turn on the page whose edit of src/math.js is approved there; `answer` is the model's last words. */
  const approvedEdit = async (message: string, answer: string) => {
    await page.locator(`${byTestId('code-device')} option`, { hasText: `calc on ${device.deviceId}` }).waitFor({ state: 'attached' });
    t.llm.push(
      {
        toolCalls: [
          { name: 'edit_file', args: { path: 'src/math.js', edits: [{ search: '  return a - b;', replace: '  return a + b;' }] } },
        ],
      },
      { text: answer },
    );
    await page.locator(byTestId('code-agent')).selectOption('coder');
    await page.locator(byTestId('code-input')).fill(message);
    await page.locator(byTestId('code-send')).click();
    await page.locator(byTestId('code-approve')).click();
    const done = page.locator(`${byTestId('code-answer')}[data-status="done"]`);
    await done.waitFor();
    return done;
  };

  test('code in the answer and the help text shows as code, never as backticks', async () => {
    const answer = await approvedEdit('Fix add again', 'Fixed `add()` in `src/math.js`:\n```js\nreturn a + b;\n```\nA lone ` stays.');
    expect(await answer.locator('code').allTextContents()).toEqual(['add()', 'src/math.js']);
    expect(await answer.locator('pre').allTextContents()).toEqual(['return a + b;\n']);
    expect(await answer.textContent()).toBe('Fixed add() in src/math.js:\nreturn a + b;\n\nA lone ` stays.');
    const intro = page.locator(`${byTestId('code-view')} p.small`).first();
    expect(await intro.locator('code').allTextContents()).toEqual(['switchboard device --project .']);
    expect(await intro.textContent()).not.toContain('`');

    expect(problems).toEqual([]);
  });

  test('an undo reads as what it did, and can itself be undone', async () => {
    await writeFile(join(root, 'src/math.js'), MATH);
    await approvedEdit('Fix add once more', 'Fixed add().');
    // The edit, undone from the list; then the undo's own entry names what it did and can be undone too.
    const newest = async () =>
      (await request('GET', `${t.api}/devices/${device.deviceId}/changes`, { token: user.accessToken })).body.changes[0] as {
        changeId: string;
        tool: string;
      };
    const edit = await newest();
    expect(edit.tool).toBe('edit_file');
    const item = (changeId: string) => page.locator(`${byTestId('code-change')}[data-change-id="${changeId}"]`);
    await item(edit.changeId).locator(byTestId('code-undo')).click();
    await page.locator(`${byTestId('code-change')}[data-change-id="${edit.changeId}"][data-undone="true"]`).waitFor();
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toBe(MATH);
    const undo = await newest();
    expect(undo.tool).toBe('undo_change');
    await item(undo.changeId).waitFor();
    const text = (await item(undo.changeId).textContent())!;
    expect(text).toMatch(/^src\/math\.js restored by an undo of the change at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d · /);
    expect(text).not.toMatch(/ to ·/);
    const undoButton = item(undo.changeId).locator(byTestId('code-undo'));
    expect(await undoButton.isEnabled()).toBe(true);
    await undoButton.click();
    await page.locator(`${byTestId('code-change')}[data-change-id="${undo.changeId}"][data-undone="true"]`).waitFor();
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toContain('return a + b;');
    expect(problems).toEqual([]);
  });

  test('with no device serving a project, the page says how to serve one, the command shown as code', async () => {
    const other = await registerUser(t.api, 'Newcomer');
    const fresh = await openPage(browser, t.url, 'B', problems);
    try {
      await signIn(fresh, other);
      await fresh.locator(byTestId('nav-code')).click();
      const state = fresh.locator(`${byTestId('code-state')}[data-status="error"]`);
      await state.waitFor();
      expect(await state.textContent()).toBe('No device serves a project: run switchboard device --project . in a folder.');
      expect(await state.locator('code').allTextContents()).toEqual(['switchboard device --project .']);
    } finally {
      await fresh.context().close();
    }
    expect(problems).toEqual([]);
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

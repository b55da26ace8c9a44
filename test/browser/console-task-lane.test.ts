import type { Browser, Page } from 'playwright-core';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * The Assistant page's task lane and concluding a conversation, in Chromium: the lane collapses
 * (not closes) and keeps its answers and marks, a "Tasks (N)" pill reopens it, and the lane is kept
 * on the server (`pendingTaskLane`) so a reloaded page shows it as it was; a conversation is paused
 * and resumed in a new chat, another escalated with a reason, another resolved and its notes copied
 * to the clipboard.
 */
describe('web console: task lane and concluding', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  const problems: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder });
    user = await registerUser(t.api, 'Lane');
    browser = await launchChromium();
    page = await openPage(browser, t.url, 'L', problems);
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
    await signIn(page, user);
    await page.locator(byTestId('nav-assistant')).click();
    await page.locator(byTestId('assistant-view')).waitFor();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  /** A new conversation of one plain turn; answers its session id. */
  async function converse(message: string): Promise<string> {
    await page.locator(byTestId('assistant-new')).click();
    await page.locator(byTestId('assistant-mode')).selectOption('none');
    await page.locator(byTestId('assistant-input')).fill(message);
    await page.locator(byTestId('assistant-send')).click();
    await page
      .locator(`${byTestId('assistant-message')}[data-status="done"]`)
      .last()
      .waitFor({ timeout: 30_000 });
    await page.locator(`${byTestId('assistant-session')}.current`).waitFor();
    return (await page.locator(`${byTestId('assistant-session')}.current`).getAttribute('data-session-id'))!;
  }
  const session = async (id: string) => (await request('GET', `${t.api}/chat/sessions/${id}`, { token: user.accessToken })).body.session;

  test('the task lane collapses and reopens with its state, which the server keeps across a reload', async () => {
    const sessionId = await converse('The printer queue is stuck.');
    const lane = page.locator(byTestId('task-lane'));
    await lane.waitFor();

    await page.locator(byTestId('task-add-kind')).selectOption('question');
    await page.locator(byTestId('task-add-text')).fill('Which printer model is it?');
    await page.locator(byTestId('task-add')).click();
    await page.locator(byTestId('task-add-kind')).selectOption('action');
    await page.locator(byTestId('task-add-text')).fill('Restart the print spooler');
    await page.locator(byTestId('task-add')).click();
    await page.locator(byTestId('task-answer')).fill('HP LaserJet 4250');
    await page.locator(byTestId('task-done')).check();

    await page.locator(byTestId('task-lane-collapse')).click();
    await lane.waitFor({ state: 'hidden' });
    const pill = page.locator(byTestId('tasks-pill'));
    expect(await pill.textContent()).toBe('Tasks (2)');
    await pill.click();
    await lane.waitFor();
    expect(await pill.isHidden()).toBe(true);
    expect(await page.locator(byTestId('task-answer')).inputValue()).toBe('HP LaserJet 4250');
    expect(await page.locator(byTestId('task-done')).isChecked()).toBe(true);
    await page.locator(byTestId('task-lane-collapse')).click();
    await screenshot(page, 'task-lane-01-collapsed');

    // Kept on the server: what the page shows after a reload comes from the session.
    const kept = await eventually(
      () => session(sessionId),
      (s) => s.pendingTaskLane?.collapsed === true,
      5_000,
    );
    expect(kept.pendingTaskLane.items).toEqual([
      { id: expect.any(String), kind: 'question', text: 'Which printer model is it?', answer: 'HP LaserJet 4250' },
      { id: expect.any(String), kind: 'action', text: 'Restart the print spooler', done: true },
    ]);
    await page.reload();
    await page.locator(byTestId('nav-canvases')).click();
    await page.locator(byTestId('nav-assistant')).click();
    await page.locator(`${byTestId('assistant-session')}[data-session-id="${sessionId}"] button`).click();
    await pill.waitFor();
    expect(await lane.isHidden()).toBe(true);
    expect(await pill.textContent()).toBe('Tasks (2)');
    await pill.click();
    expect(await page.locator(byTestId('task-answer')).inputValue()).toBe('HP LaserJet 4250');
    expect(await page.locator(byTestId('task-done')).isChecked()).toBe(true);
    await screenshot(page, 'task-lane-02-reopened');
  }, 90_000);

  test('conclude: pause then resume in a new chat; escalate with a reason; resolve and copy the notes', async () => {
    const paused = await converse('Outlook keeps asking for the password.');
    await page.locator(byTestId('assistant-pause')).click();
    await page.locator(`${byTestId('assistant-session-status')}[data-status="paused"]`).waitFor();
    expect((await session(paused)).status).toBe('paused');
    await page.locator(byTestId('assistant-resume')).click();
    await page
      .locator(byTestId('assistant-resume-banner'))
      .filter({ hasText: /^Continues “/ })
      .waitFor();

    const escalated = await converse('The VPN drops for the whole office.');
    await page.locator(byTestId('assistant-escalate-reason')).fill('Needs the network team');
    await page.locator(byTestId('assistant-escalate')).click();
    await page.locator(`${byTestId('assistant-session-status')}[data-status="escalated"]`).waitFor();
    expect(await session(escalated)).toMatchObject({ status: 'escalated', escalationReason: 'Needs the network team' });

    const resolved = await converse('The scanner is not found on the network.');
    await page.locator(byTestId('assistant-resolution')).fill('Gave the scanner a fixed IP.');
    await page.locator(byTestId('assistant-resolve')).click();
    await page.locator(`${byTestId('assistant-notes')}[data-state="ready"]`).waitFor({ timeout: 30_000 });
    await page.locator(byTestId('assistant-notes-copy')).click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="assistant-notes-state"]')?.textContent === 'Copied to the clipboard.',
    );
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    const stored = await request('GET', `${t.api}/chat/sessions/${resolved}/documentation`, { token: user.accessToken });
    expect(copied).toBe(stored.body.documentation);
    await screenshot(page, 'task-lane-03-notes-copied');
    expect(problems).toEqual([]);
  }, 120_000);
});

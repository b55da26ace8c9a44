import type { Browser, Page } from 'playwright-core';
import { demoResponder } from '../../src/demo-model';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn, WAIT_MS } from '../support/browser';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * The console's Assistant page in Chromium against the demo model:
 * a chat without a device streams its answer in; "with my device" and no device online says so;
 * with the device online, a dangerous tool call shows inline as a sentence with its arguments
 * listed, and approving it lets the device run it and the answer finish. The Approvals panel shows
 * the same request and clears. A conversation is resolved and its notes stream in, stay when it is
 * reopened, and go with a chat resumed from it; chatflow sessions are not listed here.
 */
const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';

describe('web console: the Assistant page', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  let device: DeviceSimulator | undefined;
  const problems: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, llmDelayMs: 30, env: { HITL_TIMEOUT_MS: '60000' } });
    user = await registerUser(t.api, 'Ada');
    browser = await launchChromium();
    // The one refusal this test provokes on purpose: "with my device" while none is online (409).
    page = await openPage(browser, t.url, 'A', problems, (status, pathname) => status === 409 && pathname === '/api/v1/chat/stream');
    await signIn(page, user);
    await page.locator(byTestId('nav-assistant')).click();
    await page.locator(byTestId('assistant-view')).waitFor();
  }, 90_000);

  afterAll(async () => {
    device?.close();
    await browser?.close();
    await t?.stop();
  });

  const send = async (mode: 'auto' | 'device' | 'none', message: string) => {
    await page.locator(byTestId('assistant-mode')).selectOption(mode);
    await page.locator(byTestId('assistant-input')).fill(message);
    await page.locator(byTestId('assistant-send')).click();
  };

  test('without a device: the answer streams in piece by piece and ends with its usage', async () => {
    // Every distinct text the answer bubble shows, recorded in the page as it changes.
    await page.evaluate(() => {
      const texts: string[] = [];
      (window as any).__answerTexts = texts;
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="assistant-message"]:last-of-type .text')?.textContent ?? '';
        if (text && texts.at(-1) !== text) texts.push(text);
      }).observe(document.querySelector('[data-testid="assistant-log"]')!, { childList: true, subtree: true, characterData: true });
    });
    await send('none', 'Write one friendly sentence about launch planning');
    const answer = page.locator(`${byTestId('assistant-message')}[data-status="done"]`);
    await answer.waitFor({ timeout: 30_000 });
    const text = (await answer.locator('.text').textContent())!;
    expect(text.length).toBeGreaterThan(10);
    const seen: string[] = await page.evaluate(() => (window as any).__answerTexts);
    // Streamed: several growing prefixes before the whole answer.
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.at(-1)).toBe(text);
    expect(text.startsWith(seen[0])).toBe(true);
    expect(await page.locator(byTestId('assistant-state')).textContent()).toMatch(/tokens/);
    expect(await page.locator(byTestId('user-message')).textContent()).toContain('launch planning');
    // The conversation is listed, and marked as the open one.
    await page.locator(`${byTestId('assistant-session')}.current`).waitFor();
    await screenshot(page, 'assistant-01-plain-chat');
  }, 60_000);

  test('"with my device" while no device is online says how to fix it', async () => {
    await page.locator(byTestId('assistant-new')).click();
    await send('device', 'How many tasks do I have?');
    await page.waitForFunction(
      () => document.querySelector('[data-testid="assistant-state"]')?.textContent?.includes('None of your devices is online'),
      undefined,
      { timeout: WAIT_MS },
    );
    expect(await page.locator(byTestId('assistant-send')).isEnabled()).toBe(true);
  });

  test('with the device online, a delete shows inline for approval; Approve lets the device run it and the answer finish', async () => {
    const login = await request('POST', `${t.api}/auth/login`, { body: { email: user.email, password: 'correct horse battery' } });
    device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: login.body.accessToken,
      deviceId: 'ada-laptop',
      seed: { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] },
      reconnection: false,
    });
    await page.locator(byTestId('assistant-new')).click();
    await send('device', `Delete task ${TASK_ID}`);

    const card = page.locator(`${byTestId('chat-approval')}[data-status="pending"]`);
    await card.waitFor({ timeout: 30_000 });
    expect(await card.locator('.tool-sentence').textContent()).toBe(`delete_task wants to delete the task “${TASK_ID}”`);
    // The arguments as a readable list, not JSON.
    const args = card.locator(byTestId('chat-approval-arguments'));
    expect(await args.locator('dt').allTextContents()).toEqual(['Task id']);
    expect(await args.locator('dd[data-key="task_id"]').textContent()).toBe(TASK_ID);
    expect(await card.textContent()).not.toContain('{');
    // The same request waits in the Approvals panel (pushed over the /canvas socket).
    const panelCard = page.locator(byTestId('approval'));
    await panelCard.waitFor();
    expect(await panelCard.locator('.tool-sentence').textContent()).toBe(`delete_task wants to delete the task “${TASK_ID}”`);
    expect(await panelCard.locator('dd[data-key="task_id"]').textContent()).toBe(TASK_ID);
    await screenshot(page, 'assistant-02-approval-inline');
    expect(device.calls.filter((call) => call.action === 'delete')).toHaveLength(0);

    await card.locator(byTestId('chat-approve')).click();
    await page.locator(`${byTestId('chat-approval')}[data-status="approved"]`).waitFor();
    const answer = page.locator(`${byTestId('assistant-message')}[data-status="done"]`);
    await answer.waitFor({ timeout: 30_000 });
    expect(await answer.locator('.text').textContent()).toContain('deleted');
    expect(device.calls.filter((call) => call.action === 'delete')).toHaveLength(1);
    await page.locator(byTestId('approval')).waitFor({ state: 'detached' });
    await screenshot(page, 'assistant-03-approved-answer');
  }, 60_000);

  test('Stop ends a streaming answer: what was said so far stays, marked stopped', async () => {
    t.llm.push({ text: Array.from({ length: 300 }, (_, i) => `word${i}`).join(' ') });
    await page.locator(byTestId('assistant-new')).click();
    await send('none', 'Tell me a very long story');
    const streaming = page.locator(`${byTestId('assistant-message')}[data-status="streaming"]`);
    await page.waitForFunction(
      () =>
        (document.querySelector('[data-testid="assistant-message"][data-status="streaming"] .text')?.textContent ?? '').includes('word3'),
      undefined,
      { timeout: WAIT_MS },
    );
    await page.locator(byTestId('assistant-stop')).click();
    const stopped = page.locator(`${byTestId('assistant-message')}[data-status="cancelled"]`);
    await stopped.waitFor({ timeout: WAIT_MS });
    expect(await streaming.count()).toBe(0);
    const text = (await stopped.locator('.text').textContent())!;
    expect(text).toContain('word0');
    expect(text).not.toContain('word299');
    expect(await page.locator(byTestId('assistant-state')).textContent()).toBe('Stopped.');
    await page.locator(byTestId('assistant-stop')).waitFor({ state: 'hidden' });
  }, 60_000);

  test('a past conversation reopens from its history', async () => {
    const first = page.locator(byTestId('assistant-session')).last();
    await first.locator('button').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="user-message"]')?.textContent?.includes('launch planning'),
      undefined,
      { timeout: WAIT_MS },
    );
    expect(await page.locator(byTestId('assistant-message')).count()).toBe(1);
  });

  test('Resolve writes the notes live, in their four sections; they stay when the conversation is reopened', async () => {
    // The open conversation is the first one (reopened above). Every distinct notes text, as it changes.
    await page.evaluate(() => {
      const texts: string[] = [];
      (window as any).__notesTexts = texts;
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="assistant-notes"]')?.textContent ?? '';
        if (text && texts.at(-1) !== text) texts.push(text);
      }).observe(document.querySelector('[data-testid="assistant-session-panel"]')!, {
        childList: true,
        subtree: true,
        characterData: true,
      });
    });
    const sessionId = await page.locator(`${byTestId('assistant-session')}.current`).getAttribute('data-session-id');
    expect(await page.locator(byTestId('assistant-session-status')).textContent()).toBe('Open');
    await page.locator(byTestId('assistant-resolution')).fill('Shared the launch checklist');
    await page.locator(byTestId('assistant-resolve')).click();
    await page.locator(`${byTestId('assistant-notes')}[data-state="ready"]`).waitFor({ timeout: 30_000 });
    const headings = await page.locator(`${byTestId('assistant-notes')} h3`).allTextContents();
    expect(headings).toEqual(['Problem Summary', 'Steps Taken', 'Resolution', 'Next Steps']);
    const seen: string[] = await page.evaluate(() => (window as any).__notesTexts);
    // Streamed: the notes grew in several steps before they were whole.
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.at(-1)!.startsWith(seen[0])).toBe(true);
    expect(await page.locator(byTestId('assistant-session-status')).textContent()).toBe('Resolved');
    expect(await page.locator(byTestId('assistant-resolve-form')).isHidden()).toBe(true);
    await screenshot(page, 'assistant-04-notes');
    const stored = await request('GET', `${t.api}/chat/sessions/${sessionId}/documentation`, { token: user.accessToken });
    expect(stored.body.documentationStatus).toBe('ready');

    // Away and back: the stored notes show again.
    await page.locator(byTestId('assistant-new')).click();
    await page.locator(byTestId('assistant-notes')).waitFor({ state: 'hidden' });
    await page.locator(`${byTestId('assistant-session')}[data-session-id="${sessionId}"] button`).click();
    await page.locator(`${byTestId('assistant-notes')}[data-state="ready"]`).waitFor();
    expect(await page.locator(`${byTestId('assistant-notes')} h3`).allTextContents()).toEqual(headings);
  }, 60_000);

  test('Resume in a new chat starts a conversation that carries the notes to the model', async () => {
    const oldId = await page.locator(`${byTestId('assistant-session')}.current`).getAttribute('data-session-id');
    await page.locator(byTestId('assistant-resume')).click();
    expect(await page.locator(byTestId('assistant-resume-banner')).textContent()).toMatch(/^Continues “/);
    expect(await page.locator(byTestId('assistant-message')).count()).toBe(0);
    const requestsBefore = t.llm.chatRequests().length;
    await send('none', 'Where did we leave the launch?');
    await page.locator(`${byTestId('assistant-message')}[data-status="done"]`).waitFor({ timeout: 30_000 });
    await page.locator(`${byTestId('assistant-session')}.current`).waitFor();
    const newId = await page.locator(`${byTestId('assistant-session')}.current`).getAttribute('data-session-id');
    expect(newId).not.toBe(oldId);
    const session = await request('GET', `${t.api}/chat/sessions/${newId}`, { token: user.accessToken });
    expect(session.body.session.context.resumedFrom.sessionId).toBe(oldId);
    // The model was given the earlier notes.
    const sent = JSON.stringify(
      t.llm
        .chatRequests()
        .slice(requestsBefore)
        .map((r) => r.messages),
    );
    expect(sent).toContain('Problem Summary');
  }, 60_000);

  test("a chatflow's sessions are not listed among the assistant's conversations", async () => {
    const flow = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'chatflow', name: 'Helpdesk', definition: { systemPrompt: 'You help.' } },
    });
    const turn = await request('POST', `${t.api}/flows/${flow.body.flow.id}/chat`, { token: user.accessToken, body: { message: 'hi' } });
    expect(turn.status).toBe(200);
    await page.locator(byTestId('nav-canvases')).click();
    await page.locator(byTestId('nav-assistant')).click();
    await page.locator(byTestId('assistant-session')).first().waitFor();
    const listed = await page
      .locator(byTestId('assistant-session'))
      .evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.sessionId));
    expect(listed.length).toBeGreaterThan(0);
    expect(listed).not.toContain(turn.body.sessionId);
  }, 60_000);

  test('no script errors or unexpected failed requests', () => {
    expect(problems).toEqual([]);
  });
});

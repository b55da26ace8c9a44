import type { Browser, Page } from 'playwright-core';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * The Flows page's control-flow nodes in a real Chromium against the whole app: an agentflow with
 * a condition, a foreach and a loop built in the form (a branch that leads nowhere, then a branch
 * whose condition does not parse, each refused by the API next to its field and marked on its node
 * and in the graph), saved as the form says, drawn with labelled branch edges, and run: the
 * untaken branch's node is skipped, the foreach's items and the loop's iterations are shown. A
 * subflow node picks another agentflow from a list, its input keys filled in.
 */
const WAIT_MS = 20_000;

/** Each node answers with the first words of its prompt, so outputs are known and distinct. */
function responder(req: ChatRequest) {
  const last = req.messages.at(-1);
  const prompt = typeof last?.content === 'string' ? last.content : '';
  return { text: `Answer to: ${prompt.split(/\s+/).slice(0, 6).join(' ')}` };
}

describe('web console: control-flow nodes in the flow editor, in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  let flowId: string;
  const problems: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder, llmDelayMs: 20 });
    user = await registerUser(t.api, 'Cora');
    browser = await launchChromium();
    // The refusals this test provokes on purpose: definitions the API finds wrong.
    page = await openPage(browser, t.url, 'flow-control', problems, (status, pathname) => status === 400 && pathname === '/api/v1/flows');
    page.setDefaultTimeout(WAIT_MS);
    await signIn(page, user);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  const view = () => page.locator(byTestId('flows-view'));
  const node = (index: number) => page.locator(`${byTestId('flow-node-editor')}[data-index="${index}"]`);
  const branch = (index: number, j: number) => node(index).locator(`${byTestId('node-branch')}[data-index="${j}"]`);
  const fieldError = (index: number, path: string) => node(index).locator(`[data-path="${path}"] > ${byTestId('field-error')}`);
  /** Adds a node at the end and gives it an id (and a kind). */
  const addNode = async (index: number, id: string, kind?: string) => {
    await view().getByRole('button', { name: 'Add node' }).click();
    await node(index).getByLabel('Id').fill(id);
    await node(index).getByLabel('Id').blur();
    if (kind) await node(index).locator(byTestId('node-kind')).selectOption(kind);
  };

  test('a condition, a foreach and a loop built in the form; broken branches are refused next to their fields and nodes', async () => {
    await page.getByRole('link', { name: 'Flows' }).click();
    await view().getByLabel('Type').selectOption('agentflow');
    await view().getByLabel('Name').fill('Triage');

    // check: a condition whose branch "urgent" leads to escalate, else to answers.
    await node(0).getByLabel('Id').fill('check');
    await node(0).getByLabel('Id').blur();
    await node(0).locator(byTestId('node-kind')).selectOption('condition');
    await branch(0, 0).getByLabel('Branch name').fill('urgent');
    await branch(0, 0).getByLabel('Branch name').blur();
    await branch(0, 0).getByLabel('When').fill("input.priority == 'high'");
    await addNode(1, 'escalate');
    await node(1).getByLabel('Prompt').fill('Escalate the {{input.priority}} case');
    // answers: a foreach over the input's questions, after the condition only (its else branch).
    await addNode(2, 'answers', 'foreach');
    await node(2).getByRole('checkbox', { name: 'escalate' }).uncheck();
    await node(2).getByLabel('Items').fill('input.questions');
    await node(2).getByLabel('Prompt').fill('Reply to {{item}}');
    await node(2).getByLabel('At most this many at once').fill('2');
    // done: a loop after both branches.
    await addNode(3, 'done', 'loop');
    await node(3).getByRole('checkbox', { name: 'escalate' }).check();
    await node(3).getByLabel('Prompt').fill('Polish {{loop.previous}} with {{nodes.answers.output}} and {{nodes.escalate.output}}');
    await node(3).getByLabel('Max iterations').fill('2');
    await node(3).getByLabel('Stop when').fill("output contains 'final'");
    await node(0).locator('[data-path="nodes.0.else"]').getByRole('checkbox', { name: 'answers' }).check();

    // The branch "urgent" leads nowhere yet: refused, next to its targets, the node and graph marked.
    await view().getByRole('button', { name: 'Create flow' }).click();
    await fieldError(0, 'nodes.0.branches.0.to').waitFor();
    expect(await node(0).locator(byTestId('node-problems')).textContent()).toBe('1 problem');
    expect(await page.locator(`${byTestId('flow-node')}[data-node-id="check"]`).getAttribute('data-invalid')).toBe('true');
    expect(await page.locator(`${byTestId('flow-node')}[data-node-id="answers"]`).getAttribute('data-invalid')).toBe('false');
    expect(await page.locator(byTestId('flow-errors')).textContent()).toContain('node “check”');
    expect(await page.locator(byTestId('flow-list-item')).count()).toBe(0);
    await screenshot(page, 'flow-control-01-branch-leads-nowhere');

    // Then a condition that does not parse: refused next to it; nothing saved either time.
    await branch(0, 0).getByRole('checkbox', { name: 'escalate' }).check();
    await branch(0, 0).getByLabel('When').fill("input.priority = 'high'");
    await view().getByRole('button', { name: 'Create flow' }).click();
    await fieldError(0, 'nodes.0.branches.0.when').waitFor();
    expect(await fieldError(0, 'nodes.0.branches.0.when').textContent()).toMatch(/not a valid expression/);
    expect(await fieldError(0, 'nodes.0.branches.0.to').isHidden()).toBe(true);
    expect((await request('GET', `${t.api}/flows`, { token: user.accessToken })).body.flows).toEqual([]);

    await branch(0, 0).getByLabel('When').fill("input.priority == 'high'");
    await view().getByRole('button', { name: 'Create flow' }).click();
    await page.waitForURL(/#\/flows\/[0-9a-f-]{36}$/);
    flowId = /#\/flows\/([0-9a-f-]{36})$/.exec(page.url())![1];
    const saved = (await request('GET', `${t.api}/flows/${flowId}`, { token: user.accessToken })).body.flow.definition;
    expect(saved).toEqual({
      nodes: [
        {
          id: 'check',
          type: 'condition',
          branches: [{ name: 'urgent', when: "input.priority == 'high'", to: ['escalate'] }],
          else: ['answers'],
        },
        { id: 'escalate', prompt: 'Escalate the {{input.priority}} case', dependsOn: ['check'] },
        { id: 'answers', type: 'foreach', items: 'input.questions', prompt: 'Reply to {{item}}', concurrency: 2 },
        {
          id: 'done',
          type: 'loop',
          prompt: 'Polish {{loop.previous}} with {{nodes.answers.output}} and {{nodes.escalate.output}}',
          maxIterations: 2,
          until: "output contains 'final'",
          dependsOn: ['answers', 'escalate'],
        },
      ],
      output: 'done',
    });

    // The graph draws each branch as an edge labelled with its name, and says it in words.
    const edge = (from: string, to: string) => page.locator(`${byTestId('flow-edge')}[data-from="${from}"][data-to="${to}"]`);
    await edge('check', 'escalate').waitFor({ state: 'attached' });
    expect(await edge('check', 'escalate').getAttribute('data-branch')).toBe('urgent');
    expect(await edge('check', 'escalate').locator('.edge-label').textContent()).toBe('urgent');
    expect(await edge('check', 'answers').getAttribute('data-branch')).toBe('else');
    expect(await edge('answers', 'done').getAttribute('data-branch')).toBeNull();
    expect(await page.locator(byTestId('flow-edge')).count()).toBe(4);
    expect(await page.locator(`${byTestId('flow-branch')}[data-branch="urgent"]`).getAttribute('data-to')).toBe('escalate');
    await page.locator(byTestId('flow-graph')).scrollIntoViewIfNeeded();
    await screenshot(page, 'flow-control-02-graph', { fullPage: false });
    // The run form asks for the inputs the conditions and items read, too.
    expect(
      await page.locator(byTestId('flow-input-field')).evaluateAll((areas) => areas.map((a) => (a as HTMLElement).dataset.key)),
    ).toEqual(['priority', 'questions']);
  }, 90_000);

  test('a run marks the untaken branch skipped and shows the foreach’s items and the loop’s iterations', async () => {
    await view().getByLabel('priority').fill('low');
    await view().getByLabel('questions').fill('["Why now?", "Who pays?", "When is it due?"]');
    await view().getByRole('button', { name: 'Run' }).click();
    await page.locator(`${byTestId('execution-status')}[data-status="completed"]`).waitFor();
    const card = (id: string) => page.locator(`${byTestId('execution-node')}[data-node-id="${id}"]`);
    expect(await card('check').locator(byTestId('execution-node-branch')).getAttribute('data-branch')).toBe('else');
    expect(await card('check').locator(byTestId('execution-node-branch')).textContent()).toBe('Took branch “else” → answers');
    expect(await card('escalate').getAttribute('data-status')).toBe('skipped');
    await card('escalate').locator(byTestId('execution-node-skipped')).waitFor();
    const items = card('answers').locator(byTestId('execution-node-items'));
    await page
      .locator(`${byTestId('execution-node')}[data-node-id="answers"] ${byTestId('execution-node-items')}[data-done="3"]`)
      .waitFor();
    expect(await items.getAttribute('data-total')).toBe('3');
    expect(
      await card('answers')
        .locator(`${byTestId('execution-item')}[data-done="true"]`)
        .count(),
    ).toBe(3);
    expect(
      await card('answers')
        .locator(`${byTestId('execution-item')}[data-index="1"] pre`)
        .textContent(),
    ).toBe('Answer to: Reply to Who pays?');
    // The loop ran to its bound (its stop condition never held).
    await page
      .locator(`${byTestId('execution-node')}[data-node-id="done"] ${byTestId('execution-node-iterations')}[data-done="2"]`)
      .waitFor();
    expect(await card('done').locator(byTestId('execution-node-iterations')).textContent()).toBe('Iteration 2 of at most 2');
    await screenshot(page, 'flow-control-03-execution');
  }, 60_000);

  test('a subflow node picks another agentflow from a list, with the input keys it reads ready to fill', async () => {
    const child = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Escalation desk',
        definition: { nodes: [{ id: 'note', prompt: 'Write a handoff for {{input.summary}}' }], output: 'note' },
      },
    });
    expect(child.status).toBe(201);
    await page.goto(`${t.url}/#/flows/${flowId}`);
    await node(1).waitFor();
    await node(1).locator(byTestId('node-kind')).selectOption('subflow');
    await node(1).locator(byTestId('node-subflow')).selectOption({ label: 'Escalation desk' });
    await node(1)
      .locator(`${byTestId('subflow-input')}[data-key="summary"]`)
      .fill('A {{input.priority}} case');
    await node(1).getByLabel('Version').fill('1');
    await view().getByRole('button', { name: 'Save changes' }).click();
    await page.locator(byTestId('notice')).filter({ hasText: 'Flow saved.' }).waitFor();
    const saved = (await request('GET', `${t.api}/flows/${flowId}`, { token: user.accessToken })).body.flow.definition;
    expect(saved.nodes[1]).toEqual({
      id: 'escalate',
      type: 'subflow',
      flowId: child.body.flow.id,
      version: 1,
      input: { summary: 'A {{input.priority}} case' },
      dependsOn: ['check'],
    });
    expect(await page.locator(`${byTestId('flow-node')}[data-node-id="escalate"]`).textContent()).toContain('runs “Escalation desk” v1');
  }, 60_000);

  test('a router’s branches are edited with descriptions; a renamed target follows in its branch and its edge', async () => {
    await view().getByRole('link', { name: 'New flow' }).click();
    await page.waitForURL(/#\/flows$/);
    // The address changes at once; the flow open before is on the page until the empty form replaces it.
    await view().getByRole('button', { name: 'Create flow' }).waitFor();
    await view().getByLabel('Name').fill('Desk');
    await node(0).getByLabel('Id').fill('triage');
    await node(0).getByLabel('Id').blur();
    await node(0).locator(byTestId('node-kind')).selectOption('router');
    await node(0).getByLabel('Question for the router').fill('Which team handles: {{input.message}}');
    await addNode(1, 'billing');
    await node(1).getByLabel('Prompt').fill('Answer the billing question {{input.message}}');
    await addNode(2, 'other');
    await node(2).getByRole('checkbox', { name: 'billing' }).uncheck();
    await node(2).getByRole('checkbox', { name: 'triage' }).check();
    await node(2).getByLabel('Prompt').fill('Write a handoff for {{input.message}}');
    await branch(0, 0).getByLabel('Branch name').fill('money');
    await branch(0, 0).getByLabel('Description').fill('payments, invoices, refunds');
    await branch(0, 0).getByRole('checkbox', { name: 'billing' }).check();
    await branch(0, 1).getByLabel('Branch name').fill('rest');
    await branch(0, 1).getByRole('checkbox', { name: 'other' }).check();
    // Ticking a node under one branch unticks it under the other.
    await branch(0, 1).getByRole('checkbox', { name: 'billing' }).check();
    expect(await branch(0, 0).getByRole('checkbox', { name: 'billing' }).isChecked()).toBe(false);
    await branch(0, 0).getByRole('checkbox', { name: 'billing' }).check();
    expect(await branch(0, 1).getByRole('checkbox', { name: 'billing' }).isChecked()).toBe(false);
    await node(2).getByLabel('Id').fill('handoff');
    await node(2).getByLabel('Id').blur();
    await view().getByLabel('Output node').selectOption('billing');
    await view().getByRole('button', { name: 'Create flow' }).click();
    await page.waitForURL(/#\/flows\/[0-9a-f-]{36}$/);
    const id = /#\/flows\/([0-9a-f-]{36})$/.exec(page.url())![1];
    const saved = (await request('GET', `${t.api}/flows/${id}`, { token: user.accessToken })).body.flow.definition;
    expect(saved.nodes[0]).toEqual({
      id: 'triage',
      type: 'router',
      prompt: 'Which team handles: {{input.message}}',
      branches: [
        { name: 'money', description: 'payments, invoices, refunds', to: ['billing'] },
        { name: 'rest', to: ['handoff'] },
      ],
    });
    expect(saved.nodes[2]).toEqual({ id: 'handoff', prompt: 'Write a handoff for {{input.message}}', dependsOn: ['triage'] });
    const edge = page.locator(`${byTestId('flow-edge')}[data-from="triage"][data-to="handoff"]`);
    await edge.waitFor({ state: 'attached' });
    expect(await edge.getAttribute('data-branch')).toBe('rest');
  }, 60_000);

  test('the page raised no script errors, CSP violations or unexpected failed requests', () => {
    expect(problems).toEqual([]);
  });
});

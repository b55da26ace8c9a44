import type { Browser, Page } from 'playwright-core';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * The console's Flows page in a real Chromium against the whole app (API, workers, Redis, PGlite)
 * and a scripted model that answers slowly enough to watch: an agentflow built in the form (a
 * problem the API finds shown next to its field), run from its input fields and followed live on
 * its execution page (per node: prompt, output, tokens, timing), cancelled mid-run; a chatflow
 * built in the form, chatted with (streamed), embedded (snippet, preview of the real widget,
 * origins changed, revoked).
 */
const WAIT_MS = 20_000;

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';

/** Released once the cancel test has cancelled: until then a prompt about puffins gets no answer. */
let releasePuffins: () => void = () => undefined;
const puffinsHeld = new Promise<void>((resolve) => (releasePuffins = resolve));

/**
 * Each node answers with the first words of its prompt, so outputs are known and distinct; a
 * prompt "Delete task <id>" calls `delete_task` first, then says it is done. A prompt about puffins
 * is held unanswered, so its node is still running whenever the page gets to show it.
 */
function responder(request: ChatRequest) {
  const last = request.messages.at(-1);
  if (last?.role === 'tool') return { text: 'Done: the task is deleted.' };
  const prompt = typeof last?.content === 'string' ? last.content : '';
  if (prompt.includes('puffins')) return puffinsHeld.then(() => ({ text: 'Answer to: puffins' }));
  // A topic of "unanswerable" makes the provider refuse the request (a 400 no retry can mend).
  if (prompt.includes('unanswerable')) return { error: { status: 400, message: 'The request was refused by the provider.' } };
  const deletion = /^Delete task ([0-9a-f-]{36})/.exec(prompt);
  if (deletion) return { toolCalls: [{ name: 'delete_task', args: { task_id: deletion[1] } }] };
  return { text: `Answer to: ${prompt.split(/\s+/).slice(0, 6).join(' ')}` };
}

type Seen = Array<{ id: string; status: string }>;

describe('web console: the Flows page in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  let agentflowId: string;
  let device: DeviceSimulator | undefined;
  const problems: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder, llmDelayMs: 60 });
    user = await registerUser(t.api, 'Flo');
    browser = await launchChromium();
    // The refusals this test provokes on purpose: a definition the API finds wrong, bad embed origins.
    page = await openPage(browser, t.url, 'flows', problems, (status, pathname) => status === 400 && /^\/api\/v1\/flows/.test(pathname));
    page.setDefaultTimeout(WAIT_MS);
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
    await signIn(page, user);
  }, 60_000);

  afterAll(async () => {
    releasePuffins();
    device?.close();
    await browser?.close();
    await t?.stop();
  });

  /** Reads the saved agentflow until its definition passes `done`. */
  const eventuallyDefinition = (done: (definition: { httpTools?: Array<{ credential?: string }> }) => boolean) =>
    eventually(async () => (await request('GET', `${t.api}/flows/${agentflowId}`, { token: user.accessToken })).body.flow.definition, done);

  /** The Flows page (the console's other pages stay in the DOM, hidden). */
  const view = () => page.locator(byTestId('flows-view'));
  const node = (index: number) => page.locator(`${byTestId('flow-node-editor')}[data-index="${index}"]`);

  test('an agentflow built in the form: a problem the API finds is shown next to its field; the fixed flow is saved as the form says', async () => {
    await page.getByRole('link', { name: 'Flows' }).click();
    await page.locator(byTestId('flows-view')).waitFor();
    await view().getByLabel('Type').selectOption('agentflow');
    await view().getByLabel('Name').fill('Research brief');
    // A new flow opens with one empty step; the example has four nodes: drop the last, then rename
    // one (the references follow).
    expect(await page.locator(byTestId('flow-node-editor')).count()).toBe(1);
    await view().getByRole('button', { name: 'Start from an example' }).click();
    expect(await page.locator(byTestId('flow-node-editor')).count()).toBe(4);
    await node(3).getByRole('button', { name: 'Remove node' }).click();
    expect(await page.locator(byTestId('flow-node-editor')).count()).toBe(3);
    await node(1).getByLabel('Id').fill('readers');
    await node(1).getByLabel('Id').blur();
    expect(await node(2).getByLabel('Prompt').inputValue()).toContain('{{nodes.readers.output}}');
    expect(await node(2).getByRole('checkbox', { name: 'readers' }).isChecked()).toBe(true);
    await view().getByLabel('Output node').selectOption('outline');
    await node(0).getByLabel('Model').selectOption({ label: 'scripted · scripted-model' });
    // A prompt that reads a node it does not run after: the API says so, next to that prompt.
    await node(0).getByLabel('Prompt').fill('List three facts about {{input.topic}} and {{nodes.outline.output}}');
    await view().getByRole('button', { name: 'Create flow' }).click();

    const promptField = node(0).locator('[data-path="nodes.0.prompt"]');
    await promptField.locator(`${byTestId('field-error')}:visible`).waitFor();
    expect(await promptField.locator(byTestId('field-error')).textContent()).toMatch(/outline/);
    expect(await node(0).getByLabel('Prompt').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator(byTestId('flow-errors')).textContent()).toMatch(/marked next to the fields/);
    expect(await page.locator(byTestId('flow-list-item')).count()).toBe(0);
    await screenshot(page, 'flows-01-problem-next-to-field');

    await node(0).getByLabel('Prompt').fill('List three facts about {{input.topic}}');
    await view().getByRole('button', { name: 'Create flow' }).click();
    await page.waitForURL(/#\/flows\/[0-9a-f-]{36}$/);
    agentflowId = /#\/flows\/([0-9a-f-]{36})$/.exec(page.url())![1];
    await page.locator(byTestId('flow-list-item')).filter({ hasText: 'Research brief' }).waitFor();
    const saved = (await request('GET', `${t.api}/flows/${agentflowId}`, { token: user.accessToken })).body.flow.definition;
    expect(saved.output).toBe('outline');
    expect(saved.nodes.map((n: { id: string }) => n.id)).toEqual(['facts', 'readers', 'outline']);
    expect(saved.nodes[0]).toEqual({
      id: 'facts',
      prompt: 'List three facts about {{input.topic}}',
      model: { provider: 'scripted', model: 'scripted-model' },
    });
    expect(saved.nodes[2].dependsOn).toEqual(['facts', 'readers']);
    // The graph and the read-only JSON follow the form.
    await page.locator(`${byTestId('flow-node')}[data-node-id="outline"]`).waitFor();
    expect(JSON.parse((await page.locator(byTestId('flow-json')).textContent())!)).toEqual(saved);
    expect(
      await page.locator(byTestId('flow-input-field')).evaluateAll((areas) => areas.map((a) => (a as HTMLElement).dataset.key)),
    ).toEqual(['topic']);
  }, 60_000);

  test('Run opens the execution page, which follows the nodes live and shows each one’s prompt, output, tokens and timing', async () => {
    await view().getByLabel('topic').fill('otters');
    // Every node status the page shows, in order, recorded as the page changes.
    await page.evaluate(() => {
      const seen: Array<{ id: string; status: string }> = [];
      (window as unknown as { flowStatuses: typeof seen }).flowStatuses = seen;
      const last = new Map<string, string>();
      new MutationObserver(() => {
        for (const item of document.querySelectorAll<HTMLElement>('[data-testid="execution-node"]')) {
          const id = item.dataset.nodeId!;
          if (last.get(id) === item.dataset.status) continue;
          seen.push({ id, status: item.dataset.status! });
          last.set(id, item.dataset.status!);
        }
      }).observe(document.querySelector('[data-testid="flow-execution-view"]')!, { childList: true, subtree: true, attributes: true });
    });
    await view().getByRole('button', { name: 'Run' }).click();
    await page.waitForURL(/#\/flows\/[0-9a-f-]{36}\/executions\/[0-9a-f-]{36}$/);
    await page.locator(`${byTestId('execution-node')}[data-node-id="facts"][data-status="completed"]`).waitFor();
    await screenshot(page, 'flows-02-running');
    await page.locator(`${byTestId('execution-status')}[data-status="completed"]`).waitFor();
    await screenshot(page, 'flows-03-completed');

    const seen = await page.evaluate(() => (window as unknown as { flowStatuses: Seen }).flowStatuses);
    const statuses = (id: string) => seen.filter((s) => s.id === id).map((s) => s.status);
    for (const id of ['facts', 'readers', 'outline']) {
      expect(statuses(id).at(-1)).toBe('completed');
      expect(statuses(id).filter((s) => s !== 'pending' && s !== 'running' && s !== 'completed')).toEqual([]);
    }
    // Live: at least one node was seen running before it completed.
    expect(seen.some((s) => s.status === 'running')).toBe(true);
    // outline ran after both of its inputs had completed.
    const firstIndex = (id: string, status: string) => seen.findIndex((s) => s.id === id && s.status === status);
    expect(firstIndex('outline', 'completed')).toBeGreaterThan(
      Math.max(firstIndex('facts', 'completed'), firstIndex('readers', 'completed')),
    );

    const outline = page.locator(`${byTestId('execution-node')}[data-node-id="outline"]`);
    expect(await outline.locator(byTestId('execution-node-output')).textContent()).toMatch(/^Answer to: Outline a short article/);
    expect(await outline.locator(byTestId('execution-node-tokens')).textContent()).toMatch(/\d+ in \/ \d+ out/);
    expect(await outline.locator(byTestId('execution-node-time')).textContent()).toMatch(/^\d+\.\d\d s$/);
    // The prompt it was given, with the outputs of the nodes it read filled in.
    expect(await outline.locator(byTestId('execution-node-input')).textContent()).toContain('Answer to: List three facts about otters');
    expect(await page.locator(byTestId('execution-output')).textContent()).toMatch(/^Answer to: Outline a short article/);
    expect(await page.locator(`${byTestId('execution-input')} dd[data-key="topic"]`).textContent()).toBe('otters');

    // Listed, and opened again from the list it shows the stored record.
    const listed = page.locator(byTestId('flow-execution')).first();
    await page.waitForFunction(() => document.querySelector('[data-testid="flow-execution"]')?.getAttribute('data-status') === 'completed');
    await view().getByRole('link', { name: '← Research brief' }).click();
    await page.locator(byTestId('flow-execution-view')).waitFor({ state: 'hidden' });
    await listed.click();
    await page.locator(`${byTestId('execution-node')}[data-node-id="outline"][data-status="completed"]`).waitFor();
  }, 60_000);

  test('Cancel on the execution page stops it: the nodes not yet run end cancelled', async () => {
    await view().getByRole('link', { name: '← Research brief' }).click();
    await view().getByLabel('topic').fill('puffins');
    await view().getByRole('button', { name: 'Run' }).click();
    await page.locator(`${byTestId('execution-node')}[data-node-id="facts"][data-status="running"]`).waitFor();
    await view().getByRole('button', { name: 'Cancel' }).click();
    await page.locator(`${byTestId('execution-status')}[data-status="cancelled"]`).waitFor();
    await page.locator(`${byTestId('execution-node')}[data-node-id="outline"][data-status="cancelled"]`).waitFor();
    releasePuffins();
    expect(await view().getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    await screenshot(page, 'flows-04-cancelled');
    await page.waitForFunction(() => document.querySelector('[data-testid="flow-execution"]')?.getAttribute('data-status') === 'cancelled');
    expect(await page.locator(byTestId('flow-execution')).count()).toBe(2);
  }, 60_000);

  test('a node whose model call fails shows its error on the execution page; the nodes after it do not run', async () => {
    await view().getByRole('link', { name: '← Research brief' }).click();
    await view().getByLabel('topic').fill('unanswerable');
    await view().getByRole('button', { name: 'Run' }).click();
    await page.locator(`${byTestId('execution-status')}[data-status="failed"]`).waitFor();
    const failed = page.locator(`${byTestId('execution-node')}[data-status="failed"]`).first();
    await failed.getByText(/^llm_unavailable: /).waitFor();
    await page.getByText(/^node_failed: /).waitFor();
    // The node that reads the failed one's output never ran.
    expect(await page.locator(`${byTestId('execution-node')}[data-node-id="outline"]`).getAttribute('data-status')).not.toBe('completed');
    await screenshot(page, 'flows-05-node-failed');
  }, 60_000);

  test('an HTTP tool whose URL is on an origin the flow does not list is refused next to its URL; listing the origin saves it', async () => {
    await view().getByRole('link', { name: '← Research brief' }).click();
    await view().getByRole('button', { name: 'Add HTTP tool' }).click();
    const tool = view().locator(byTestId('http-tool-editor'));
    await tool.getByLabel('Name').fill('weather');
    await tool.getByLabel('Name').blur();
    await tool.getByLabel('What it does').fill('The weather of a city');
    await tool.getByLabel('URL').fill('https://api.example.com/weather');
    await node(0).getByText('Tools (0 chosen)').click();
    await node(0).getByRole('checkbox', { name: 'weather' }).check();
    await view().getByRole('button', { name: 'Save changes' }).click();

    const urlError = tool.locator(`[data-path="httpTools.0.url"] ${byTestId('field-error')}`);
    await urlError.waitFor();
    expect(await urlError.textContent()).toBe('https://api.example.com is not in allowedOrigins');
    await view().getByRole('button', { name: 'Add origin' }).click();
    await view().getByLabel('Origin 1').fill('https://api.example.com');
    await view().getByRole('button', { name: 'Save changes' }).click();
    await page.locator(byTestId('notice')).filter({ hasText: 'Flow saved.' }).waitFor();
    const saved = (await request('GET', `${t.api}/flows/${agentflowId}`, { token: user.accessToken })).body.flow.definition;
    expect(saved.httpTools).toEqual([
      { name: 'weather', description: 'The weather of a city', method: 'GET', url: 'https://api.example.com/weather' },
    ]);
    expect(saved.allowedOrigins).toEqual(['https://api.example.com']);
    expect(saved.nodes[0].tools).toEqual(['weather']);

    // A credential the user does not have is refused next to its field; once it exists, the tool names it.
    await tool.getByLabel(/^Credential/).fill('weather_key');
    await view().getByRole('button', { name: 'Save changes' }).click();
    const credentialError = tool.locator(`[data-path="httpTools.0.credential"] ${byTestId('field-error')}`);
    await credentialError.waitFor();
    expect(await credentialError.textContent()).toBe('you have no credential "weather_key"');
    const put = await request('PUT', `${t.api}/http-credentials/weather_key`, {
      token: user.accessToken,
      body: { scheme: 'header', headerName: 'X-Api-Key', secret: 'weather-secret-123', origins: ['https://api.example.com'] },
    });
    expect(put.status).toBe(201);
    await view().getByRole('button', { name: 'Save changes' }).click();
    await credentialError.waitFor({ state: 'hidden' });
    await eventuallyDefinition((d) => d.httpTools?.[0]?.credential === 'weather_key');
    expect(await page.content()).not.toContain('weather-secret-123');
  }, 60_000);

  test("a node's dangerous device tool call waits on the execution page as a readable card; Approve lets the device run it", async () => {
    device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: 'flo-laptop',
      seed: { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] },
      reconnection: false,
    });
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Cleanup',
        definition: {
          deviceId: 'flo-laptop',
          nodes: [{ id: 'cleanup', prompt: 'Delete task {{input.task}}', tools: ['delete_task'] }],
          output: 'cleanup',
        },
      },
    });
    expect(created.status).toBe(201);
    await page.goto(`${t.url}/#/flows/${created.body.flow.id}`);
    await view().getByRole('heading', { name: 'Edit “Cleanup”' }).waitFor();
    await view().getByLabel('task', { exact: true }).fill(TASK_ID);
    await view().getByRole('button', { name: 'Run' }).click();

    const card = page.locator(`${byTestId('execution-approval')}[data-status="pending"]`);
    await card.waitFor();
    expect(await card.locator('.tool-sentence').textContent()).toBe(`delete_task wants to delete the task “${TASK_ID}”`);
    expect(await card.locator('dd[data-key="task_id"]').textContent()).toBe(TASK_ID);
    expect(device.calls.filter((call) => call.action === 'delete')).toHaveLength(0);
    await screenshot(page, 'flows-08-node-approval');
    await card.getByRole('button', { name: 'Approve' }).click();

    await page.locator(`${byTestId('execution-status')}[data-status="completed"]`).waitFor();
    expect(device.calls.filter((call) => call.action === 'delete')).toHaveLength(1);
    const node = page.locator(`${byTestId('execution-node')}[data-node-id="cleanup"]`);
    expect(await node.locator(byTestId('execution-node-output')).textContent()).toBe('Done: the task is deleted.');
    await node.locator(`${byTestId('execution-tool-call')}[data-ok="true"]`).waitFor();
    expect(await page.locator(byTestId('execution-approval')).count()).toBe(0);
  }, 60_000);

  test('a chatflow built in the form answers in the page, streamed, in one session', async () => {
    await view().getByRole('link', { name: 'New flow' }).click();
    await page.waitForURL(/#\/flows$/);
    // The address changes at once; the flow open before is on the page until the empty form replaces it.
    await view().getByRole('button', { name: 'Create flow' }).waitFor();
    await view().getByLabel('Type').selectOption('chatflow');
    await view().getByLabel('Name').fill('Helper');
    await view().getByLabel('System prompt').fill('You help shoppers.');
    await view().getByLabel('Model').selectOption({ label: 'scripted · scripted-model' });
    await view().getByLabel('History window (messages)').fill('5');
    await view().getByRole('button', { name: 'Create flow' }).click();
    await page.locator(byTestId('flow-chat')).waitFor();
    const flowId = /#\/flows\/([0-9a-f-]{36})$/.exec(page.url())![1];
    expect((await request('GET', `${t.api}/flows/${flowId}`, { token: user.accessToken })).body.flow.definition).toEqual({
      systemPrompt: 'You help shoppers.',
      model: { provider: 'scripted', model: 'scripted-model' },
      temperature: 0.2,
      historyWindow: 5,
    });

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
    const sessions = (await request('GET', `${t.api}/chat/sessions?kind=flow`, { token: user.accessToken })).body.sessions.filter(
      (s: { flowId: string }) => s.flowId === flowId,
    );
    expect(sessions).toHaveLength(1);
  }, 60_000);

  test('embeds: create one (snippet to copy), preview the real widget answering, change its origins, revoke it', async () => {
    const flowId = /#\/flows\/([0-9a-f-]{36})$/.exec(page.url())![1];
    await page.locator(byTestId('flow-embeds')).waitFor();
    await view().getByLabel('Allowed origins (one per line)').first().fill('https://shop.example.com');
    await view()
      .getByLabel(/Also allow this console/)
      .check();
    await view().getByRole('button', { name: 'Create embed' }).click();
    const embed = page.locator(byTestId('embed')).first();
    await embed.waitFor();
    expect(await embed.locator(byTestId('embed-origin-list')).textContent()).toBe(`https://shop.example.com, ${t.url}`);
    const code = (await embed.locator(byTestId('embed-snippet')).textContent())!;
    expect(code).toMatch(new RegExp(`^<script src="${t.url}/embed\\.js" data-embed-token="sbe_[A-Za-z0-9_-]{43}"`));
    await embed.getByRole('button', { name: 'Copy snippet' }).click();
    await page.waitForFunction((expected) => navigator.clipboard.readText().then((text) => text === expected), code);

    // The preview frames the widget exactly as a site would include it; it answers from this chatflow.
    await embed.getByRole('button', { name: 'Preview' }).click();
    const frame = page.frameLocator(byTestId('embed-preview-frame'));
    await frame.locator('[data-switchboard-embed] [data-role="input"]').fill('red boots');
    await frame.locator('[data-switchboard-embed] [data-role="input"]').press('Enter');
    await frame.locator('[data-switchboard-embed] [data-message-role="assistant"]').filter({ hasText: 'Answer to: red boots' }).waitFor();
    await screenshot(page, 'flows-05-embed-preview');

    // Bad origins are refused next to the editor; good ones replace the list.
    await embed.getByText('Change origins').click();
    await embed.locator(byTestId('embed-edit-origins')).fill('https://shop.example.com/path');
    await embed.getByRole('button', { name: 'Save origins' }).click();
    await embed.locator(byTestId('embed-error')).waitFor();
    expect(await embed.locator(byTestId('embed-error')).textContent()).toMatch(/origin/);
    await embed.locator(byTestId('embed-edit-origins')).fill('https://shop.example.com\nhttps://www.shop.example.com');
    await embed.getByRole('button', { name: 'Save origins' }).click();
    await page
      .locator(byTestId('embed-origin-list'))
      .filter({ hasText: 'https://shop.example.com, https://www.shop.example.com' })
      .waitFor();

    page.once('dialog', (dialog) => void dialog.accept());
    await page.locator(byTestId('embed')).first().getByRole('button', { name: 'Revoke' }).click();
    await page.locator(byTestId('embed-list')).filter({ hasText: 'No embeds yet.' }).waitFor();
    expect((await request('GET', `${t.api}/flows/${flowId}/embeds`, { token: user.accessToken })).body.embeds).toEqual([]);
  }, 60_000);

  test('versions: the list marks the published one, the diff shows the changed lines, a rollback publishes an older one', async () => {
    const definition = (prompt: string) => ({ nodes: [{ id: 'only', prompt }], output: 'only' });
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: `Versioned ${Date.now()}`, definition: definition('First words about {{input.topic}}') },
    });
    const flowId = created.body.flow.id as string;
    const patch = (body: unknown) => request('PATCH', `${t.api}/flows/${flowId}`, { token: user.accessToken, body });
    expect((await patch({ definition: definition('Second words about {{input.topic}}') })).status).toBe(200);
    expect((await patch({ definition: definition('Third words about {{input.topic}}'), publish: false })).status).toBe(200);

    await page.goto(`${t.url}/#/flows/${flowId}`);
    const panel = page.locator(byTestId('flow-versions'));
    await panel.locator(byTestId('flow-version')).nth(2).waitFor();
    expect(
      await panel.locator(byTestId('flow-version')).evaluateAll((items) => items.map((li) => (li as HTMLElement).dataset.version)),
    ).toEqual(['3', '2', '1']);
    expect(await panel.locator(`${byTestId('flow-version')}[data-version="2"] ${byTestId('flow-version-published')}`).count()).toBe(1);

    // By default v2 against v3: one line out, one line in, the rest kept.
    await panel.getByRole('button', { name: 'Show changes' }).click();
    const diff = panel.locator(byTestId('flow-diff'));
    await diff.locator(byTestId('diff-add')).first().waitFor();
    expect(await diff.locator(byTestId('diff-del')).allTextContents()).toEqual(['-       "prompt": "Second words about {{input.topic}}"']);
    expect(await diff.locator(byTestId('diff-add')).allTextContents()).toEqual(['+       "prompt": "Third words about {{input.topic}}"']);
    expect(await diff.locator(byTestId('diff-same')).count()).toBeGreaterThan(3);

    // Roll back to v1: it becomes the published one, in the page and in the API.
    await panel
      .locator(`${byTestId('flow-version')}[data-version="1"]`)
      .getByRole('button', { name: 'Roll back to this' })
      .click();
    await panel.locator(`${byTestId('flow-version')}[data-version="1"] ${byTestId('flow-version-published')}`).waitFor();
    const flow = await request('GET', `${t.api}/flows/${flowId}`, { token: user.accessToken });
    expect(flow.body.flow).toMatchObject({
      publishedVersion: 1,
      latestVersion: 3,
      definition: definition('First words about {{input.topic}}'),
    });
  });

  test('at 390 px wide the form and an execution fit the screen (nothing of the page reaches past its right edge)', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    // The Flows page's own elements (the top bar is the console's, laid out on its own).
    const overflow = () =>
      page.evaluate(
        () =>
          Math.max(
            ...[...document.querySelectorAll('[data-testid="flows-view"] *')]
              .filter((node) => (node as HTMLElement).offsetParent !== null)
              // What sits in a box that scrolls on its own (the graph, a long output) does not widen the page.
              .filter((node) => {
                for (let up = node.parentElement; up; up = up.parentElement)
                  if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(up).overflowX)) return false;
                return true;
              })
              .map((node) => node.getBoundingClientRect().right),
          ) - window.innerWidth,
      );
    await page.goto(`${t.url}/#/flows/${agentflowId}`);
    await node(0).waitFor();
    await screenshot(page, 'flows-06-form-390');
    expect(await overflow()).toBeLessThanOrEqual(0);
    await view().locator(byTestId('flow-execution')).first().click();
    await page.locator(`${byTestId('execution-status')}[data-status]`).waitFor();
    await screenshot(page, 'flows-07-execution-390');
    expect(await overflow()).toBeLessThanOrEqual(0);
    await page.setViewportSize({ width: 1366, height: 900 });
  }, 60_000);

  test('the page raised no script errors, CSP violations or unexpected failed requests', () => {
    expect(problems).toEqual([]);
  });
});

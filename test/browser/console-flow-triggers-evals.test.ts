import { createHmac, randomUUID } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * An agentflow's triggers and evaluations on the Flows page, in a real Chromium against the whole
 * app: a schedule added in a time zone shows its next run as the API computes it, is switched off
 * and deleted, and one firing more often than the plan allows is refused in the form; a webhook
 * shows its URL and secret once, and a delivery signed with that secret starts the flow; a CSV
 * dataset is uploaded, and an evaluation of two versions with a rule scorer (a bad pattern refused
 * next to its field first) is followed to its end and compared per version in a table.
 */
const WAIT_MS = 20_000;

/** Version 1 shouts the word, version 2 whispers it: an exact scorer tells them apart. */
function responder(req: ChatRequest) {
  const last = req.messages.at(-1);
  const prompt = typeof last?.content === 'string' ? last.content : '';
  const shout = /^Shout: (\S+)/.exec(prompt);
  if (shout) return { text: shout[1].toUpperCase() };
  const whisper = /^Whisper: (\S+)/.exec(prompt);
  return { text: whisper ? whisper[1].toLowerCase() : 'no idea' };
}

/** Standard Webhooks headers for `body` signed with a `whsec_…` secret. */
function signed(secret: string, body: string) {
  const id = `msg_${randomUUID()}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}`, 'content-type': 'application/json' };
}

describe('web console: a flow’s triggers and evaluations, in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let user: TestUser;
  let flowId: string;
  const problems: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder, llmDelayMs: 10 });
    user = await registerUser(t.api, 'Evan');
    browser = await launchChromium();
    // The refusals this test provokes on purpose: a schedule too frequent for the plan, a bad pattern.
    page = await openPage(
      browser,
      t.url,
      'flow-triggers-evals',
      problems,
      (status, pathname) => (status === 403 && pathname.endsWith('/triggers')) || (status === 400 && pathname === '/api/v1/evaluations'),
    );
    page.setDefaultTimeout(WAIT_MS);
    await signIn(page, user);
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: 'Echo', definition: { nodes: [{ id: 'say', prompt: 'Shout: {{input.word}}' }], output: 'say' } },
    });
    expect(created.status).toBe(201);
    flowId = created.body.flow.id;
    const draft = await request('PATCH', `${t.api}/flows/${flowId}`, {
      token: user.accessToken,
      body: { definition: { nodes: [{ id: 'say', prompt: 'Whisper: {{input.word}}' }], output: 'say' }, publish: false },
    });
    expect(draft.body.flow.latestVersion).toBe(2);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  const triggers = () => page.locator(byTestId('flow-triggers'));
  const evaluations = () => page.locator(byTestId('flow-evaluations'));
  const listed = async () => (await request('GET', `${t.api}/flows/${flowId}/triggers`, { token: user.accessToken })).body.triggers;

  test('a schedule in a time zone shows its next run; one too frequent is refused; off, then deleted', async () => {
    await page.goto(`${t.url}/#/flows/${flowId}`);
    await triggers().locator(byTestId('trigger-list')).getByText('No triggers').waitFor();
    await triggers().getByText('Add a trigger').click();
    await triggers().getByLabel('Trigger name').fill('Mornings');
    await triggers().getByLabel('Repeat').selectOption({ label: 'Every day at 09:00' });
    expect(await triggers().getByLabel('Cron').inputValue()).toBe('0 9 * * *');
    await triggers().getByLabel('Time zone').selectOption('Asia/Tokyo');
    await triggers()
      .locator(`${byTestId('trigger-input')}[data-key="word"]`)
      .fill('paris');
    await triggers().getByRole('button', { name: 'Add trigger' }).click();

    const item = triggers().locator(`${byTestId('flow-trigger')}[data-type="schedule"]`);
    await item.waitFor();
    const [saved] = await listed();
    expect(saved).toMatchObject({ name: 'Mornings', cron: '0 9 * * *', timezone: 'Asia/Tokyo', catchUp: 'skip', input: { word: 'paris' } });
    // 09:00 in Tokyo is midnight UTC; the page shows the API's next run, in Tokyo's time.
    const next = new Date(saved.nextRunAt);
    expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([0, 0]);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    const nextRun = item.locator(byTestId('trigger-next-run'));
    expect(await nextRun.getAttribute('data-at')).toBe(saved.nextRunAt);
    expect(await nextRun.textContent()).toMatch(/Next run: .*9:00.* Asia\/Tokyo/);
    expect(await item.locator(byTestId('trigger-kind')).textContent()).toBe('schedule');
    await screenshot(page, 'flow-triggers-01-schedule', { fullPage: false });

    // Every minute is more often than the free plan allows: refused, nothing added.
    await triggers().getByLabel('Trigger name').fill('Too often');
    await triggers().getByLabel('Repeat').selectOption({ label: 'Custom' });
    await triggers().getByLabel('Cron').fill('* * * * *');
    await triggers().getByRole('button', { name: 'Add trigger' }).click();
    await triggers().locator(byTestId('trigger-error')).waitFor();
    expect(await triggers().locator(byTestId('trigger-errors')).textContent()).toMatch(/every 60 s.*at most every 900 s/);
    expect(await listed()).toHaveLength(1);

    // Off: no next run; then deleted (after the question), in the page and in the API.
    await item.getByRole('button', { name: 'Switch off' }).click();
    await triggers()
      .locator(`${byTestId('flow-trigger')}[data-enabled="false"]`)
      .waitFor();
    expect(await triggers().locator(byTestId('trigger-next-run')).textContent()).toBe('Not scheduled while it is off.');
    await triggers().locator(byTestId('flow-trigger')).getByRole('button', { name: 'Delete' }).click();
    await page.locator(byTestId('trigger-delete-dialog-delete')).click();
    await triggers().locator(byTestId('trigger-list')).getByText('No triggers').waitFor();
    expect(await listed()).toEqual([]);
  }, 60_000);

  test('a webhook shows its URL and secret once; a delivery signed with it starts the flow', async () => {
    await triggers().getByLabel('Trigger kind').selectOption('webhook');
    await triggers().getByLabel('Trigger name').fill('Inbound');
    await triggers().getByRole('button', { name: 'Add trigger' }).click();
    const box = triggers().locator(byTestId('trigger-secret-box'));
    await box.waitFor();
    const url = (await box.locator(byTestId('trigger-secret-url')).textContent())!;
    const secret = await box.locator(byTestId('trigger-secret')).inputValue();
    expect(secret).toMatch(/^whsec_/);
    const [hook] = await listed();
    expect(url).toBe(hook.url);
    expect(JSON.stringify(hook)).not.toContain(secret);
    expect(
      await triggers()
        .locator(`${byTestId('flow-trigger')}[data-type="webhook"] ${byTestId('trigger-url')}`)
        .textContent(),
    ).toBe(url);

    const body = JSON.stringify({ word: 'rome' });
    const delivered = await fetch(`${t.url}${new URL(url).pathname}`, { method: 'POST', headers: signed(secret, body), body });
    expect(delivered.status).toBe(202);
    const executions = await eventually(
      async () => (await request('GET', `${t.api}/flows/${flowId}/executions`, { token: user.accessToken })).body.executions,
      (list: Array<{ input: { word?: string }; status: string }>) => list.some((x) => x.input.word === 'rome' && x.status === 'completed'),
      WAIT_MS,
    );
    expect(executions).toHaveLength(1);

    // Done: the secret leaves the page for good.
    await box.getByRole('button', { name: 'Done' }).click();
    await box.waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(secret);
  }, 60_000);

  test('a CSV dataset run through two versions with a rule scorer: followed live, compared per version', async () => {
    await evaluations().getByText('New dataset').click();
    await evaluations().getByLabel('Dataset name').fill('Cities');
    await evaluations().locator(byTestId('dataset-text')).fill('word,expected\nparis,PARIS\nrome,ROME\noslo,OSLO\n');
    await evaluations().getByRole('button', { name: 'Create dataset' }).click();
    const dataset = evaluations().locator(byTestId('eval-dataset')).filter({ hasText: 'Cities' });
    await dataset.waitFor();
    expect(await dataset.textContent()).toContain('3 rows');

    await evaluations().getByText('New evaluation').click();
    const form = evaluations().locator(byTestId('eval-start-form'));
    expect(await form.locator(byTestId('eval-dataset-select')).inputValue()).toBe(await dataset.getAttribute('data-dataset-id'));
    expect(
      await form.locator(`${byTestId('eval-version')}:checked`).evaluateAll((boxes) => boxes.map((b) => (b as HTMLInputElement).value)),
    ).toEqual(['2', '1']);
    // A pattern that does not compile is refused next to its field; nothing starts.
    await form.locator(byTestId('scorer-type')).selectOption('regex');
    await form.locator(byTestId('scorer-pattern')).fill('(unclosed');
    await form.getByRole('button', { name: 'Start evaluation' }).click();
    await form.locator(`[data-path="scorers.0.pattern"] > ${byTestId('field-error')}:visible`).waitFor();
    expect((await request('GET', `${t.api}/evaluations?flowId=${flowId}`, { token: user.accessToken })).body.evaluations).toEqual([]);

    await form.locator(byTestId('scorer-type')).selectOption('exact');
    await form.getByRole('button', { name: 'Start evaluation' }).click();
    // Followed without a click: read again while it runs, until it ends.
    await evaluations()
      .locator(`${byTestId('eval-status')}[data-status="completed"]`)
      .waitFor({ timeout: 45_000 });
    const row = (version: number) => evaluations().locator(`${byTestId('eval-version-row')}[data-version="${version}"]`);
    expect(await row(1).locator(byTestId('eval-score')).getAttribute('data-best')).toBe('true');
    expect(await row(1).locator(byTestId('eval-score')).textContent()).toBe('1.00best');
    expect(await row(2).locator(byTestId('eval-score')).textContent()).toBe('0.00');
    expect(await row(1).locator(byTestId('eval-finished')).textContent()).toBe('3 of 3');
    expect(await row(2).locator(byTestId('eval-finished')).textContent()).toBe('3 of 3');
    expect(
      await row(1)
        .locator(`${byTestId('eval-scorer-score')}[data-scorer="exact"]`)
        .textContent(),
    ).toBe('1.00');
    expect(await row(2).locator(byTestId('eval-latency-p50')).textContent()).toMatch(/^\d+ ms$/);
    expect(await row(2).locator(byTestId('eval-cost')).textContent()).toMatch(/^\$\d+\.\d{6}$/);

    // Every figure is one the API gave: nothing drawn from a missing value.
    expect(await evaluations().locator(byTestId('eval-view')).textContent()).not.toMatch(/null|undefined|NaN/);
    await evaluations().getByText('Answers by row (3)').click();
    const answer = evaluations().locator(`${byTestId('eval-answer-row')}[data-position="1"] ${byTestId('eval-answer')}[data-version="2"]`);
    expect(await answer.textContent()).toMatch(/^0\.00rome/);
    expect(await answer.getByRole('link', { name: 'execution' }).getAttribute('href')).toMatch(
      new RegExp(`^#/flows/${flowId}/executions/[0-9a-f-]{36}$`),
    );
    await evaluations()
      .locator(`${byTestId('eval-item')}[data-status="completed"]`)
      .waitFor();
    await evaluations().locator(byTestId('eval-comparison')).scrollIntoViewIfNeeded();
    await screenshot(page, 'flow-evals-01-comparison', { fullPage: false });
  }, 90_000);

  test('at 390 px wide the triggers and the comparison fit the screen (wide tables scroll inside themselves)', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await evaluations().locator(byTestId('eval-comparison')).waitFor();
    const overflow = await page.evaluate(
      () =>
        Math.max(
          ...[...document.querySelectorAll('[data-testid="flow-triggers"] *, [data-testid="flow-evaluations"] *')]
            .filter((node) => (node as HTMLElement).offsetParent !== null)
            .filter((node) => {
              for (let up = node.parentElement; up; up = up.parentElement)
                if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(up).overflowX)) return false;
              return true;
            })
            .map((node) => node.getBoundingClientRect().right),
        ) - window.innerWidth,
    );
    await screenshot(page, 'flow-evals-02-390');
    expect(overflow).toBeLessThanOrEqual(0);
    await page.setViewportSize({ width: 1366, height: 900 });
  }, 30_000);

  test('the page raised no script errors, CSP violations or unexpected failed requests', () => {
    expect(problems).toEqual([]);
  });
});

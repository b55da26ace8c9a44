import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, signIn } from '../support/browser';
import { registerUser } from '../support/http';
import { waitUntil } from '../support/wait';

/**
 * The console's Webhooks page in Chromium: an endpoint created by form shows its secret once, a
 * test message is delivered to a local receiver and listed with its status code, a resend reaches
 * the receiver again with the same message id, and a private address is refused with the API's words.
 */
describe('web console: webhooks', () => {
  let t: TestApp;
  let browser: Browser;
  let server: http.Server;
  let origin: string;
  const received: Array<{ id: string; body: string }> = [];
  const problems: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ id: String(req.headers['webhook-id']), body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await startTestApp({ env: { WEBHOOK_PRIVATE_ORIGINS: origin, WEBHOOK_BACKOFF_MS: '50' } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    await new Promise((resolve) => server.close(resolve));
  });
  afterEach(() => expect(problems.splice(0)).toEqual([]));

  test('create an endpoint, see its secret once, send a test, read the log, resend', async () => {
    const user = await registerUser(t.api, 'Hooks');
    const page = await openPage(browser, t.url, 'hooks', problems, (status, path) => status === 400 && path === '/api/v1/webhooks');
    await signIn(page, user);
    await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Webhooks', exact: true }).click();
    const view = page.locator(byTestId('webhooks-view'));
    await view.getByText('No endpoints yet.').waitFor();

    await view.getByLabel('URL').fill('http://169.254.169.254/latest');
    await view.getByRole('button', { name: 'Create endpoint' }).click();
    await view.getByText(/private address/).waitFor();

    await view.getByLabel('URL').fill(`${origin}/hook`);
    await view.getByRole('button', { name: 'Create endpoint' }).click();
    const secret = await view.locator(byTestId('webhook-secret')).inputValue();
    expect(secret).toMatch(/^whsec_/);
    await view.getByRole('button', { name: 'Done' }).click();
    expect(await view.locator(byTestId('webhook-secret')).count()).toBe(0);
    expect(await page.content()).not.toContain(secret.slice('whsec_'.length));

    await view.getByRole('button', { name: 'Send test' }).click();
    await waitUntil(() => received.length === 1, 15_000);
    await page.waitForFunction(async () => {
      document.querySelector<HTMLButtonElement>('[data-testid="webhook-refresh"]')?.click();
      await new Promise((resolve) => setTimeout(resolve, 100));
      return document.querySelector('[data-testid="webhook-delivery-status"]')?.textContent === 'delivered';
    });
    await view.getByRole('cell', { name: '200' }).waitFor();

    await view.getByRole('button', { name: 'Resend' }).click();
    await waitUntil(() => received.length === 2, 15_000);
    expect(received[1].id).toBe(received[0].id);
    expect(JSON.parse(received[1].body)).toMatchObject({ type: 'webhook.test' });
    await page.waitForFunction(async () => {
      document.querySelector<HTMLButtonElement>('[data-testid="webhook-refresh"]')?.click();
      await new Promise((resolve) => setTimeout(resolve, 100));
      return document.querySelector('[data-testid="webhook-delivery-attempts"]')?.textContent === '2';
    });
  });
});

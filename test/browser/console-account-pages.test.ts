import { randomBytes } from 'node:crypto';
import { text } from 'node:stream/consumers';
import type { Browser } from 'playwright-core';
import { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model/responder';
import { freePort } from '../../src/app/embedded-redis';
import { AdminDirectory } from '../../src/auth/admins';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openPage, screenshot, signIn } from '../support/browser';
import { seedInbox, startFakeGoogle, type FakeGoogle } from '../support/fake-google';
import { startFakeMicrosoft, type FakeMicrosoft } from '../support/fake-microsoft';
import { registerUser, request, type TestUser } from '../support/http';
import { providerEnv } from '../support/provider-env';

/**
 * The console's account pages in Chromium, walked as a person would by role and visible text:
 * an agent set up by form (the schedule checked as typed), its Gmail account connected through the
 * provider's consent page (the local Google fake) and back, a run followed to its log; devices
 * coming online and going; an API key whose secret is shown once; the data export and the account
 * deletion; an admin raising someone's tier, and a non-admin who never sees the Admin page.
 */
describe('web console: agents, devices, API keys, account, admin', () => {
  let t: TestApp;
  let google: FakeGoogle;
  let microsoft: FakeMicrosoft;
  let browser: Browser;
  const problems: string[] = [];
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    [google, microsoft] = await Promise.all([startFakeGoogle(), startFakeMicrosoft()]);
    // The provider sends the browser back to PUBLIC_URL: the app must listen where that says.
    const port = await freePort();
    t = await startTestApp({
      responder: demoResponder,
      env: {
        PORT: String(port),
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        OAUTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
        ...providerEnv(google, microsoft),
      },
    });
    browser = await launchChromium();
  }, 120_000);

  afterEach(() => {
    for (const device of devices.splice(0)) device.close();
    // No script error, CSP violation or unexpected error answer on any page.
    expect(problems.splice(0)).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    await Promise.all([google?.close(), microsoft?.close()]);
  });

  const connectDevice = async (user: TestUser, deviceId: string) => {
    const device = await DeviceSimulator.connect({ url: t.url, accessToken: user.accessToken, deviceId, reconnection: false });
    devices.push(device);
    return device;
  };

  /** A signed-in page at the nav entry `name`. `allowed` lists error answers the walk expects. */
  const open = async (user: TestUser, name: string, allowed: (status: number, path: string) => boolean = () => false) => {
    const page = await openPage(browser, t.url, user.name, problems, allowed);
    await signIn(page, user);
    await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name, exact: true }).click();
    return page;
  };

  test('agents: create a Gmail agent by form, connect Gmail through its consent page, run it and read its log, disconnect', async () => {
    google.mailbox = seedInbox({ count: 6, todos: 2 });
    const user = await registerUser(t.api, 'Agent');
    await connectDevice(user, 'laptop');
    const page = await open(user, 'Agents');
    const view = page.locator(byTestId('agents-view'));
    await view.getByText('No agents yet.').waitFor();

    await view.getByLabel('Type').selectOption({ label: 'Gmail' });
    await view.getByLabel('Name', { exact: true }).fill('Inbox tasks');
    await view.getByLabel('tasks').check();
    await view.getByLabel(/^Instructions/).fill('Extract the tasks each email asks of me.');
    // The schedule is checked as it is typed.
    const cron = view.getByLabel(/^Schedule \(cron\)/);
    await cron.fill('61 9 * * 1-5');
    await view.getByText('The minute field takes 0-59; "61" is outside it.').waitFor();
    expect(await cron.getAttribute('aria-invalid')).toBe('true');
    await view.getByRole('button', { name: 'Save' }).click();
    await view.getByText('Fix the schedule first.').waitFor();
    await cron.fill('0 9 * * 1-5');
    await view.getByText('The schedule looks right.').waitFor();
    await view.getByRole('button', { name: 'Save' }).click();
    await view.getByRole('heading', { name: 'Edit "Inbox tasks"' }).waitFor();
    await view.getByText(/^Next scheduled run: \d{4}-\d\d-\d\d 09:00:00/).waitFor();
    await view.getByRole('link', { name: 'Inbox tasks' }).waitFor();

    // Connect: this tab goes to the provider's consent page and comes back to the agent.
    await view.getByText('Not connected: connect your Gmail account').waitFor();
    await view.getByRole('button', { name: 'Connect Gmail' }).click();
    await page.waitForURL(/#\/agents\/[0-9a-f-]{36}$/);
    await page.getByText('Gmail is connected.').waitFor();
    await view.getByText('Connected to Gmail.').waitFor();
    expect(google.requests.some((r) => r.path === '/o/oauth2/v2/auth')).toBe(true);
    const agentId = /#\/agents\/([0-9a-f-]{36})$/.exec(page.url())![1];
    expect((await request('GET', `${t.api}/agents/cloud/${agentId}`, { token: user.accessToken })).body.connected).toBe(true);

    // Run now: the run appears, runs, and its log says what it did.
    await view.getByRole('button', { name: 'Run now' }).click();
    const run = view.locator(`${byTestId('agent-run-item')}[data-status="success"]`);
    await run.waitFor();
    await run.getByText('succeeded', { exact: true }).waitFor();
    await run.getByText('Processed 6 item(s), created 2 suggestion(s)').waitFor();
    await run.getByText(/Started \(run now\)/).waitFor();
    await run.getByText('Finished: succeeded').waitFor();
    await screenshot(page, 'console-agents-run');

    // Disconnect takes two clicks; the agent stays, unconnected.
    const disconnect = view.getByRole('button', { name: 'Disconnect' });
    await disconnect.click();
    await view.getByRole('button', { name: 'Click again to disconnect' }).click();
    await view.getByText('Not connected: connect your Gmail account').waitFor();
    expect((await request('GET', `${t.api}/agents/cloud/${agentId}`, { token: user.accessToken })).body.connected).toBe(false);
  });

  test('agents: a declined consent comes back with the reason; a bad folder is refused with the problem shown', async () => {
    const user = await registerUser(t.api, 'Decline');
    const page = await open(user, 'Agents', (status, path) => status === 400 && path === '/api/v1/agents/local');
    const view = page.locator(byTestId('agents-view'));
    // A local agent whose folder is not absolute: the API's problem is shown under the form.
    await view.getByLabel('Name', { exact: true }).fill('Notes');
    await view.getByLabel(/^Instructions/).fill('Pull out my notes.');
    await view.getByLabel(/^Device/).fill('desk');
    await view.getByLabel(/^Folders/).fill('notes/relative');
    await view.getByRole('button', { name: 'Save' }).click();
    await view.getByText(/directoryPaths must be absolute paths/).waitFor();
    await view.getByLabel(/^Folders/).fill('/home/me/notes');
    await view.getByRole('button', { name: 'Save' }).click();
    await view.getByRole('heading', { name: 'Edit "Notes"' }).waitFor();
    await view.getByText('Runs only when you run it.').waitFor();

    // An Outlook agent; the person declines on Microsoft's page (the fake's `deny=1`).
    await view.getByRole('link', { name: 'New agent' }).click();
    await view.getByRole('heading', { name: 'New agent' }).waitFor();
    await view.getByLabel('Type').selectOption({ label: 'Outlook' });
    await view.getByLabel('Name', { exact: true }).fill('Mail');
    await view.getByLabel(/^Instructions/).fill('Tasks please.');
    await view.getByRole('button', { name: 'Save' }).click();
    await view.getByRole('heading', { name: 'Edit "Mail"' }).waitFor();
    await page.route(/\/oauth2\/v2\.0\/authorize/, (route) => route.continue({ url: `${route.request().url()}&deny=1` }));
    await view.getByRole('button', { name: 'Connect Outlook' }).click();
    await page.getByText('The account was not connected: you declined the consent. Try Connect again.').waitFor();
    // Back on the agent it was connecting.
    await view.getByRole('heading', { name: 'Edit "Mail"' }).waitFor();
    await view.getByText('Not connected: connect your Outlook account').waitFor();
  });

  test('agents: a local run waits for its device, then finishes once it comes online, live on the page', async () => {
    const user = await registerUser(t.api, 'Local');
    // The list of agents answers only once the form is filled: what is typed while it loads stays.
    const page = await openPage(browser, t.url, user.name, problems, () => false);
    await signIn(page, user);
    let answerList!: () => void;
    const listHeld = new Promise<void>((resolve) => (answerList = resolve));
    await page.route(/\/api\/v1\/agents\/local\?/, async (route) => {
      await listHeld;
      await route.continue();
    });
    await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Agents', exact: true }).click();
    const view = page.locator(byTestId('agents-view'));
    await view.getByLabel('Name', { exact: true }).fill('Meeting notes');
    await view.getByLabel(/^Instructions/).fill('Extract the action items.');
    await view.getByLabel(/^Device/).fill('desk');
    await view.getByLabel(/^Folders/).fill('/home/me/notes');
    answerList();
    await view.getByText('No agents yet.').waitFor();
    await page.unroute(/\/api\/v1\/agents\/local\?/);
    await view.getByRole('button', { name: 'Save' }).click();
    await view.getByRole('heading', { name: 'Edit "Meeting notes"' }).waitFor();

    await view.getByRole('button', { name: 'Run now' }).click();
    const run = view.locator(byTestId('agent-run-item')).first();
    await run.getByText('waiting for its device', { exact: true }).waitFor();
    await run.getByText('Waiting for the device to come online…').waitFor();
    await run.getByRole('button', { name: 'Stop' }).waitFor();

    const files = [{ path: '/home/me/notes/monday.md', name: 'monday.md', content: 'TODO: Send the minutes\nAction: Book the room\n' }];
    devices.push(
      await DeviceSimulator.connect({
        url: t.url,
        accessToken: user.accessToken,
        deviceId: 'desk',
        reconnection: false,
        readAgentFiles: async () => ({ files }),
      }),
    );
    await view.locator(`${byTestId('agent-run-item')}[data-status="success"]`).waitFor();
    await run.getByText('Device: desk').waitFor();
    await run.getByText('Processed 1 item(s), created 2 suggestion(s)').waitFor();
    expect(await run.getByRole('button', { name: 'Stop' }).count()).toBe(0);

    // At a phone's width the page stacks; nothing of it is wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await view.evaluate((node) => node.scrollWidth <= node.clientWidth)).toBe(true);
    await screenshot(page, 'console-agents-390');
  });

  test('devices: online devices appear and leave live; an agent’s device is listed offline', async () => {
    const user = await registerUser(t.api, 'Devices');
    await request('POST', `${t.api}/agents/local`, {
      token: user.accessToken,
      body: { name: 'Desk notes', deviceId: 'desk', directoryPaths: ['/notes'], dataTypes: ['notes'], promptTemplate: 'Notes.' },
    });
    const page = await open(user, 'Devices');
    const view = page.locator(byTestId('devices-view'));
    const item = (id: string) => view.locator(`${byTestId('device-item')}[data-device-id="${id}"]`);
    await item('desk').getByText('offline').waitFor();
    await item('desk').getByRole('link', { name: 'Desk notes' }).waitFor();
    await view.getByText(/^0 of 1 online/).waitFor();

    const laptop = await connectDevice(user, 'laptop');
    await item('laptop').getByText('online', { exact: true }).waitFor();
    await view.getByText(/^1 of 2 online/).waitFor();
    await screenshot(page, 'console-devices');
    laptop.close();
    await item('laptop').waitFor({ state: 'detached' });
  });

  test('API keys: the secret is shown once with a Copy button, works, disappears for good; revoking stops it', async () => {
    const user = await registerUser(t.api, 'Keys');
    const page = await open(user, 'API keys');
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
    const view = page.locator(byTestId('keys-view'));
    await view.getByText('No keys yet.').waitFor();
    await view.getByLabel('Name').fill('CI reader');
    await view.getByLabel('write (everything you may do)').uncheck();
    await view.getByRole('button', { name: 'Create key' }).click();

    const secretField = view.getByRole('textbox', { name: 'The new key' });
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    expect(secret).toMatch(/^sb_live_/);
    await view.getByText('it is shown this once and cannot be shown again').waitFor();
    await view.getByRole('button', { name: 'Copy' }).click();
    await view.getByText('Copied.').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    await screenshot(page, 'console-api-key-once');

    // The key works, read-only.
    expect((await request('GET', `${t.api}/me`, { headers: { 'x-api-key': secret } })).status).toBe(200);
    expect((await request('POST', `${t.api}/canvases`, { headers: { 'x-api-key': secret }, body: { title: 'x' } })).status).toBe(403);

    const row = view.locator(byTestId('key-row')).filter({ hasText: 'CI reader' });
    await row.getByText('read', { exact: true }).waitFor();
    await view.getByRole('button', { name: 'Done' }).click();
    await secretField.waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(secret);
    // Never again: not after coming back to the page either.
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('link', { name: 'API keys' }).click();
    await row.waitFor();
    expect(await page.content()).not.toContain(secret);
    expect(await row.textContent()).toContain(secret.slice(0, 12));

    // Armed, then the list is loaded and drawn again (leaving and coming back): the second click
    // still confirms, on the button drawn anew.
    await row.getByRole('button', { name: 'Revoke' }).click();
    const armed = await row.getByRole('button', { name: 'Click again to revoke' }).elementHandle();
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.waitForFunction((old) => !old?.isConnected, armed);
    await row.getByRole('button', { name: 'Click again to revoke' }).click();
    await row.getByText('revoked').waitFor();
    expect((await request('GET', `${t.api}/me`, { headers: { 'x-api-key': secret } })).status).toBe(401);
  });

  test('account: the export downloads my data; deletion needs my email typed and signs me out for good', async () => {
    const user = await registerUser(t.api, 'Leaving');
    const page = await open(user, 'Account');
    const view = page.locator(byTestId('account-view'));
    await view.getByText(user.email).waitFor();

    const download = page.waitForEvent('download');
    await view.getByRole('button', { name: 'Download my data' }).click();
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/^switchboard-export-\d{4}-\d\d-\d\d\.json$/);
    const exported = JSON.parse(await text(await file.createReadStream()));
    expect(exported).toMatchObject({ format: 'switchboard.account-export.v1', profile: { id: user.id, email: user.email } });
    await view.getByText(/^Downloaded switchboard-export-/).waitFor();

    const deleteButton = view.getByRole('button', { name: 'Delete my account' });
    expect(await deleteButton.isDisabled()).toBe(true);
    const confirm = view.getByLabel('Type your email to confirm');
    await confirm.fill('someone-else@example.test');
    expect(await deleteButton.isDisabled()).toBe(true);
    await confirm.fill(user.email.toUpperCase());
    await deleteButton.click();
    await page.locator(byTestId('auth-view')).waitFor();
    await page.getByText('Your account is deleted.').waitFor();
    const login = await request('POST', `${t.api}/auth/login`, { body: { email: user.email, password: 'correct horse battery' } });
    expect(login.status).toBe(401);
  });

  test('on a phone (390 × 844): a person connects Outlook and Microsoft Teams agents through the consent page, an admin raises their tier', async () => {
    const [person, admin] = await Promise.all([registerUser(t.api, 'Phone'), registerUser(t.api, 'Pocketadmin')]);
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
    const onPhone = async (user: TestUser, name: string) => {
      const page = await openPage(browser, t.url, `${user.name} (phone)`, problems);
      await page.setViewportSize({ width: 390, height: 844 });
      await signIn(page, user);
      await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name, exact: true }).click();
      return page;
    };
    const fits = (page: Awaited<ReturnType<typeof onPhone>>) => page.evaluate(() => document.documentElement.scrollWidth <= 390);

    const page = await onPhone(person, 'Agents');
    const view = page.locator(byTestId('agents-view'));
    await view.getByText('No agents yet.').waitFor();
    for (const [provider, name] of [
      ['Outlook', 'Mail on the go'],
      ['Microsoft Teams', 'Team chat'],
    ] as const) {
      if (provider === 'Microsoft Teams') {
        await view.getByRole('link', { name: 'New agent' }).click();
        await view.getByRole('heading', { name: 'New agent' }).waitFor();
      }
      await view.getByLabel('Type').selectOption({ label: provider });
      await view.getByLabel('Name', { exact: true }).fill(name);
      await view.getByLabel(/^Instructions/).fill('Extract what is asked of me.');
      await view.getByRole('button', { name: 'Save' }).click();
      await view.getByRole('heading', { name: `Edit "${name}"` }).waitFor();
      await view.getByText(`Not connected: connect your ${provider} account`).waitFor();
      await view.getByRole('button', { name: `Connect ${provider}` }).click();
      await page.getByText(`${provider} is connected.`).waitFor();
      await view.getByText(`Connected to ${provider}.`).waitFor();
      const agentId = /#\/agents\/([0-9a-f-]{36})$/.exec(page.url())![1];
      expect((await request('GET', `${t.api}/agents/cloud/${agentId}`, { token: person.accessToken })).body.connected).toBe(true);
      expect(await fits(page)).toBe(true);
    }
    expect(microsoft.requests.some((r) => r.path.endsWith('/oauth2/v2.0/authorize'))).toBe(true);
    await screenshot(page, 'console-agents-connected-390');

    const console = await onPhone(admin, 'Admin');
    const admins = console.locator(byTestId('admin-view'));
    await admins.getByLabel('Email or name').fill(person.email);
    await admins.getByRole('button', { name: 'Search' }).click();
    const row = admins.locator(byTestId('admin-user-row')).filter({ hasText: person.email });
    await row.getByText('free').waitFor();
    await row.getByRole('button', { name: 'Plan' }).click();
    // The plan form fills from the user's plan: choose once it shows what they are on.
    await admins.getByText(`${person.email} is on free.`).waitFor();
    await admins.getByLabel('Tier').selectOption('enterprise');
    await admins.getByRole('button', { name: 'Save' }).click();
    await admins.getByText(`Saved: ${person.email} is on enterprise.`).waitFor();
    expect(await fits(console)).toBe(true);
    await screenshot(console, 'console-admin-tier-390');
    expect((await request('GET', `${t.api}/admin/users/${person.id}/plan`, { token: admin.accessToken })).body.user.tier).toBe(
      'enterprise',
    );
  });

  test('admin: an admin finds a user, raises their tier and sees it audited; a non-admin has no Admin page', async () => {
    const [admin, customer, plain] = await Promise.all([
      registerUser(t.api, 'Operator'),
      registerUser(t.api, 'Customer'),
      registerUser(t.api, 'Plain'),
    ]);
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);

    const page = await open(admin, 'Admin');
    const view = page.locator(byTestId('admin-view'));
    await view.getByRole('link', { name: 'Open the queue dashboard' }).waitFor();
    expect(await view.getByRole('link', { name: 'Open the queue dashboard' }).getAttribute('href')).toBe('/admin/queues');
    await view.getByLabel('Email or name').fill(customer.email.toUpperCase());
    await view.getByRole('button', { name: 'Search' }).click();
    const row = view.locator(byTestId('admin-user-row')).filter({ hasText: customer.email });
    await row.getByText('free').waitFor();
    // The unfiltered list shown first may hold the customer too: wait for the search's answer.
    await view.locator(byTestId('admin-user-row')).nth(1).waitFor({ state: 'detached' });
    expect(await view.locator(byTestId('admin-user-row')).count()).toBe(1);
    await row.getByRole('button', { name: 'Plan' }).click();
    await view.getByText(`${customer.email} is on free.`).waitFor();
    await view.getByLabel('Tier').selectOption('pro');
    await view.getByLabel('Tokens per month').fill('250000');
    await view.getByRole('button', { name: 'Save' }).click();
    await view.getByText(`Saved: ${customer.email} is on pro.`).waitFor();
    await row.getByText('pro').waitFor();
    await view
      .locator(`${byTestId('admin-audit-row')}[data-action="user.tier_changed"]`)
      .filter({ hasText: customer.id })
      .waitFor();
    await view
      .locator(`${byTestId('admin-audit-row')}[data-action="user.limits_changed"]`)
      .first()
      .waitFor();
    await screenshot(page, 'console-admin');
    const plan = await request('GET', `${t.api}/admin/users/${customer.id}/plan`, { token: admin.accessToken });
    expect(plan.body.user).toMatchObject({ tier: 'pro', limitOverrides: { tokensPerMonth: 250_000 } });

    // A plain user: no Admin entry; the address itself shows "admins only" and asks no admin route.
    const other = await openPage(browser, t.url, 'plain', problems);
    const asked: string[] = [];
    other.on('request', (req) => asked.push(new URL(req.url()).pathname));
    await signIn(other, plain);
    expect(await other.locator(byTestId('nav-admin')).isHidden()).toBe(true);
    await other.goto(`${t.url}/#/admin`);
    await other.getByText('This page is for admins only.').waitFor();
    await other.getByRole('heading', { name: 'Admin' }).waitFor();
    expect(asked.filter((path) => path.includes('/admin/'))).toEqual([]);
  });
});

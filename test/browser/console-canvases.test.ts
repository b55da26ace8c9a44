import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app';
import { boardShows, byTestId, launchChromium, openCanvas, openPage, screenshot, signIn, storedBlockTexts } from '../support/browser';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * The canvases a person has, managed without curl, in Chromium: Ada creates, renames, shares (Bea
 * editor, Cy viewer), removes a member and deletes a canvas, each behind a confirmation; Cy, a viewer,
 * is offered no prompt box or editing; an undo that involves a block Bea edited asks first (keep it,
 * or undo anyway), and redo puts the blocks back; the pages fit a 390 px phone; signing out revokes
 * the session on the server. Every request of the pages stays on the app's own host.
 */
describe('web console: canvases, sharing, viewers, undo with confirmation and redo, 390 px, sign-out', () => {
  let t: TestApp;
  let browser: Browser;
  let ada: Page;
  let cy: Page;
  let userA: TestUser;
  let userB: TestUser;
  let userC: TestUser;
  let canvasId: string;
  const problems: string[] = [];
  const foreign: string[] = [];

  // Expected answers: a share to an unknown email (404) and the undo's question (409 edited_blocks).
  const allowed = (status: number, pathname: string) =>
    (status === 404 && pathname.endsWith('/members')) || (status === 409 && pathname.endsWith('/undo'));

  const open = async (label: string, viewport?: { width: number; height: number }) => {
    const page = await openPage(browser, t.url, label, problems, allowed);
    if (viewport) await page.setViewportSize(viewport);
    page.on('request', (req) => {
      const { host } = new URL(req.url());
      if (!req.url().startsWith('data:') && host !== new URL(t.url).host) foreign.push(`${label}: ${req.url()}`);
    });
    return page;
  };

  beforeAll(async () => {
    t = await startTestApp();
    [userA, userB, userC] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bea'), registerUser(t.api, 'Cy')]);
    browser = await launchChromium();
    ada = await open('Ada');
    await signIn(ada, userA);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  const item = (page: Page, title: string) =>
    page.locator(byTestId('canvas-list-item'), { has: page.locator(byTestId('open-canvas'), { hasText: new RegExp(`^${title}$`) }) });
  const members = async (id: string) =>
    (await request('GET', `${t.api}/canvases/${id}/members`, { token: userA.accessToken })).body.members.map(
      (m: { email: string; role: string }) => `${m.email}:${m.role}`,
    );
  const storedTexts = () => storedBlockTexts(t.api, canvasId, userA.accessToken);
  const boardIs = boardShows;

  test('Ada creates and renames a canvas from the home page, and sees her role', async () => {
    await ada.getByLabel('Title').fill('Draft plan');
    await ada.getByRole('button', { name: 'Create canvas' }).click();
    await ada.locator(byTestId('canvas-view')).waitFor();
    canvasId = /#\/canvases\/([0-9a-f-]{36})/.exec(ada.url())![1];
    await ada.getByRole('link', { name: '← Canvases' }).click();
    await item(ada, 'Draft plan').waitFor();
    expect(await item(ada, 'Draft plan').locator(byTestId('canvas-item-role')).textContent()).toBe('owner');

    await ada.getByRole('button', { name: 'Rename Draft plan' }).click();
    await ada.getByLabel('New title').fill('Launch plan');
    await screenshot(ada, 'canvases-01-renaming');
    await ada.getByRole('button', { name: 'Save' }).click();
    await item(ada, 'Launch plan').waitFor();
    const stored = await request('GET', `${t.api}/canvases/${canvasId}`, { token: userA.accessToken });
    expect(stored.body.canvas.title).toBe('Launch plan');
  });

  test('Ada shares it with Bea (editor) and Cy (viewer); an unknown email is explained; a member is removed after a confirmation', async () => {
    await ada.getByRole('button', { name: 'Share Launch plan' }).click();
    const panel = item(ada, 'Launch plan').locator(byTestId('share-panel'));
    await panel.locator(byTestId('share-member')).first().waitFor();
    const share = async (email: string, role: string) => {
      await panel.getByLabel('Email').fill(email);
      await panel.locator(byTestId('share-role')).selectOption(role);
      await panel.getByRole('button', { name: 'Share' }).click();
    };
    await share(userB.email, 'editor');
    await panel.locator(`${byTestId('share-member')}[data-email="${userB.email}"]`).waitFor();
    await share(userC.email, 'editor');
    await panel.locator(`${byTestId('share-member')}[data-email="${userC.email}"]`).waitFor();
    // Cy's role is changed to viewer from the member's own role menu.
    await panel.getByLabel('Role of Cy').selectOption('viewer');
    await ada.waitForFunction(
      (email) => document.querySelector(`[data-testid="share-result"]`)?.textContent === 'Cy is now a viewer.' && email,
      userC.email,
    );
    await share('nobody-here@example.test', 'viewer');
    await panel.getByText('No account uses nobody-here@example.test: they must sign up first.').waitFor();
    expect(await members(canvasId)).toEqual([`${userA.email}:owner`, `${userB.email}:editor`, `${userC.email}:viewer`]);
    await screenshot(ada, 'canvases-02-shared');

    // Removing a member: cancelled first (nothing changes), then confirmed.
    const dave = await registerUser(t.api, 'Dave');
    await share(dave.email, 'viewer');
    await panel.locator(`${byTestId('share-member')}[data-email="${dave.email}"]`).waitFor();
    await panel.getByRole('button', { name: 'Remove Dave' }).click();
    const dialog = ada.locator(byTestId('remove-member-dialog'));
    await dialog.waitFor();
    await screenshot(ada, 'canvases-03-remove-member-dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await members(canvasId)).toContain(`${dave.email}:viewer`);
    await panel.getByRole('button', { name: 'Remove Dave' }).click();
    await ada.locator(byTestId('remove-member-dialog')).getByRole('button', { name: 'Remove' }).click();
    await panel.locator(`${byTestId('share-member')}[data-email="${dave.email}"]`).waitFor({ state: 'detached' });
    expect(await members(canvasId)).toEqual([`${userA.email}:owner`, `${userB.email}:editor`, `${userC.email}:viewer`]);
    // The creator's own row has no remove button.
    expect(await panel.locator(`${byTestId('share-member')}[data-email="${userA.email}"] ${byTestId('share-member-remove')}`).count()).toBe(
      0,
    );
  });

  test('Ada deletes another canvas only after confirming', async () => {
    const doomed = (await request('POST', `${t.api}/canvases`, { token: userA.accessToken, body: { title: 'Scratch' } })).body.canvas;
    await ada.reload();
    await item(ada, 'Scratch').waitFor();
    await ada.getByRole('button', { name: 'Delete Scratch' }).click();
    const dialog = ada.locator(byTestId('delete-canvas-dialog'));
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('This cannot be undone.');
    await ada.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect((await request('GET', `${t.api}/canvases/${doomed.id}`, { token: userA.accessToken })).status).toBe(200);
    await ada.getByRole('button', { name: 'Delete Scratch' }).click();
    await ada.locator(byTestId('delete-canvas-dialog')).getByRole('button', { name: 'Delete canvas' }).click();
    await item(ada, 'Scratch').waitFor({ state: 'detached' });
    expect((await request('GET', `${t.api}/canvases/${doomed.id}`, { token: userA.accessToken })).status).toBe(404);
  });

  test('Cy, a viewer, sees her role and is offered no prompt box, no Generate and no editing', async () => {
    cy = await open('Cy');
    await signIn(cy, userC);
    expect(await item(cy, 'Launch plan').locator(byTestId('canvas-item-role')).textContent()).toBe('viewer (read only)');
    expect(await item(cy, 'Launch plan').getByRole('button', { name: 'Rename Launch plan' }).count()).toBe(0);
    expect(await item(cy, 'Launch plan').getByRole('button', { name: 'Delete Launch plan' }).count()).toBe(0);
    await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: userA.accessToken,
      body: { type: 'text', content: { text: 'Read me' } },
    });
    await openCanvas(cy, canvasId, userC.id);
    await boardIs(cy, ['Read me']);
    expect(await cy.locator(byTestId('canvas-role')).textContent()).toBe('viewer');
    expect(await cy.getByLabel('Prompt').isDisabled()).toBe(true);
    expect(await cy.getByRole('button', { name: 'Generate' }).isDisabled()).toBe(true);
    expect(await cy.getByText('You are a viewer here: only editors and owners can generate or edit.').isVisible()).toBe(true);
    expect(await cy.locator(byTestId('add-block-form')).isVisible()).toBe(false);
    expect(await cy.locator(`${byTestId('block')} ${byTestId('block-edit')}`).count()).toBe(0);
    await screenshot(cy, 'canvases-04-viewer');
    // Clean up the hand-written block for the undo test below.
    const [block] = (await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: userA.accessToken })).body.blocks;
    await request('DELETE', `${t.api}/canvases/${canvasId}/blocks/${block.id}`, { token: userA.accessToken });
    await boardIs(cy, []);
  });

  test('undo asks when Bea edited a block of the generation: cancel, keep edited blocks, redo, then undo anyway', async () => {
    await ada.goto(`${t.url}/#/`);
    await openCanvas(ada, canvasId, userA.id);
    t.llm.push({
      toolCalls: [
        { name: 'create_text', args: { text: 'one' } },
        { name: 'create_text', args: { text: 'two' } },
        { name: 'create_text', args: { text: 'three' } },
      ],
    });
    await ada.getByLabel('Prompt').fill('three paragraphs');
    await ada.getByRole('button', { name: 'Generate' }).click();
    await boardIs(ada, ['one', 'two', 'three']);
    await ada.locator(`${byTestId('undo-button')}:not([disabled])`).waitFor();
    // Bea rewords the second block.
    const blocks = (await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: userA.accessToken })).body.blocks;
    await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${blocks[1].id}`, {
      token: userB.accessToken,
      body: { content: { text: 'two, by Bea' } },
    });
    await boardIs(ada, ['one', 'two, by Bea', 'three']);

    await ada.getByRole('button', { name: 'Undo' }).click();
    const dialog = ada.locator(byTestId('undo-dialog'));
    await dialog.waitFor();
    expect(await dialog.locator(byTestId('undo-dialog-details')).textContent()).toContain('two, by Bea');
    await screenshot(ada, 'canvases-05-undo-dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await ada.getByText('Undo cancelled: nothing changed.').waitFor();
    expect(await storedTexts()).toEqual(['one', 'two, by Bea', 'three']);

    await ada.getByRole('button', { name: 'Undo' }).click();
    await ada.locator(byTestId('undo-dialog')).getByRole('button', { name: 'Keep edited blocks' }).click();
    await boardIs(ada, ['two, by Bea']);
    expect(await storedTexts()).toEqual(['two, by Bea']);
    await boardIs(cy, ['two, by Bea']);

    await ada.getByRole('button', { name: 'Redo' }).click();
    await boardIs(ada, ['one', 'two, by Bea', 'three']);
    await boardIs(cy, ['one', 'two, by Bea', 'three']);
    expect(await storedTexts()).toEqual(['one', 'two, by Bea', 'three']);

    await ada.getByRole('button', { name: 'Undo' }).click();
    await ada.locator(byTestId('undo-dialog')).getByRole('button', { name: 'Undo anyway (remove them too)' }).click();
    await boardIs(ada, []);
    expect(await storedTexts()).toEqual([]);
    await screenshot(ada, 'canvases-06-undone-anyway');
  });

  test('blocks move with the ↑ / ↓ buttons', async () => {
    for (const text of ['alpha', 'beta', 'gamma'])
      await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
        token: userA.accessToken,
        body: { type: 'text', content: { text } },
      });
    await boardIs(ada, ['alpha', 'beta', 'gamma']);
    const block = (text: string) => ada.locator(`${byTestId('block-list')} > ${byTestId('block')}`, { hasText: text });
    await block('gamma').getByRole('button', { name: 'Move up' }).click();
    await boardIs(ada, ['alpha', 'gamma', 'beta']);
    await block('alpha').getByRole('button', { name: 'Move down' }).click();
    await boardIs(ada, ['gamma', 'alpha', 'beta']);
    // Ada's board moves as she clicks; Cy's only once the server has stored the move and sent it,
    // so the stored order is read after his board shows it.
    await boardIs(cy, ['gamma', 'alpha', 'beta']);
    expect(await storedTexts()).toEqual(['gamma', 'alpha', 'beta']);
  });

  test('at 390 × 844 every page fits without sideways scrolling, and its controls are reachable', async () => {
    const phone = await open('phone', { width: 390, height: 844 });
    const fits = async (name: string) => {
      const widths = await phone.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: window.innerWidth }));
      await screenshot(phone, `canvases-07-390-${name}`);
      expect({ page: name, ...widths, fits: widths.scroll <= 390 }).toEqual({ page: name, scroll: widths.scroll, client: 390, fits: true });
    };
    await fits('sign-in');
    await signIn(phone, userA);
    await item(phone, 'Launch plan').waitFor();
    await phone.getByRole('button', { name: 'Share Launch plan' }).click();
    await item(phone, 'Launch plan').locator(byTestId('share-member')).first().waitFor();
    await fits('home-sharing');
    await phone.getByRole('button', { name: 'Rename Launch plan' }).click();
    await fits('home-renaming');
    await phone.getByRole('button', { name: 'Delete Launch plan' }).click();
    await phone.locator(byTestId('delete-canvas-dialog')).waitFor();
    await fits('delete-dialog');
    await phone.locator(byTestId('delete-canvas-dialog')).getByRole('button', { name: 'Cancel' }).click();
    await openCanvas(phone, canvasId, userA.id);
    await boardIs(phone, ['gamma', 'alpha', 'beta']);
    await fits('canvas');
    // The nav, the prompt, Generate and a block's controls can all be reached and used by a tap.
    for (const name of ['Canvases', 'Sign out'])
      expect(await phone.getByRole(name === 'Sign out' ? 'button' : 'link', { name, exact: true }).isVisible()).toBe(true);
    await phone.getByLabel('Prompt').scrollIntoViewIfNeeded();
    expect(await phone.getByRole('button', { name: 'Generate' }).isEnabled()).toBe(true);
    const beta = phone.locator(`${byTestId('block-list')} > ${byTestId('block')}`, { hasText: 'beta' });
    await beta.getByRole('button', { name: 'Move up' }).click();
    await boardIs(phone, ['gamma', 'beta', 'alpha']);
    await fits('canvas-after-move');
    // Every other page of the console fits too, its header included.
    for (const page of ['assistant', 'usage', 'flows', 'agents', 'devices', 'keys', 'account']) {
      await phone.goto(`${t.url}/#/${page}`);
      await phone.locator(`${byTestId(`${page}-view`)}:not([hidden])`).waitFor();
      await fits(page);
    }
    await phone.context().close();
  });

  test("Ada removes Cy from the canvas page's members panel; Cy's list no longer has the canvas", async () => {
    await ada.goto(`${t.url}/#/`);
    await openCanvas(ada, canvasId, userA.id);
    const row = ada.locator(`${byTestId('member')}[data-user-id="${userC.id}"]`);
    // By keyboard: the side panels above the members' still move as presence and the generation
    // state arrive, and a pointer click at coordinates taken a moment earlier can land beside it.
    await row.getByRole('button', { name: 'Remove Cy' }).press('Enter');
    await ada.locator(byTestId('remove-member-dialog')).getByRole('button', { name: 'Remove' }).click();
    await row.waitFor({ state: 'detached' });
    expect(await members(canvasId)).toEqual([`${userA.email}:owner`, `${userB.email}:editor`]);
    // Neither the creator's row nor Ada's own has a remove button.
    expect(await ada.locator(`${byTestId('member')}[data-user-id="${userA.id}"] ${byTestId('member-remove')}`).count()).toBe(0);
    await cy.goto(`${t.url}/#/`);
    await cy.locator(byTestId('home-view')).waitFor();
    await cy.getByText('No canvases yet.').waitFor();
  });

  test('Sign out revokes the session on the server: its refresh token is refused afterwards', async () => {
    const session = await cy.evaluate(() => JSON.parse(sessionStorage.getItem('switchboard.console.session') ?? 'null'));
    // The refresh token is in the HttpOnly session cookie (0330), readable here only through the browser.
    const refreshToken = (await cy.context().cookies()).find((cookie) => cookie.name === 'sb_refresh')?.value;
    expect(refreshToken).toEqual(expect.any(String));
    // The console signs out here at once and then ends the session on the server: the refresh is
    // tried once the server has answered the sign-out, not when the page first shows it.
    const loggedOut = cy.waitForResponse((response) => new URL(response.url()).pathname === '/api/v1/auth/logout');
    await cy.getByRole('button', { name: 'Sign out' }).click();
    await cy.locator(byTestId('auth-view')).waitFor();
    expect(await cy.evaluate(() => sessionStorage.getItem('switchboard.console.session'))).toBeNull();
    expect((await loggedOut).status()).toBe(204);
    const refresh = await request('POST', `${t.api}/auth/refresh`, { body: { refreshToken } });
    expect(refresh.status).toBe(401);
    const me = await request('GET', `${t.api}/me`, { token: session.accessToken });
    expect(me.status).toBe(401);
  });

  test('the pages loaded nothing from another host, kept the strict CSP, and logged no errors', async () => {
    const page = await request('GET', `${t.url}/`, {});
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(foreign).toEqual([]);
    expect(problems).toEqual([]);
  });
});

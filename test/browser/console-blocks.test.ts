import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app';
import { byTestId, launchChromium, openCanvas, openPage, screenshot, signIn, WAIT_MS } from '../support/browser';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';

/**
 * Writing by hand in the console, two people in two Chromium contexts: A adds blocks
 * with the add form, B edits one, A drags one to the top, B moves one with the keyboard, A deletes
 * one; each change reaches the other board live (room events), and the ranks the server computed
 * keep both boards in the same order as the API's.
 */
describe('web console: add, edit, delete and reorder blocks, live for collaborators', () => {
  let t: TestApp;
  let browser: Browser;
  let pageA: Page;
  let pageB: Page;
  let userA: TestUser;
  let userB: TestUser;
  let canvasId: string;
  const problems: string[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    [userA, userB] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bea')]);
    canvasId = await createCanvas(t.api, userA, 'Handwritten');
    await addMember(t.api, userA, canvasId, userB, 'editor');
    browser = await launchChromium();
    [pageA, pageB] = await Promise.all([openPage(browser, t.url, 'A', problems), openPage(browser, t.url, 'B', problems)]);
    await Promise.all([signIn(pageA, userA), signIn(pageB, userB)]);
    await Promise.all([openCanvas(pageA, canvasId, userA.id), openCanvas(pageB, canvasId, userB.id)]);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  /** A board's blocks in DOM order as `type: text` (controls carry no text). */
  const board = (page: Page) =>
    page
      .locator(`${byTestId('block-list')} > ${byTestId('block')}`)
      .evaluateAll((nodes) => nodes.map((n) => `${(n as HTMLElement).dataset.blockType}: ${n.textContent?.trim()}`));
  const boardIs = (page: Page, expected: string[]) =>
    page.waitForFunction(
      (want) =>
        JSON.stringify(
          [...document.querySelectorAll<HTMLElement>('[data-testid="block-list"] > [data-testid="block"]')].map(
            (n) => `${n.dataset.blockType}: ${n.textContent?.trim()}`,
          ),
        ) === JSON.stringify(want),
      expected,
      { timeout: WAIT_MS },
    );
  /** The API's order: the truth both boards must match. */
  const stored = async () => {
    const res = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: userA.accessToken });
    return res.body.blocks.map(
      (b: { type: string; content: Record<string, unknown> }) =>
        `${b.type}: ${b.content.text ?? (b.content.items as string[] | undefined)?.join('') ?? ''}`,
    );
  };
  const block = (page: Page, text: string) => page.locator(`${byTestId('block-list')} > ${byTestId('block')}`, { hasText: text });

  test('A adds a heading, a paragraph and a todo with the add form; both boards show them in order', async () => {
    expect(await pageA.locator(byTestId('add-block-form')).isVisible()).toBe(true);
    const add = async (type: string, fill: Record<string, string>) => {
      await pageA.locator(byTestId('add-block-type')).selectOption(type);
      for (const [field, value] of Object.entries(fill)) {
        const input = pageA.locator(`${byTestId('add-block-form')} ${byTestId(`field-${field}`)}`);
        if (field === 'level') await input.selectOption(value);
        else await input.fill(value);
      }
      await pageA.locator(byTestId('add-block-submit')).click();
    };
    await add('heading', { text: 'Launch plan', level: '2' });
    await boardIs(pageA, ['heading: Launch plan']);
    await add('text', { text: 'We launch in May.' });
    await boardIs(pageA, ['heading: Launch plan', 'text: We launch in May.']);
    await add('todo', { text: 'book venue' });
    const expected = ['heading: Launch plan', 'text: We launch in May.', 'todo: book venue'];
    await Promise.all([boardIs(pageA, expected), boardIs(pageB, expected)]);
    expect(await stored()).toEqual(expected);
    expect(await pageB.locator(`${byTestId('block')}[data-block-type="heading"] h3`).textContent()).toBe('Launch plan');
    // An empty paragraph is refused in the page, before any request.
    await pageA.locator(byTestId('add-block-type')).selectOption('text');
    await pageA.locator(byTestId('add-block-submit')).click();
    expect(await pageA.locator(byTestId('add-block-error')).textContent()).toBe('Write something first.');
    await screenshot(pageA, 'blocks-01-a-added');
    await screenshot(pageB, 'blocks-01-b-sees-added');
  });

  test('B edits the paragraph in place; A sees the new text (block_updated)', async () => {
    await block(pageB, 'We launch in May.').hover();
    await block(pageB, 'We launch in May.').locator(byTestId('block-edit')).click();
    const form = pageB.locator(byTestId('block-edit-form'));
    await form.locator(byTestId('field-text')).fill('We launch on 12 May, in Lisbon.');
    await screenshot(pageB, 'blocks-02-b-editing');
    await form.locator(byTestId('block-save')).click();
    const expected = ['heading: Launch plan', 'text: We launch on 12 May, in Lisbon.', 'todo: book venue'];
    await Promise.all([boardIs(pageA, expected), boardIs(pageB, expected)]);
    expect(await stored()).toEqual(expected);
    await screenshot(pageA, 'blocks-02-a-sees-edit');
  });

  test('A drags the todo to the top; B sees the new order, and the ranks the server gave sort that way', async () => {
    // A real pointer drag: press on the todo's handle, move in steps onto the top edge of the heading, release
    // (the board scrolled into view first: adding focused the add form below it).
    await pageA.evaluate(() => window.scrollTo(0, 0));
    const from = (await block(pageA, 'book venue').locator(byTestId('block-move')).boundingBox())!;
    const to = (await block(pageA, 'Launch plan').boundingBox())!;
    await pageA.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await pageA.mouse.down();
    await pageA.mouse.move(from.x + from.width / 2, from.y + from.height / 2 - 10, { steps: 3 });
    await pageA.mouse.move(to.x + to.width / 2, to.y + 3, { steps: 8 });
    await pageA.locator(`${byTestId('block')}.drop-before`).waitFor();
    await pageA.mouse.up();
    const expected = ['todo: book venue', 'heading: Launch plan', 'text: We launch on 12 May, in Lisbon.'];
    await Promise.all([boardIs(pageA, expected), boardIs(pageB, expected)]);
    expect(await stored()).toEqual(expected);
    const ranks = await pageB.locator(byTestId('block')).evaluateAll((nodes) => nodes.map((n) => (n as HTMLElement).dataset.rank!));
    expect([...ranks].sort()).toEqual(ranks);
    await screenshot(pageB, 'blocks-03-b-sees-reorder');
  });

  test('B moves the heading down with the keyboard (↓ on its handle); A sees it', async () => {
    await block(pageB, 'Launch plan').locator(byTestId('block-move')).focus();
    await pageB.keyboard.press('ArrowDown');
    const expected = ['todo: book venue', 'text: We launch on 12 May, in Lisbon.', 'heading: Launch plan'];
    await Promise.all([boardIs(pageA, expected), boardIs(pageB, expected)]);
    expect(await stored()).toEqual(expected);
  });

  test('A deletes the paragraph (two presses); it vanishes from both boards', async () => {
    const remove = block(pageA, 'Lisbon').locator(byTestId('block-delete'));
    await remove.click();
    expect(await remove.getAttribute('data-confirm')).toBe('true');
    expect(await board(pageA)).toHaveLength(3);
    await screenshot(pageA, 'blocks-04-a-confirm-delete');
    await remove.click();
    const expected = ['todo: book venue', 'heading: Launch plan'];
    await Promise.all([boardIs(pageA, expected), boardIs(pageB, expected)]);
    expect(await stored()).toEqual(expected);
  });

  test('a viewer gets no add form and no block controls', async () => {
    const viewer = await registerUser(t.api, 'Vic');
    await addMember(t.api, userA, canvasId, viewer, 'viewer');
    const page = await openPage(browser, t.url, 'viewer', problems);
    await signIn(page, viewer);
    await openCanvas(page, canvasId, viewer.id);
    await boardIs(page, ['todo: book venue', 'heading: Launch plan']);
    expect(await page.locator(byTestId('add-block-form')).isHidden()).toBe(true);
    expect(await page.locator(byTestId('block-edit')).count()).toBe(0);
    expect(await page.locator(`${byTestId('block')}[draggable="true"]`).count()).toBe(0);
    await page.context().close();
  });

  test('no script errors or failed requests on any page', () => {
    expect(problems).toEqual([]);
  });
});

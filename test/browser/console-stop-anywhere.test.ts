import type { Browser, Page } from 'playwright-core';
import type { ChatRequest, ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { boardShows, byTestId, launchChromium, openCanvas, openPage, screenshot, signIn, storedBlockTexts } from '../support/browser';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * A runaway generation is stopped, and a finished one undone, from whichever tab a person has: Bea
 * (editor) stops Ada's generation from the "Ada is generating…" banner while Cy (viewer) is offered
 * no Stop; Ada's second tab offers "Stop your generation", and so do the banners of pages opened
 * after it started (Bea's reload, Ada's phone); after a reload Ada's tab follows her running
 * generation again and stops it; after a reload on a 390 px phone Ada undoes her last
 * generation, keeping the block Bea edited after the confirmation, and redoes it.
 */
const texts = (count: number) => Array.from({ length: count }, (_, i) => ({ name: 'create_text', args: { text: `paragraph ${i + 1}` } }));
/**
 * A prompt with "long" gets 40 blocks (8 s at 200 ms a call: long enough to stop), one with
 * "runaway" 100 (20 s: long enough to open the canvas elsewhere first); others get 3.
 */
function responder(request: ChatRequest): ChatTurn {
  if (request.messages.at(-1)?.role === 'tool') return { text: 'Done.' };
  const prompt = JSON.stringify(request.messages.at(-1)?.content ?? '');
  return { toolCalls: prompt.includes('runaway') ? texts(100) : prompt.includes('long') ? texts(40) : texts(3) };
}

describe('web console: stop and undo a generation from any tab', () => {
  let t: TestApp;
  let browser: Browser;
  let ada: Page;
  let bea: Page;
  let cy: Page;
  let userA: TestUser;
  let userB: TestUser;
  let userC: TestUser;
  let canvasId: string;
  const problems: string[] = [];
  // Expected answers: the undo's question (409 edited_blocks).
  const allowed = (status: number, pathname: string) => status === 409 && pathname.endsWith('/undo');

  const stored = () => storedBlockTexts(t.api, canvasId, userA.accessToken);
  const boardIs = boardShows;
  const generationStatus = async (generationId: string) =>
    (await request('GET', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}`, { token: userA.accessToken })).body.generation
      .status;
  const startGeneration = async (page: Page, prompt: string) => {
    await page.getByLabel('Prompt').fill(prompt);
    await page.getByRole('button', { name: 'Generate' }).click();
    await page
      .locator(`${byTestId('generation-event')}[data-event="tool_output"]`)
      .first()
      .waitFor();
  };
  const banner = (page: Page) => page.getByRole('status').filter({ has: page.locator(byTestId('collab-generation-text')) });

  beforeAll(async () => {
    t = await startTestApp({ llmDelayMs: 200, responder });
    [userA, userB, userC] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bea'), registerUser(t.api, 'Cy')]);
    canvasId = (await request('POST', `${t.api}/canvases`, { token: userA.accessToken, body: { title: 'Launch notes' } })).body.canvas.id;
    for (const [user, role] of [
      [userB, 'editor'],
      [userC, 'viewer'],
    ] as const)
      await request('POST', `${t.api}/canvases/${canvasId}/members`, { token: userA.accessToken, body: { email: user.email, role } });
    browser = await launchChromium();
    [ada, bea, cy] = await Promise.all([
      openPage(browser, t.url, 'Ada', problems, allowed),
      openPage(browser, t.url, 'Bea', problems),
      openPage(browser, t.url, 'Cy', problems),
    ]);
    for (const [page, user] of [
      [ada, userA],
      [bea, userB],
      [cy, userC],
    ] as const) {
      await signIn(page, user);
      await openCanvas(page, canvasId, user.id);
    }
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  afterEach(() => {
    expect(problems).toEqual([]);
  });

  test("Bea stops Ada's runaway generation from the banner; Cy, a viewer, gets no Stop; Ada's other tab offers its own", async () => {
    const adaElsewhere = await openPage(browser, t.url, 'Ada, second tab', problems);
    await signIn(adaElsewhere, userA);
    await openCanvas(adaElsewhere, canvasId, userA.id);

    await startGeneration(ada, 'A long report on the launch');
    await banner(bea).getByText('Ada is generating…').waitFor();
    await banner(cy).getByText('Ada is generating…').waitFor();
    await banner(adaElsewhere).getByText('You are generating…').waitFor();
    expect(await cy.getByRole('button', { name: "Stop Ada's generation" }).count()).toBe(0);
    await adaElsewhere.getByRole('button', { name: 'Stop your generation' }).waitFor();
    // The tab that started it shows it in its Generate panel, not in the banner.
    expect(await banner(ada).isHidden()).toBe(true);
    await screenshot(bea, 'stop-anywhere-01-banner-stop');

    const generationId = await currentGeneration(ada);
    await bea.getByRole('button', { name: "Stop Ada's generation" }).click();
    await bea.getByText("Ada's generation was stopped: nothing of it was saved.").waitFor();
    await ada.getByText('Stopped: nothing was saved.').waitFor();
    await banner(bea).waitFor({ state: 'hidden' });
    await banner(adaElsewhere).waitFor({ state: 'hidden' });
    expect(await generationStatus(generationId)).toBe('cancelled');
    expect(await stored()).toEqual([]);
    await adaElsewhere.context().close();
  });

  test('after a reload, Ada follows her running generation again and stops it', async () => {
    await startGeneration(ada, 'Another long report');
    const generationId = await currentGeneration(ada);
    await ada.reload();
    await ada.getByText('following your running generation again').waitFor();
    // Its events are read again from the start: the drafts come back.
    await ada
      .locator(`${byTestId('generation-event')}[data-event="tool_output"]`)
      .first()
      .waitFor();
    await ada.getByRole('button', { name: 'Stop' }).click();
    await ada.getByText('Stopped: nothing was saved.').waitFor();
    expect(await generationStatus(generationId)).toBe('cancelled');
    expect(await stored()).toEqual([]);
  });

  test("opened after it started, on Bea's laptop and on Ada's 390 × 844 phone, the banner still offers Stop; Ada stops it from her phone", async () => {
    await startGeneration(ada, 'A runaway report');
    const generationId = await currentGeneration(ada);
    // Bea reloads while it writes; Ada picks up her phone, which has never seen this generation.
    await bea.reload();
    const phone = await openPage(browser, t.url, 'Ada, phone', problems);
    await phone.setViewportSize({ width: 390, height: 844 });
    await signIn(phone, userA);
    await openCanvas(phone, canvasId, userA.id);

    await banner(bea).getByText('Ada is generating…').waitFor();
    await bea.getByRole('button', { name: "Stop Ada's generation" }).waitFor();
    await banner(phone).getByText('You are generating…').waitFor();
    await screenshot(phone, 'stop-anywhere-03-phone-banner-390');
    await phone.getByRole('button', { name: 'Stop your generation' }).click();
    await phone.getByText('Your generation was stopped: nothing of it was saved.').waitFor();
    await ada.getByText('Stopped: nothing was saved.').waitFor();
    await banner(bea).waitFor({ state: 'hidden' });
    expect(await generationStatus(generationId)).toBe('cancelled');
    expect(await stored()).toEqual([]);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await phone.context().close();
  });

  test("on a 390 px phone, after a reload, Ada undoes her last generation keeping Bea's edit, then redoes it", async () => {
    await ada.setViewportSize({ width: 390, height: 844 });
    await ada.getByLabel('Prompt').fill('Three short paragraphs');
    await ada.getByRole('button', { name: 'Generate' }).click();
    await ada.getByText('Done: 3 block(s).').waitFor();
    await boardIs(bea, ['paragraph 1', 'paragraph 2', 'paragraph 3']);
    // Bea rewords the second paragraph in place.
    const second = bea.locator(byTestId('block')).filter({ hasText: 'paragraph 2' });
    await second.hover();
    await second.getByRole('button', { name: 'Edit block' }).click();
    await second.getByLabel('Text').fill('paragraph 2, by Bea');
    await second.getByRole('button', { name: 'Save' }).click();
    await boardIs(ada, ['paragraph 1', 'paragraph 2, by Bea', 'paragraph 3']);

    await ada.reload();
    await ada.getByText('Undo removes the last AI generation here (3 block(s) on the canvas).').waitFor();
    await ada.getByRole('button', { name: 'Undo' }).click();
    const dialog = ada.getByRole('dialog');
    await dialog.getByText('paragraph 2, by Bea').waitFor();
    await screenshot(ada, 'stop-anywhere-02-undo-dialog-390');
    await dialog.getByRole('button', { name: 'Keep edited blocks' }).click();
    await boardIs(ada, ['paragraph 2, by Bea']);
    await boardIs(bea, ['paragraph 2, by Bea']);
    expect(await stored()).toEqual(['paragraph 2, by Bea']);

    await ada.getByRole('button', { name: 'Redo' }).click();
    await boardIs(bea, ['paragraph 1', 'paragraph 2, by Bea', 'paragraph 3']);
    expect(await stored()).toEqual(['paragraph 1', 'paragraph 2, by Bea', 'paragraph 3']);
    // Nothing on the phone's page is wider than its screen.
    expect(await ada.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  });
});

/** The generation this tab's panel remembers for the open canvas. */
async function currentGeneration(page: Page): Promise<string> {
  return page.evaluate(() => {
    const canvasId = /#\/canvases\/(.+)$/.exec(location.hash)![1];
    return sessionStorage.getItem(`switchboard.generation.${canvasId}`)!;
  });
}

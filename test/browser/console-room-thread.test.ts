import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { Browser, Page } from 'playwright-core';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { createLogger } from '../../src/lib/logger';
import type { CanvasServerEvents } from '../../src/schemas/socket-events';
import { testConfig } from '../support/app';
import { byTestId, launchChromium, openCanvas, openPage, screenshot, signIn, WAIT_MS } from '../support/browser';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { connectCanvas, join, record, type CanvasClient } from '../support/sockets';
import { waitUntil } from '../support/wait';

type ThreadEvent = Parameters<CanvasServerEvents['thread_event']>[0];

const TASK_ID = '8c1d7e2a-4b3f-4a5e-9d60-abcdefabcdef';

/**
 * The scripted model: "delete the old task" calls `delete_task` on the turn's device (a call that
 * always asks first); a tool's result gets a short answer; anything else is answered, word by word
 * (so it streams), with the message as the model read it: under its sender's name.
 */
function responder(req: ChatRequest): ChatTurn {
  const last = req.messages.at(-1);
  if (last?.role === 'tool') return { text: 'The old task is gone.' };
  const lastUser = [...req.messages].reverse().find((m) => m.role === 'user');
  const asked = lastUser ? messageText(lastUser) : '';
  if (/delete the old task/i.test(asked) && req.tools?.some((tool) => tool.function.name === 'delete_task'))
    return { toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] };
  return { text: `You wrote ${asked} and here is a considered answer, told word by word so that everyone in the room sees it arrive.` };
}

/**
 * The canvas page's assistant panel, as the issue's "done when" says: two browsers (Ada, the owner,
 * and Bob, an editor, on API node A) and a Socket.IO client on API node B (Vic, a viewer) in one
 * canvas room. Ada starts a thread, sets "any editor" and lends her device from the panel; Ada and
 * Bob post at once; both turns run one after the other and each answer streams to all three under
 * its author's name; Ada's turn asks to delete a task on her device, Bob approves it in his browser
 * and all three see it decided. Vic's post is refused with nothing written; once Ada removes Vic
 * from the canvas, the thread's next turn reaches both browsers and not Vic.
 */
describe('web console: the assistant in the canvas room', () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  let nodeA: RunningSwitchboard;
  let nodeB: RunningSwitchboard;
  let browser: Browser;
  let ada: TestUser;
  let bob: TestUser;
  let vic: TestUser;
  let device: DeviceSimulator | undefined;
  const sockets: CanvasClient[] = [];
  const problems: string[] = [];

  beforeAll(async () => {
    // A PostgreSQL server: the two nodes share the database (PGlite lives in one process) and the Redis key prefix.
    database = await createTestDatabase({ server: serverPostgresUrl(), migrated: true });
    llm = await startScriptedLLM(responder, { delayMs: 15 });
    const keyPrefix = `room-panel-${randomUUID().slice(0, 8)}`;
    const node = (roles: string) =>
      startSwitchboard(
        testConfig({
          keyPrefix,
          databaseUrl: database.url,
          env: { SWITCHBOARD_ROLES: roles, HITL_TIMEOUT_MS: '120000', BROADCAST_CHUNK_DELAY_MS: '5' },
        }),
        {
          logger: createLogger({ level: 'silent' }),
          endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
        },
      );
    nodeA = await node('api,worker,scheduler');
    nodeB = await node('api');
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    device?.close();
    await browser?.close();
    await nodeB?.stop();
    await nodeA?.stop();
    await llm?.close();
    await database?.drop();
  });

  afterEach(() => expect(problems.splice(0)).toEqual([]));

  const apiA = () => `${nodeA.url}/api/v1`;
  const apiB = () => `${nodeB.url}/api/v1`;

  /** A browser signed in as `user` with the canvas open; its panel's turns recorded as they stream (see `streamedPrefixes`). */
  const openBrowser = async (user: TestUser, canvasId: string) => {
    const page = await openPage(browser, nodeA.url!, user.name, problems);
    await signIn(page, user);
    await openCanvas(page, canvasId, user.id);
    await page.locator(byTestId('room-thread-panel')).waitFor();
    await page.evaluate(() => {
      // Each answer's text as it was drawn while streaming: proof it arrived in pieces.
      const seen: Record<string, string[]> = {};
      (window as unknown as { streamed: typeof seen }).streamed = seen;
      new MutationObserver(() => {
        for (const node of document.querySelectorAll<HTMLElement>('[data-testid="thread-answer"][data-status="streaming"]')) {
          const text = node.querySelector('[data-testid="thread-answer-text"]')?.textContent ?? '';
          if (text) (seen[node.dataset.turnId!] ??= []).push(text);
        }
      }).observe(document.body, { childList: true, subtree: true, characterData: true });
    });
    return page;
  };
  const streamedPrefixes = (page: Page, turnId: string) =>
    page.evaluate((id) => (window as unknown as { streamed: Record<string, string[]> }).streamed[id] ?? [], turnId);
  const answer = (page: Page, turnId: string, status = '') =>
    page.locator(`${byTestId('thread-answer')}[data-turn-id="${turnId}"]${status && `[data-status="${status}"]`}`);
  const message = (page: Page, turnId: string) => page.locator(`${byTestId('thread-message')}[data-turn-id="${turnId}"]`);
  const approvalCard = (page: Page, approvalId: string, status = '') =>
    page.locator(`${byTestId('thread-approval')}[data-approval-id="${approvalId}"]${status && `[data-status="${status}"]`}`);
  const ofTurn = (events: ThreadEvent[], turnId: string) => events.filter((e) => e.turnId === turnId);
  const finalOf = (events: ThreadEvent[], turnId: string) =>
    ofTurn(events, turnId).find((e) => e.event.type === 'final')?.event as { response: string } | undefined;

  test('two browsers and a socket on another node: posts at once, in order, streamed with authors; an editor approves; a viewer is refused; a removed member hears no more', async () => {
    [ada, bob, vic] = await Promise.all([registerUser(apiA(), 'Ada'), registerUser(apiA(), 'Bob'), registerUser(apiA(), 'Vic')]);
    const canvasId = await createCanvas(apiA(), ada, 'Launch');
    await addMember(apiA(), ada, canvasId, bob, 'editor');
    await addMember(apiA(), ada, canvasId, vic, 'viewer');
    device = await DeviceSimulator.connect({
      url: nodeA.url!,
      accessToken: ada.accessToken,
      deviceId: `ada-laptop-${randomUUID().slice(0, 6)}`,
      seed: { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] },
      reconnection: false,
    });

    // Ada starts a thread, lets any editor decide its approvals and lends her laptop, all in the panel.
    const adaPage = await openBrowser(ada, canvasId);
    await adaPage.locator(byTestId('thread-empty')).waitFor();
    await adaPage.locator(byTestId('thread-new-title')).fill('Launch plan');
    await adaPage.locator(byTestId('thread-create')).click();
    await adaPage.locator(byTestId('thread-body')).waitFor();
    await adaPage.locator(byTestId('thread-policy')).selectOption('any_editor');
    await adaPage.locator(byTestId('thread-policy-save')).click();
    await adaPage.locator(`${byTestId('thread-policy-text')}[data-policy="any_editor"]`).waitFor();
    await adaPage.locator(byTestId('thread-lend-select')).selectOption(device.deviceId);
    await adaPage.locator(byTestId('thread-lend')).click();
    await adaPage.locator(`${byTestId('thread-device')}[data-device-id="${device.deviceId}"]`).waitFor();
    const { threads } = (await request('GET', `${apiA()}/canvases/${canvasId}/threads`, { token: ada.accessToken })).body;
    expect(threads.map((thread: { title: string }) => thread.title)).toEqual(['Launch plan']);
    const threadId = threads[0].id as string;
    const threadUrl = `${apiB()}/canvases/${canvasId}/threads/${threadId}`;

    // Bob opens the canvas: the panel shows the thread, its policy and the lent laptop; he may post.
    const bobPage = await openBrowser(bob, canvasId);
    await bobPage.locator(`${byTestId('thread-policy-text')}[data-policy="any_editor"]`).waitFor();
    await bobPage.locator(`${byTestId('thread-device')}[data-device-id="${device.deviceId}"]`).waitFor();
    await bobPage.locator(byTestId('thread-form')).waitFor();

    // Vic, a viewer, follows the room from API node B.
    const vicSocket = await connectCanvas(nodeB.url!, vic.accessToken);
    sockets.push(vicSocket);
    expect((await join(vicSocket, canvasId)).ok).toBe(true);
    const vicHeard = record(vicSocket, 'thread_event');

    // Who is typing reaches the others (Bob sees no line of his own).
    await bobPage.locator(byTestId('thread-input')).pressSequentially('Wh');
    await adaPage
      .locator(byTestId('thread-typing'))
      .filter({ hasText: `${bob.name} is typing…` })
      .waitFor();
    expect(await bobPage.locator(byTestId('thread-typing')).textContent()).toBe('');

    // Ada (on her laptop) and Bob post at the same moment.
    await adaPage.locator(byTestId('thread-input')).fill('Please delete the old task');
    await adaPage.locator(byTestId('thread-device-select')).selectOption(device.deviceId);
    await bobPage.locator(byTestId('thread-input')).fill('What about the launch date?');
    await Promise.all([adaPage.locator(byTestId('thread-send')).click(), bobPage.locator(byTestId('thread-send')).click()]);
    await waitUntil(() => vicHeard.filter((e) => e.event.type === 'message').length === 2, WAIT_MS);
    const messages = vicHeard.filter((e) => e.event.type === 'message');
    const turnOf = (user: TestUser) => messages.find((e) => (e.event as { authorId: string }).authorId === user.id)!.turnId;
    const [adaTurn, bobTurn] = [turnOf(ada), turnOf(bob)];

    // Ada's turn asks to delete the task on her laptop; under "any editor" Bob decides it in his browser.
    await waitUntil(() => ofTurn(vicHeard, adaTurn).some((e) => e.event.type === 'approval_requested'), WAIT_MS);
    const asked = ofTurn(vicHeard, adaTurn).find((e) => e.event.type === 'approval_requested')!.event as Record<string, any>;
    expect(asked).toMatchObject({ toolName: 'delete_task', deciders: { policy: 'any_editor' } });
    await approvalCard(adaPage, asked.approvalId).waitFor();
    await approvalCard(bobPage, asked.approvalId).locator(byTestId('thread-approve')).waitFor();
    await bobPage.locator(`${byTestId('thread-assistant-state')}[data-state="waiting_for_approval"]`).waitFor();
    await screenshot(bobPage, 'room-thread-01-approval');
    expect(device.calls.filter((call) => call.action === 'delete')).toHaveLength(0);
    await approvalCard(bobPage, asked.approvalId).locator(byTestId('thread-approve')).click();

    // Everyone sees it decided, by Bob.
    await approvalCard(bobPage, asked.approvalId, 'approved').waitFor();
    await approvalCard(adaPage, asked.approvalId, 'approved').waitFor();
    await waitUntil(() => ofTurn(vicHeard, adaTurn).some((e) => e.event.type === 'approval_resolved'), WAIT_MS);
    expect(ofTurn(vicHeard, adaTurn).find((e) => e.event.type === 'approval_resolved')!.event).toMatchObject({
      status: 'approved',
      decidedBy: bob.id,
    });
    expect(await approvalCard(adaPage, asked.approvalId).locator(byTestId('thread-approval-status')).textContent()).toBe(
      'Approved by Bob.',
    );
    expect(await approvalCard(bobPage, asked.approvalId).locator(byTestId('thread-approval-status')).textContent()).toBe(
      'Approved by you.',
    );
    expect(await approvalCard(adaPage, asked.approvalId).locator(byTestId('thread-approve')).count()).toBe(0);

    // Both turns end, one after the other, for all three.
    await waitUntil(() => Boolean(finalOf(vicHeard, adaTurn) && finalOf(vicHeard, bobTurn)), WAIT_MS);
    const seqs = vicHeard.map((e) => e.seq);
    expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
    const span = (turnId: string) => {
      const own = ofTurn(vicHeard, turnId).filter(
        (e) => e.event.type !== 'message' && !(e.event.type === 'assistant_state' && e.event.state === 'queued'),
      );
      return [own[0].seq, own.at(-1)!.seq];
    };
    const [first, second] = [span(adaTurn), span(bobTurn)].sort((a, b) => a[0] - b[0]);
    expect(first[1]).toBeLessThan(second[0]);
    expect(device.calls.filter((call) => call.action === 'delete')).toHaveLength(1);

    for (const [page, label] of [
      [adaPage, 'ada'],
      [bobPage, 'bob'],
    ] as const) {
      for (const [turnId, author] of [
        [adaTurn, ada],
        [bobTurn, bob],
      ] as const) {
        const final = finalOf(vicHeard, turnId)!.response;
        await answer(page, turnId, 'done').waitFor();
        expect(await answer(page, turnId).locator(byTestId('thread-answer-text')).textContent()).toBe(final);
        expect(await answer(page, turnId).locator('.who').textContent()).toBe(`Assistant · to ${author.name}`);
        expect(await message(page, turnId).getAttribute('data-author-id')).toBe(author.id);
        expect(await message(page, turnId).locator(byTestId('thread-author')).textContent()).toContain(author.name);
      }
      // Bob's answer came in pieces in this browser too (Ada's is short after its tool).
      const pieces = await streamedPrefixes(page, bobTurn);
      const final = finalOf(vicHeard, bobTurn)!.response;
      expect({ label, partial: pieces.some((text) => text.length < final.length && final.startsWith(text)) }).toEqual({
        label,
        partial: true,
      });
      await page.locator(`${byTestId('thread-assistant-state')}[data-state="idle"]`).waitFor();
    }
    // The model read each message under its sender's name; Vic heard Bob's answer in pieces too.
    expect(finalOf(vicHeard, bobTurn)!.response).toContain(`[${bob.name}] What about the launch date?`);
    expect(ofTurn(vicHeard, bobTurn).filter((e) => e.event.type === 'text_chunk').length).toBeGreaterThan(1);
    await screenshot(adaPage, 'room-thread-02-answers');

    // Vic's post (node B) is refused, and nothing is written.
    const historyLength = async () =>
      (await request('GET', `${apiB()}/chat/sessions/${threadId}/history`, { token: ada.accessToken })).body.messages.length as number;
    const before = await historyLength();
    const refused = await request('POST', `${threadUrl}/messages`, { token: vic.accessToken, body: { message: 'Let me in' } });
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 403, code: 'forbidden' });
    expect(await historyLength()).toBe(before);

    // Ada removes Vic in her browser: the thread's next turn reaches both browsers, not Vic.
    const heardBefore = vicHeard.length;
    await adaPage.getByRole('button', { name: `Remove ${vic.name}` }).click();
    await adaPage.locator(byTestId('remove-member-dialog')).getByRole('button', { name: 'Remove' }).click();
    await adaPage
      .locator(byTestId('invite-result'))
      .filter({ hasText: `${vic.name} was removed.` })
      .waitFor();
    await bobPage.locator(byTestId('thread-input')).fill('Is Vic still here?');
    await bobPage.locator(byTestId('thread-send')).click();
    const lastAnswer = (page: Page) => page.locator(`${byTestId('thread-answer')}[data-status="done"]`).nth(2);
    await lastAnswer(adaPage).waitFor();
    await lastAnswer(bobPage).waitFor();
    expect(await lastAnswer(adaPage).locator(byTestId('thread-answer-text')).textContent()).toContain('Is Vic still here?');
    expect(vicHeard.length).toBe(heardBefore);
    const vicReads = await request('GET', `${apiB()}/chat/sessions/${threadId}/history`, { token: vic.accessToken });
    expect(vicReads.status).toBe(404);
  }, 120_000);

  test('a member who opens the canvas while a turn waits sees it from its start, decides it, and every page shows it once', async () => {
    const [owner, editor] = await Promise.all([registerUser(apiA(), 'Ada'), registerUser(apiA(), 'Bob')]);
    const canvasId = await createCanvas(apiA(), owner, 'Late');
    await addMember(apiA(), owner, canvasId, editor, 'editor');
    const laptop = await DeviceSimulator.connect({
      url: nodeB.url!,
      accessToken: owner.accessToken,
      deviceId: `ada-laptop-${randomUUID().slice(0, 6)}`,
      seed: { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] },
      reconnection: false,
    });
    try {
      const created = await request('POST', `${apiA()}/canvases/${canvasId}/threads`, { token: owner.accessToken, body: { title: 'Ops' } });
      const threadUrl = `${apiA()}/canvases/${canvasId}/threads/${created.body.thread.id}`;
      expect((await request('PUT', `${threadUrl}/devices/${laptop.deviceId}`, { token: owner.accessToken })).status).toBe(200);

      // Bob watches; Ada's turn (posted over the API) waits for her approval: the requester decides.
      const bobPage = await openBrowser(editor, canvasId);
      await bobPage.locator(byTestId('thread-body')).waitFor();
      const posted = await request('POST', `${threadUrl}/messages`, {
        token: owner.accessToken,
        body: { message: 'Please delete the old task', deviceId: laptop.deviceId },
      });
      expect(posted.status).toBe(202);
      const turnId = posted.body.messageId as string;
      const card = (page: Page, status = 'pending') =>
        page.locator(`${byTestId('thread-approval')}[data-turn-id="${turnId}"][data-status="${status}"]`);
      await card(bobPage).waitFor();
      expect(await card(bobPage).locator(byTestId('thread-approve')).count()).toBe(0);
      expect(await card(bobPage).locator(byTestId('thread-approval-deciders')).textContent()).toContain(`${owner.name} decides.`);

      // Ada opens the canvas now, and Bob reloads his: both read the running turn from its message on.
      const adaPage = await openBrowser(owner, canvasId);
      await bobPage.reload();
      await bobPage.locator(`${byTestId('connection-status')}[data-state="live"]`).waitFor();
      for (const page of [adaPage, bobPage]) {
        await card(page).waitFor();
        await message(page, turnId).waitFor();
        await page.locator(`${byTestId('thread-assistant-state')}[data-state="waiting_for_approval"]`).waitFor();
      }
      await card(adaPage).locator(byTestId('thread-approve')).click();

      for (const page of [adaPage, bobPage]) {
        await card(page, 'approved').waitFor();
        await answer(page, turnId, 'done').waitFor();
        expect(await answer(page, turnId).locator(byTestId('thread-answer-text')).textContent()).toBe('The old task is gone.');
        expect(await page.locator(byTestId('thread-message')).count()).toBe(1);
        expect(await page.locator(byTestId('thread-approval')).count()).toBe(1);
        expect(await page.locator(byTestId('thread-answer')).count()).toBe(1);
      }
      expect(laptop.calls.filter((call) => call.action === 'delete')).toHaveLength(1);

      // Bob starts another thread: Ada's list shows it without a reload, and her page stays on Ops.
      const retro = await request('POST', `${apiA()}/canvases/${canvasId}/threads`, {
        token: editor.accessToken,
        body: { title: 'Retro' },
      });
      expect(retro.status).toBe(201);
      await adaPage.locator(`${byTestId('thread-select')} option[value="${retro.body.thread.id}"]`).waitFor({ state: 'attached' });
      expect(await adaPage.locator(byTestId('thread-select')).inputValue()).toBe(created.body.thread.id);
    } finally {
      laptop.close();
    }
  }, 120_000);
});

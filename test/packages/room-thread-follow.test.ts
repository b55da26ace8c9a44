import { randomUUID } from 'node:crypto';
// The worktree's own sources (the installed @switchboard/* resolve to another checkout's).
import {
  connectCanvas,
  createSwitchboardClient,
  followThread,
  isApiError,
  type CanvasConnection,
  type RoomThreadItem,
  type SwitchboardClient,
} from '../../packages/client/src/index';
import { applyThreadItem, type RoomThreadData } from '../../packages/react/src/use-room-thread';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { waitUntil } from '../support/wait';

/** Held model answers: a turn whose message names a held word answers once the test releases it. */
const held = new Map<string, () => void>();
const gates = new Map<string, Promise<void>>();
function hold(word: string): () => void {
  gates.set(word, new Promise<void>((resolve) => held.set(word, resolve)));
  return () => held.get(word)?.();
}

/** Answers every member's message by repeating it, in a few chunks (after its gate, when one holds it). */
async function responder(req: ChatRequest): Promise<ChatTurn> {
  const lastUser = [...req.messages].reverse().find((m) => m.role === 'user');
  const text = lastUser ? messageText(lastUser) : '';
  for (const [word, gate] of gates) if (text.includes(word)) await gate;
  return { text: `Heard ${text} loud and clear` };
}

/** Items of a follower as they come, with a wait for the one that satisfies a predicate. */
function collect(items: RoomThreadItem[]) {
  return (predicate: (item: RoomThreadItem) => boolean) => waitUntil(() => items.some(predicate), 20_000);
}
const isFinal = (turnId: string) => (item: RoomThreadItem) =>
  item.kind === 'event' && item.turnId === turnId && item.event.type === 'final';

/**
 * Following a room thread with the SDK over the `/canvas` socket: two members hear the same turns
 * in seq order with their authors, a member who joins while a turn runs sees it from its start, a
 * reconnect replays what was missed, a viewer's post is refused; the React hook's state follows.
 */
describe('room thread follower (@switchboard/client) and useRoomThread state', () => {
  let t: TestApp;
  const connections: CanvasConnection[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder, llmDelayMs: 5 });
  }, 120_000);
  afterAll(async () => {
    connections.forEach((connection) => connection.close());
    await t?.stop();
  });

  const member = async (name: string): Promise<SwitchboardClient> => {
    const sb = createSwitchboardClient({ baseUrl: t.url });
    await sb.auth.register({
      email: `${name.toLowerCase()}-${randomUUID().slice(0, 8)}@example.test`,
      password: 'correct horse battery',
      name,
    });
    return sb;
  };
  const socketOf = async (sb: SwitchboardClient) => {
    const connection = await connectCanvas({ url: sb.serverUrl, token: () => sb.freshAccessToken() });
    connections.push(connection);
    return connection;
  };

  test('two members follow one thread: the same events in seq order, with authors, replayed after a reconnect', async () => {
    const [ada, bob, vic] = await Promise.all([member('Ada'), member('Bob'), member('Vic')]);
    const { canvas } = await ada.canvases.create({ title: 'Launch' });
    const bobMe = await bob.auth.me();
    const vicMe = await vic.auth.me();
    await ada.members.set(canvas.id, { email: bobMe.user.email, role: 'editor' });
    await ada.members.set(canvas.id, { email: vicMe.user.email, role: 'viewer' });
    const { thread } = await ada.threads.create(canvas.id, { title: 'Plan' });
    expect((await bob.threads.list(canvas.id)).threads.map((th) => th.id)).toEqual([thread.id]);

    const adaItems: RoomThreadItem[] = [];
    const bobItems: RoomThreadItem[] = [];
    const [adaSocket, bobSocket] = await Promise.all([socketOf(ada), socketOf(bob)]);
    const adaFollow = await followThread(adaSocket, ada, canvas.id, thread.id, { onItem: (item) => adaItems.push(item) });
    const bobFollow = await followThread(bobSocket, bob, canvas.id, thread.id, { onItem: (item) => bobItems.push(item) });
    expect(adaFollow.joined.ok && bobFollow.joined.ok).toBe(true);

    const [first, second] = await Promise.all([
      ada.threads.post(canvas.id, thread.id, { message: 'launch on the 3rd' }),
      bob.threads.post(canvas.id, thread.id, { message: 'docs first' }),
    ]);
    await collect(adaItems)(isFinal(first.messageId));
    await collect(adaItems)(isFinal(second.messageId));
    await collect(bobItems)(isFinal(first.messageId));
    await collect(bobItems)(isFinal(second.messageId));

    // Both hear the same events, in seq order, each once; each message carries its author.
    const seqs = (items: RoomThreadItem[]) => items.flatMap((item) => (item.kind === 'event' ? [item.seq] : []));
    expect(seqs(bobItems)).toEqual(seqs(adaItems));
    expect(seqs(bobItems)).toEqual([...seqs(bobItems)].sort((a, b) => a - b));
    expect(new Set(seqs(bobItems)).size).toBe(seqs(bobItems).length);
    const authors = bobItems.flatMap((item) => (item.kind === 'event' && item.event.type === 'message' ? [item.event.authorName] : []));
    expect(authors.sort()).toEqual(['Ada', 'Bob']);

    // The hook's state built from Bob's items: both messages with authors and both answers, nothing streaming.
    const state = bobItems.reduce<RoomThreadData>(applyThreadItem, {
      messages: [],
      streaming: null,
      assistant: { state: 'idle' },
      typing: [],
      status: 'live',
    });
    expect(state.messages.filter((m) => m.role === 'user').map((m) => [m.authorName, m.content])).toEqual(
      expect.arrayContaining([
        ['Ada', 'launch on the 3rd'],
        ['Bob', 'docs first'],
      ]),
    );
    expect(state.messages.filter((m) => m.role === 'assistant').map((m) => m.content)).toEqual(
      expect.arrayContaining(['Heard [Ada] launch on the 3rd loud and clear', 'Heard [Bob] docs first loud and clear']),
    );
    expect(state.streaming).toBeNull();
    expect(state.assistant.state).toBe('idle');

    // Bob's socket drops; a turn runs meanwhile; on reconnect he gets all of it, in order, once.
    bobSocket.disconnect();
    const third = await ada.threads.post(canvas.id, thread.id, { message: 'while Bob is away' });
    await collect(adaItems)(isFinal(third.messageId));
    bobSocket.connect();
    await collect(bobItems)(isFinal(third.messageId));
    expect(seqs(bobItems)).toEqual(seqs(adaItems));

    // A viewer reads but cannot post: 403, nothing written.
    const refused = await vic.threads.post(canvas.id, thread.id, { message: 'me too' }).catch((error: unknown) => error);
    expect(isApiError(refused) && refused.status).toBe(403);
    const history = await vic.chat.historyAll(thread.id);
    expect(history.messages.filter((m) => m.role === 'user').map((m) => m.content)).not.toContain('me too');

    adaFollow.stop();
    bobFollow.stop();
  });

  test('a member who follows while a turn runs sees it from its first event; a non-member is refused', async () => {
    const [ada, carla, olga] = await Promise.all([member('Ada'), member('Carla'), member('Olga')]);
    const { canvas } = await ada.canvases.create({ title: 'Late' });
    await ada.members.set(canvas.id, { email: (await carla.auth.me()).user.email, role: 'editor' });
    const { thread } = await ada.threads.create(canvas.id);
    const adaItems: RoomThreadItem[] = [];
    const adaFollow = await followThread(await socketOf(ada), ada, canvas.id, thread.id, { onItem: (item) => adaItems.push(item) });

    // The turn's model call waits until Carla follows, so the turn is surely open when she does.
    const release = hold('a long one');
    const turn = await ada.threads.post(canvas.id, thread.id, { message: 'a long one' });
    await collect(adaItems)((item) => item.kind === 'event' && item.turnId === turn.messageId && item.event.type !== 'message');
    // Carla starts following now: the iterator yields the turn from its message on.
    const carlaFollow = await followThread(await socketOf(carla), carla, canvas.id, thread.id);
    release();
    const carlaItems: RoomThreadItem[] = [];
    for await (const item of carlaFollow) {
      carlaItems.push(item);
      if (isFinal(turn.messageId)(item)) break;
    }
    const [message] = carlaItems;
    expect(message).toMatchObject({ kind: 'event', turnId: turn.messageId, event: { type: 'message', authorName: 'Ada' } });
    await collect(adaItems)(isFinal(turn.messageId));
    const adaTurn = adaItems.filter((item) => item.kind === 'event' && item.turnId === turn.messageId);
    expect(carlaItems).toEqual(adaTurn.slice(0, adaTurn.findIndex(isFinal(turn.messageId)) + 1));

    const outsider = await followThread(await socketOf(olga), olga, canvas.id, thread.id);
    expect(outsider.joined).toMatchObject({ ok: false });
    const read = await olga.threads.get(canvas.id, thread.id).catch((error: unknown) => error);
    expect(isApiError(read) && read.status).toBe(404);
    adaFollow.stop();
    carlaFollow.stop();
  });

  test("the thread's approval policy and device loans through the SDK, each change heard by a follower", async () => {
    const [ada, bob] = await Promise.all([member('Ada'), member('Bob')]);
    const { canvas } = await ada.canvases.create({ title: 'Loans' });
    await ada.members.set(canvas.id, { email: (await bob.auth.me()).user.email, role: 'viewer' });
    const { thread } = await ada.threads.create(canvas.id);
    const bobItems: RoomThreadItem[] = [];
    const bobFollow = await followThread(await socketOf(bob), bob, canvas.id, thread.id, { onItem: (item) => bobItems.push(item) });

    // A quorum larger than the canvas's editors and owners could never be met: 400, nothing changed.
    const tooMany = await ada.threads
      .setApprovalPolicy(canvas.id, thread.id, { policy: 'quorum', quorum: 2 })
      .catch((error: unknown) => error);
    expect(isApiError(tooMany) && tooMany.status).toBe(400);
    const set = await ada.threads.setApprovalPolicy(canvas.id, thread.id, { policy: 'any_editor' });
    expect(set.thread.approvals).toEqual({ policy: 'any_editor', quorum: null });
    expect((await bob.threads.get(canvas.id, thread.id)).thread.approvals).toEqual({ policy: 'any_editor', quorum: null });

    const { device } = await ada.threads.lendDevice(canvas.id, thread.id, 'ada-laptop');
    expect(device).toMatchObject({ deviceId: 'ada-laptop', ownerId: (await ada.auth.me()).user.id });
    expect((await bob.threads.devices(canvas.id, thread.id)).devices.map((d) => d.deviceId)).toEqual(['ada-laptop']);
    await collect(bobItems)((item) => item.kind === 'event' && item.event.type === 'device_lent');

    // A viewer lends nothing (403) and cannot take back a loan that is not his (404).
    const refused = await bob.threads.lendDevice(canvas.id, thread.id, 'bob-phone').catch((error: unknown) => error);
    expect(isApiError(refused) && refused.status).toBe(403);
    const notHis = await bob.threads.withdrawDevice(canvas.id, thread.id, 'ada-laptop').catch((error: unknown) => error);
    expect(isApiError(notHis) && notHis.status).toBe(404);

    await ada.threads.withdrawDevice(canvas.id, thread.id, 'ada-laptop');
    expect((await ada.threads.devices(canvas.id, thread.id)).devices).toEqual([]);
    await collect(bobItems)((item) => item.kind === 'event' && item.event.type === 'device_withdrawn');
    bobFollow.stop();
  });
});

import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import type { CanvasServerEvents } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, record, type CanvasClient } from '../support/sockets';
import { waitUntil } from '../support/wait';

type ThreadEvent = Parameters<CanvasServerEvents['thread_event']>[0];

const TASK_ID = '8c1d7e2a-4b3f-4a5e-9d60-abcdefabcdef';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

/**
 * The scripted model: "delete the old task" calls `delete_task` (a call that always asks), "list
 * tasks" calls `list_tasks` (one that asks only on a device lent by another member); a tool's
 * result is answered with a short text.
 */
function responder(req: ChatRequest): ChatTurn {
  const last = req.messages.at(-1);
  if (last?.role === 'tool') return { text: `Done: ${messageText(last).slice(0, 40)}` };
  const lastUser = [...req.messages].reverse().find((m) => m.role === 'user');
  const asked = lastUser ? messageText(lastUser) : '';
  const offered = new Set(req.tools?.map((tool) => tool.function.name) ?? []);
  if (/delete the old task/i.test(asked) && offered.has('delete_task'))
    return { toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] };
  if (/list tasks/i.test(asked) && offered.has('list_tasks')) return { toolCalls: [{ name: 'list_tasks', args: {} }] };
  return { text: 'No tool for that.' };
}

/**
 * Deciding together in a room thread: the thread's policy says who decides an approval its turns
 * ask for (requester, any editor, the canvas owner, a quorum of editors); the first decision that
 * satisfies it wins once, every member hears it in the room, the audit names who decided. A device
 * is its owner's: lent to the thread, another member's turn may use it only with the owner's approval.
 */
describe('room thread approvals and lent devices', () => {
  let t: TestApp;
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    t = await startTestApp({ responder, llmDelayMs: 2, env: { HITL_TIMEOUT_MS: '60000' } });
  }, 120_000);

  afterAll(async () => {
    closers.forEach((close) => close());
    await t.stop();
  });

  /** A canvas with Ada (owner, with a device), Bob (editor), Vic (viewer), and Olga, who is not a member; everyone's socket in the room but Olga's. */
  const room = async () => {
    const [ada, bob, vic, olga] = await Promise.all([
      registerUser(t.api, 'Ada'),
      registerUser(t.api, 'Bob'),
      registerUser(t.api, 'Vic'),
      registerUser(t.api, 'Olga'),
    ]);
    const canvasId = await createCanvas(t.api, ada, 'Ops');
    await addMember(t.api, ada, canvasId, bob, 'editor');
    await addMember(t.api, ada, canvasId, vic, 'viewer');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: ada.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed,
      reconnection: false,
    });
    closers.push(() => device.close());
    const sockets = new Map<TestUser, CanvasClient>();
    for (const member of [ada, bob, vic]) {
      const socket = await connectCanvas(t.url, member.accessToken);
      closers.push(() => socket.close());
      expect((await join(socket, canvasId)).ok).toBe(true);
      sockets.set(member, socket);
    }
    const heard = new Map([...sockets].map(([member, socket]) => [member, record(socket, 'thread_event')]));
    const created = await request('POST', `${t.api}/canvases/${canvasId}/threads`, { token: ada.accessToken, body: { title: 'Ops' } });
    expect(created.status).toBe(201);
    expect(created.body.thread.approvals).toEqual({ policy: 'requester', quorum: null });
    return { ada, bob, vic, olga, canvasId, device, heard, threadId: created.body.thread.id as string };
  };
  type Room = Awaited<ReturnType<typeof room>>;

  const thread = (r: Room) => `${t.api}/canvases/${r.canvasId}/threads/${r.threadId}`;
  const setPolicy = (r: Room, user: TestUser, body: Record<string, unknown>) =>
    request('PUT', `${thread(r)}/approvals`, { token: user.accessToken, body });
  const lend = (r: Room, user: TestUser, method: 'PUT' | 'DELETE' = 'PUT') =>
    request(method, `${thread(r)}/devices/${r.device.deviceId}`, { token: user.accessToken });
  const post = (r: Room, user: TestUser, message: string) =>
    request('POST', `${thread(r)}/messages`, { token: user.accessToken, body: { message, deviceId: r.device.deviceId } });
  const decide = (user: TestUser, approvalId: string, approved: boolean) =>
    request('PUT', `${t.api}/hitl/requests/${approvalId}/${approved ? 'approve' : 'reject'}`, { token: user.accessToken });
  const ofTurn = (events: ThreadEvent[], turnId: string, type: string) =>
    events.filter((e) => e.turnId === turnId && e.event.type === type).map((e) => e.event as Record<string, any>);
  /** The approval a turn asks for, as the room tells it. */
  const asked = async (r: Room, turnId: string) => {
    const events = r.heard.get(r.vic)!;
    await waitUntil(() => ofTurn(events, turnId, 'approval_requested').length > 0, 20_000);
    return ofTurn(events, turnId, 'approval_requested')[0];
  };
  /** Every member's socket hears the turn's `approval_resolved`, then its `final`. */
  const everyoneHearsTheEnd = async (r: Room, turnId: string) => {
    for (const events of r.heard.values()) await waitUntil(() => ofTurn(events, turnId, 'final').length > 0, 20_000);
    return [...r.heard.values()].map((events) => ofTurn(events, turnId, 'approval_resolved'));
  };
  const deletes = (r: Room) => r.device.calls.filter((call) => call.action === 'delete').length;

  test('setting the policy: editors only, a quorum between 1 and the editors; every member hears it', async () => {
    const r = await room();
    expect((await setPolicy(r, r.vic, { policy: 'any_editor' })).status).toBe(403);
    expect((await setPolicy(r, r.olga, { policy: 'any_editor' })).status).toBe(404);
    for (const bad of [
      { policy: 'quorum' },
      { policy: 'quorum', quorum: 0 },
      { policy: 'quorum', quorum: 3 },
      { policy: 'any_editor', quorum: 2 },
      { policy: 'everyone' },
    ]) {
      const refused = await setPolicy(r, r.bob, bad);
      expect({ bad, status: refused.status, code: refused.body.error.code }).toEqual({ bad, status: 400, code: 'validation_failed' });
    }
    const read = await request('GET', thread(r), { token: r.vic.accessToken });
    expect(read.body.thread.approvals).toEqual({ policy: 'requester', quorum: null });

    const set = await setPolicy(r, r.bob, { policy: 'quorum', quorum: 2 });
    expect(set.status).toBe(200);
    expect(set.body.thread.approvals).toEqual({ policy: 'quorum', quorum: 2 });
    await waitUntil(() => r.heard.get(r.vic)!.some((e) => e.event.type === 'approval_policy'));
    expect(r.heard.get(r.vic)!.find((e) => e.event.type === 'approval_policy')!.event).toEqual({
      type: 'approval_policy',
      policy: 'quorum',
      quorum: 2,
      setBy: r.bob.id,
    });
  });

  test('requester (the default): only the member who asked decides; a second editor is 403', async () => {
    const r = await room();
    expect((await lend(r, r.ada)).status).toBe(200);
    const sent = await post(r, r.ada, 'Please delete the old task');
    expect(sent.status).toBe(202);
    const approval = await asked(r, sent.body.messageId);
    expect(approval.deciders).toEqual({ policy: 'requester' });
    expect((await decide(r.bob, approval.approvalId, true)).status).toBe(403);
    expect((await decide(r.ada, approval.approvalId, false)).status).toBe(200);
    const resolved = await everyoneHearsTheEnd(r, sent.body.messageId);
    for (const events of resolved) expect(events).toEqual([expect.objectContaining({ status: 'rejected', decidedBy: r.ada.id })]);
    expect(deletes(r)).toBe(0);
  });

  test('any editor: a second editor decides; every member hears it once; viewers 403, strangers 404; once only', async () => {
    const r = await room();
    expect((await lend(r, r.ada)).status).toBe(200);
    expect((await setPolicy(r, r.ada, { policy: 'any_editor' })).status).toBe(200);
    const sent = await post(r, r.ada, 'Please delete the old task');
    const approval = await asked(r, sent.body.messageId);
    expect(approval).toMatchObject({ toolName: 'delete_task', deciders: { policy: 'any_editor' } });
    // Any member reads it; a stranger does not.
    expect((await request('GET', `${t.api}/hitl/requests/${approval.approvalId}`, { token: r.vic.accessToken })).status).toBe(200);
    expect((await request('GET', `${t.api}/hitl/requests/${approval.approvalId}`, { token: r.olga.accessToken })).status).toBe(404);

    expect((await decide(r.vic, approval.approvalId, true)).status).toBe(403);
    expect((await decide(r.olga, approval.approvalId, true)).status).toBe(404);
    // Bob and Ada decide at the same moment: exactly one wins.
    const [byBob, byAda] = await Promise.all([decide(r.bob, approval.approvalId, true), decide(r.ada, approval.approvalId, false)]);
    expect([byBob.status, byAda.status].sort()).toEqual([200, 409]);
    const winner = byBob.status === 200 ? { user: r.bob, status: 'approved' } : { user: r.ada, status: 'rejected' };

    const resolved = await everyoneHearsTheEnd(r, sent.body.messageId);
    for (const events of resolved) expect(events).toEqual([expect.objectContaining({ status: winner.status, decidedBy: winner.user.id })]);
    expect(deletes(r)).toBe(winner.status === 'approved' ? 1 : 0);
    const audit = await t.app.repos.audit.listPage({ limit: 20, action: `hitl.${winner.status}` });
    expect(audit.find((row) => row.targetId === approval.approvalId)).toMatchObject({ actorId: winner.user.id });
  });

  test('canvas owner: an editor is 403, the owner decides', async () => {
    const r = await room();
    await lend(r, r.ada);
    // Bob lends nothing: Ada's turn on her own device follows the thread's policy.
    expect((await setPolicy(r, r.bob, { policy: 'canvas_owner' })).status).toBe(200);
    const sent = await post(r, r.ada, 'Please delete the old task');
    const approval = await asked(r, sent.body.messageId);
    expect((await decide(r.bob, approval.approvalId, true)).status).toBe(403);
    expect((await decide(r.ada, approval.approvalId, true)).body.status).toBe('approved');
    await everyoneHearsTheEnd(r, sent.body.messageId);
    expect(deletes(r)).toBe(1);
  });

  test('quorum of 2: a vote counts once per member, the second approval decides, the audit names every voter', async () => {
    const r = await room();
    await lend(r, r.ada);
    expect((await setPolicy(r, r.ada, { policy: 'quorum', quorum: 2 })).status).toBe(200);
    const sent = await post(r, r.ada, 'Please delete the old task');
    const approval = await asked(r, sent.body.messageId);
    expect(approval.deciders).toEqual({ policy: 'quorum', quorum: 2 });

    const first = await decide(r.bob, approval.approvalId, true);
    expect({ status: first.status, state: first.body.status }).toEqual({ status: 200, state: 'pending' });
    const again = await decide(r.bob, approval.approvalId, true);
    expect({ status: again.status, code: again.body.error.code }).toEqual({ status: 409, code: 'already_voted' });
    expect((await decide(r.vic, approval.approvalId, true)).status).toBe(403);
    // Every member hears the vote.
    await waitUntil(() => ofTurn(r.heard.get(r.vic)!, sent.body.messageId, 'approval_vote').length === 1);
    expect(ofTurn(r.heard.get(r.vic)!, sent.body.messageId, 'approval_vote')[0]).toEqual({
      type: 'approval_vote',
      approvalId: approval.approvalId,
      userId: r.bob.id,
      approved: true,
      approvals: 1,
      needed: 2,
    });

    const second = await decide(r.ada, approval.approvalId, true);
    expect(second.body).toMatchObject({ status: 'approved', decidedBy: r.ada.id });
    const voters = [
      { userId: r.bob.id, approved: true },
      { userId: r.ada.id, approved: true },
    ];
    const resolved = await everyoneHearsTheEnd(r, sent.body.messageId);
    for (const events of resolved) expect(events).toEqual([expect.objectContaining({ status: 'approved', decidedBy: r.ada.id, voters })]);
    expect(deletes(r)).toBe(1);
    const audit = await t.app.repos.audit.listPage({ limit: 20, action: 'hitl.approved' });
    expect(audit.find((row) => row.targetId === approval.approvalId)?.details).toMatchObject({ voters, quorum: 2 });
    const votes = await t.app.repos.audit.listPage({ limit: 20, action: 'hitl.voted' });
    expect(
      votes
        .filter((row) => row.targetId === approval.approvalId)
        .map((row) => row.actorId)
        .sort(),
    ).toEqual([r.ada.id, r.bob.id].sort());
    expect((await decide(r.bob, approval.approvalId, false)).status).toBe(409);
  });

  test('quorum: two last votes at once decide it exactly once; a reject of one editor rejects', async () => {
    const r = await room();
    await lend(r, r.ada);
    await setPolicy(r, r.ada, { policy: 'quorum', quorum: 2 });
    const sent = await post(r, r.ada, 'Please delete the old task');
    const approval = await asked(r, sent.body.messageId);
    const both = await Promise.all([decide(r.bob, approval.approvalId, true), decide(r.ada, approval.approvalId, true)]);
    expect(both.map((answer) => answer.status)).toEqual([200, 200]);
    const resolved = await everyoneHearsTheEnd(r, sent.body.messageId);
    for (const events of resolved) expect(events).toHaveLength(1);
    expect(deletes(r)).toBe(1);

    const again = await post(r, r.ada, 'Please delete the old task');
    const next = await asked(r, again.body.messageId);
    expect((await decide(r.bob, next.approvalId, false)).body.status).toBe('rejected');
    const ended = await everyoneHearsTheEnd(r, again.body.messageId);
    for (const events of ended) expect(events).toEqual([expect.objectContaining({ status: 'rejected', decidedBy: r.bob.id })]);
    expect(deletes(r)).toBe(1);
  });

  test("lending: Bob's turn uses Ada's device only while lent, and Ada decides each call whatever the policy", async () => {
    const r = await room();
    await setPolicy(r, r.bob, { policy: 'any_editor' });
    // Not lent: refused, nothing stored.
    const early = await post(r, r.bob, 'list tasks');
    expect({ status: early.status, code: early.body.error.code }).toEqual({ status: 409, code: 'device_not_lent' });
    // Only the owner lends it, and only as an editor or owner of the canvas.
    expect((await lend(r, r.vic)).status).toBe(403);
    expect((await lend(r, r.olga)).status).toBe(404);
    const lent = await lend(r, r.ada);
    expect(lent.body.device).toMatchObject({ deviceId: r.device.deviceId, ownerId: r.ada.id });
    // Bob cannot lend a device of the same id: the thread tells its devices apart by id.
    expect((await lend(r, r.bob)).body.error.code).toBe('device_id_taken');
    const listed = await request('GET', `${thread(r)}/devices`, { token: r.vic.accessToken });
    expect(listed.body.devices).toEqual([expect.objectContaining({ deviceId: r.device.deviceId, ownerId: r.ada.id })]);

    // A read on Ada's device in Bob's turn is asked of Ada, even under "any editor".
    const sent = await post(r, r.bob, 'list tasks');
    expect(sent.status).toBe(202);
    const approval = await asked(r, sent.body.messageId);
    expect(approval).toMatchObject({ toolName: 'list_tasks', deciders: { policy: 'addressed', addressedTo: r.ada.id } });
    expect(r.device.calls).toHaveLength(0);
    expect((await decide(r.bob, approval.approvalId, true)).status).toBe(403);
    expect((await decide(r.olga, approval.approvalId, true)).status).toBe(404);
    // Ada lists it among her requests.
    const mine = await request('GET', `${t.api}/hitl/requests?status=pending`, { token: r.ada.accessToken });
    expect(mine.body.requests.map((row: { id: string }) => row.id)).toContain(approval.approvalId);
    expect((await decide(r.ada, approval.approvalId, true)).status).toBe(200);
    const resolved = await everyoneHearsTheEnd(r, sent.body.messageId);
    for (const events of resolved) expect(events).toEqual([expect.objectContaining({ status: 'approved', decidedBy: r.ada.id })]);
    expect(r.device.calls.map((call) => call.action)).toEqual(['select']);

    // Withdrawn: nobody's turn uses it any more.
    expect((await lend(r, r.bob, 'DELETE')).status).toBe(404);
    expect((await lend(r, r.ada, 'DELETE')).status).toBe(204);
    const late = await post(r, r.bob, 'list tasks');
    expect({ status: late.status, code: late.body.error.code }).toEqual({ status: 409, code: 'device_not_lent' });
    await waitUntil(() => r.heard.get(r.vic)!.some((e) => e.event.type === 'device_withdrawn'));
  });
});

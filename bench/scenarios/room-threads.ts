import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startOpenAICompatibleServer, messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import type { CanvasServerEvents, SyncAck } from '../../src/schemas/socket-events';
import { createTestDatabase, type TestDatabase } from '../../test/support/database';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../../test/support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../../test/support/processes';
import { connectCanvas, join, type CanvasClient } from '../../test/support/sockets';
import type { BenchContext } from '../lib/context';
import { benchEnv, startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { percentile, round } from '../lib/stats';
import { now, msBetween, type Stamp } from '../lib/timing';

export interface RoomThreadsOptions {
  /** Members of the canvas, each with one `/canvas` socket, spread over the API nodes. */
  members: number;
  /** Members who post (editors; the others view). */
  posters: number;
  /** Messages each poster sends, at once with the others: every other one asks for a call on the owner's lent device. */
  turnsPerPoster: number;
  /** Members who reconnect after the turns and replay the thread from its first event. */
  reconnects: number;
  apiNodes: number;
}

type ThreadEvent = Parameters<CanvasServerEvents['thread_event']>[0];

interface Member {
  user: TestUser;
  socket: CanvasClient;
  /** Every thread event's seq, as it came. */
  seqs: number[];
  /** When each approval's `approval_resolved` reached this member. */
  resolvedAt: Map<string, Stamp>;
  /** Turns whose `final` reached this member. */
  finals: Set<string>;
}

const TASKS = [{ id: '8c1d7e2a-4b3f-4a5e-9d60-abcdefabcdef', title: 'Old report', status: 'done', priority: 'low' }];

/**
 * The scripted model of a room thread: "todo" calls `create_todo` (a canvas tool: a block every
 * member sees), "list tasks" calls `list_tasks` on the device named by the message (lent by the
 * canvas owner: the owner approves it); a tool's result gets a short answer.
 */
function responder(req: ChatRequest) {
  const last = req.messages.at(-1);
  if (last?.role === 'tool') return { text: 'Done, the board is up to date for everyone in the room.' };
  const lastUser = [...req.messages].reverse().find((m) => m.role === 'user');
  const asked = lastUser ? messageText(lastUser) : '';
  const offered = new Set(req.tools?.map((tool) => tool.function.name) ?? []);
  if (/list tasks/i.test(asked) && offered.has('list_tasks')) return { toolCalls: [{ name: 'list_tasks', args: {} }] };
  if (/todo/i.test(asked) && offered.has('create_todo'))
    return { toolCalls: [{ name: 'create_todo', args: { text: asked.slice(0, 60), checked: false } }] };
  return { text: 'Noted.' };
}

/** Runs `work` over `items`, `width` at a time. */
async function inBatches<T, R>(items: readonly T[], width: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let start = 0; start < items.length; start += width)
    out.push(...(await Promise.all(items.slice(start, start + width).map((item, offset) => work(item, start + offset)))));
  return out;
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`roomThreads: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A room thread for a team, measured: `members` members of one canvas with a socket each on two API
 * nodes, `posters` of them posting at once, turns that add blocks and call a device the canvas
 * owner lent to the thread (each such call asked of the owner, who approves it the moment the room
 * shows it). Reports whether every member received every thread event exactly once and in order,
 * how long a decision took to reach every member (from the approve request being sent), and how
 * long a member who reconnects takes to replay the thread (connect, join, `canvas:sync`).
 */
export async function roomThreadsScenario(ctx: BenchContext, options: RoomThreadsOptions) {
  const model = await startOpenAICompatibleServer({ modelLabel: 'scripted', responder });
  const keyPrefix = uniquePrefix('room-threads');
  const database: TestDatabase = await createTestDatabase({ server: ctx.postgresUrl });
  const app = await startInProcessSwitchboard({
    redis: ctx.redis,
    keyPrefix,
    dataDir: ctx.dataDir,
    endpoint: { baseURL: model.baseURL, apiKey: 'bench', provider: 'scripted', models: ['scripted'] },
    env: { DATABASE_URL: database.url, HITL_TIMEOUT_MS: '300000' },
  });
  const others: SwitchboardProcess[] = [];
  const members: Member[] = [];
  let device: DeviceSimulator | undefined;
  try {
    ctx.log(`roomThreads: starting ${options.apiNodes} API node(s)`);
    const env = {
      ...benchEnv({ redis: ctx.redis, keyPrefix, dataDir: ctx.dataDir }),
      DATABASE_URL: database.url,
      SWITCHBOARD_ROLES: 'api',
    };
    for (let n = 0; n < options.apiNodes; n += 1) others.push(await spawnSwitchboard(env, 60_000));
    const nodeUrls = others.map((other) => other.url!);

    const owner = await registerUser(app.api, 'Owner');
    const canvasId = await createCanvas(app.api, owner, 'Team room');
    const users = [
      owner,
      ...(await inBatches(
        Array.from({ length: options.members - 1 }, (_, i) => i),
        10,
        (i) => registerUser(app.api, `Member${i + 1}`),
      )),
    ];
    await inBatches(users.slice(1), 10, (user, i) => addMember(app.api, owner, canvasId, user, i < options.posters ? 'editor' : 'viewer'));
    device = await DeviceSimulator.connect({
      url: app.url,
      accessToken: owner.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed: { tasks: TASKS },
      reconnection: false,
    });
    const thread = await request('POST', `${app.api}/canvases/${canvasId}/threads`, { token: owner.accessToken, body: { title: 'Team' } });
    const threadId = thread.body.thread.id as string;
    const threadUrl = `${app.api}/canvases/${canvasId}/threads/${threadId}`;
    const lent = await request('PUT', `${threadUrl}/devices/${device.deviceId}`, { token: owner.accessToken });
    if (lent.status !== 200) throw new Error(`roomThreads: lending the device answered ${lent.status}`);

    // Every member's socket, round robin over the API nodes.
    const decidedAt = new Map<string, Stamp>();
    await inBatches(users, 10, async (user, i) => {
      const socket = await connectCanvas(nodeUrls[i % nodeUrls.length], user.accessToken, 20_000);
      const member: Member = { user, socket, seqs: [], resolvedAt: new Map(), finals: new Set() };
      socket.on('thread_event', (payload: ThreadEvent) => {
        if (payload.threadId !== threadId) return;
        member.seqs.push(payload.seq);
        const event = payload.event as Record<string, any>;
        if (event.type === 'approval_resolved') member.resolvedAt.set(event.approvalId, now());
        if (event.type === 'final') member.finals.add(payload.turnId);
        // The owner approves each call on their device the moment the room shows it.
        if (i === 0 && event.type === 'approval_requested' && event.deciders?.addressedTo === owner.id) {
          decidedAt.set(event.approvalId, now());
          void request('PUT', `${app.api}/hitl/requests/${event.approvalId}/approve`, { token: owner.accessToken });
        }
      });
      const joined = await join(socket, canvasId);
      if (!joined.ok) throw new Error('roomThreads: a member could not join the room');
      members.push(member);
    });

    // The posters post at once; each message is one turn of the thread's lane.
    ctx.log(`roomThreads: ${options.posters} posters × ${options.turnsPerPoster} turns to ${options.members} members`);
    const posters = users.slice(1, 1 + options.posters);
    const turns: string[] = [];
    const started = now();
    await Promise.all(
      posters.map(async (poster, p) => {
        for (let k = 0; k < options.turnsPerPoster; k += 1) {
          const withDevice = (p + k) % 2 === 0;
          const posted = await request('POST', `${threadUrl}/messages`, {
            token: poster.accessToken,
            body: withDevice
              ? { message: `list tasks for round ${k}`, deviceId: device!.deviceId }
              : { message: `add a todo: item ${k} from poster ${p}` },
          });
          if (posted.status !== 202) throw new Error(`roomThreads: a post answered ${posted.status} ${JSON.stringify(posted.body)}`);
          turns.push(posted.body.messageId as string);
        }
      }),
    );
    await waitUntil(
      () => members.every((member) => turns.every((turn) => member.finals.has(turn))),
      300_000,
      'every turn to end for every member',
    );
    const turnsMs = msBetween(started, now());

    // Exactly once, in order: every member holds the same seqs, strictly increasing.
    const reference = [...new Set(members.flatMap((member) => member.seqs))].sort((a, b) => a - b);
    const inOrder = members.filter(
      (member) => member.seqs.length === reference.length && member.seqs.every((seq, index) => seq === reference[index]),
    ).length;
    const decisionMs: number[] = [];
    for (const [approvalId, at] of decidedAt)
      for (const member of members) {
        const heard = member.resolvedAt.get(approvalId);
        if (heard) decisionMs.push(msBetween(at, heard));
      }
    const missedDecisions = decidedAt.size * members.length - decisionMs.length;

    // Reconnects: a fresh socket on the other node, joined, replaying the thread from its start.
    const replayMs: number[] = [];
    let incompleteReplays = 0;
    for (const [index, member] of members.slice(0, options.reconnects).entries()) {
      member.socket.close();
      const t0 = now();
      const socket = await connectCanvas(nodeUrls[(index + 1) % nodeUrls.length], member.user.accessToken, 20_000);
      await join(socket, canvasId);
      const ack: SyncAck = await socket.timeout(10_000).emitWithAck('canvas:sync', { canvasId, afterSeq: reference[0] - 1 });
      replayMs.push(msBetween(t0, now()));
      const replayed = ack.ok && !ack.resync ? ack.events.filter((entry) => entry.event === 'thread_event').map((entry) => entry.seq) : [];
      if (replayed.length !== reference.length) incompleteReplays += 1;
      member.socket = socket;
    }

    return {
      members: options.members,
      apiNodes: options.apiNodes,
      posters: options.posters,
      turns: turns.length,
      threadEvents: reference.length,
      turnsMs: round(turnsMs),
      exactlyOnceInOrderPct: round((100 * inOrder) / members.length),
      approvals: decidedAt.size,
      missedDecisions,
      decisionToMemberMs: { p50: round(percentile(decisionMs, 50)), p99: round(percentile(decisionMs, 99)) },
      replayAfterReconnectMs: { p50: round(percentile(replayMs, 50)), p99: round(percentile(replayMs, 99)) },
      incompleteReplays,
    };
  } finally {
    for (const member of members) member.socket.close();
    device?.close();
    await Promise.allSettled(others.map((other) => other.stop()));
    await app.stop();
    await model.close();
    await database.drop();
  }
}

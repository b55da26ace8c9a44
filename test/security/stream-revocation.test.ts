import { randomUUID } from 'node:crypto';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import type { ToolCall } from '../../src/schemas/device-protocol';
import { createLogger } from '../../src/lib/logger';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { Revocations } from '../../src/auth/revocations';
import { testConfig } from '../support/app';
import { createTestDatabase, serverPostgresUrl, testRedisTarget, type TestDatabase } from '../support/database';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { waitUntil, within } from '../support/wait';

interface Message {
  event?: string;
  data: any;
}

/**
 * An open SSE stream read as it arrives: `opened` resolves when the response headers are in (the
 * server opens the stream only then), `ended` with every message once the server ends it.
 */
async function openStream(url: string, credential: string, body?: unknown) {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${credential}`,
      accept: 'text/event-stream',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: controller.signal,
  });
  const messages: Message[] = [];
  const parser = createParser({
    onEvent: (event: EventSourceMessage) => {
      let data: unknown = event.data;
      try {
        data = JSON.parse(event.data);
      } catch {
        // plain text
      }
      messages.push({ event: event.event, data });
    },
  });
  const ended = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
    return messages;
  })();
  // A stream that never ends fails its test through `within`, and is closed here afterwards.
  ended.catch(() => undefined);
  return { response, messages, ended: within(ended, 20_000, 'the stream to end'), close: () => controller.abort() };
}

const REVOKED = { event: 'error', data: { type: 'error', code: 'session_revoked', message: expect.any(String) } };
const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const LONG_ANSWER = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');

/** Gates the scripted model waits on, by the tag in the prompt (`hold:<tag>`). */
const gates = new Map<string, { open: () => void; opened: Promise<void> }>();
function gate(tag: string) {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  gates.set(tag, { open, opened });
  return open;
}
const said = (req: ChatRequest) => req.messages.map((m) => messageText(m)).join('\n');

async function responder(req: ChatRequest): Promise<ChatTurn> {
  const text = said(req);
  const held = /hold:([a-z0-9-]+)/.exec(text);
  if (held) await gates.get(held[1])?.opened;
  if (/how many tasks/i.test(text)) {
    if (!req.messages.some((m) => m.role === 'tool') && req.tools?.length)
      return { toolCalls: [{ name: 'list_tasks', args: { status: 'todo' } }] };
    return { text: LONG_ANSWER };
  }
  if (req.messages.some((m) => m.role === 'user') && !req.tools?.length) return { text: LONG_ANSWER };
  return demoResponder(req);
}

/**
 * Revoking a credential ends every open SSE stream opened with it, on every API node, with a last
 * `error {code: "session_revoked"}`: an API key revoke, a sign-out, a reused refresh token, an
 * account deletion; chat, generation and flow execution streams alike. Two API nodes on one
 * database and Redis: each stream is open on node B, each revocation is made on node A.
 */
describe('security: a revoked credential ends its open streams on every node', () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  const nodes: RunningSwitchboard[] = [];
  const devices: DeviceSimulator[] = [];
  let a: string;
  let b: string;

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    llm = await startScriptedLLM(responder, { delayMs: 30 });
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    for (const roles of ['api,worker', 'api']) {
      const config = testConfig({
        keyPrefix,
        databaseUrl: database.url,
        env: { SWITCHBOARD_ROLES: roles, DEVICE_RPC_TIMEOUT_MS: '20000', BROADCAST_CHUNK_DELAY_MS: '5' },
      });
      nodes.push(
        await startSwitchboard(config, {
          logger: createLogger({ level: 'silent' }),
          endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
        }),
      );
    }
    [a, b] = nodes.map((node) => `${node.url!}/api/v1`);
  }, 120_000);

  afterAll(async () => {
    for (const gateEntry of gates.values()) gateEntry.open();
    devices.forEach((device) => device.close());
    for (const node of [...nodes].reverse()) await node.stop();
    await llm?.close();
    await database?.drop();
  }, 60_000);

  const login = async (user: TestUser) => {
    const res = await request('POST', `${a}/auth/login`, { body: { email: user.email, password: 'correct horse battery' } });
    expect(res.status).toBe(200);
    return res.body as { accessToken: string; refreshToken: string };
  };

  test('the device repro: a key revoked while the device holds a tool_call ends /chat/stream; the released call delivers nothing more', async () => {
    const user = await registerUser(a, 'Keyholder');
    const device = await DeviceSimulator.connect({
      url: nodes[0].url!,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      reconnection: false,
      seed: { tasks: [{ id: TASK_ID, title: 'Secret report', status: 'todo', priority: 'low' }] },
    });
    devices.push(device);
    const held: Array<{ call: ToolCall; release: () => void }> = [];
    const original = device.responder;
    device.responder = (call, store) => new Promise((resolve) => held.push({ call, release: () => resolve(original(call, store)) }));
    const key = await request('POST', `${a}/api-keys`, { token: user.accessToken, body: { name: 'bot', scopes: ['write'] } });
    expect(key.status).toBe(201);

    const stream = await openStream(`${b}/chat/stream`, key.body.secret, { message: 'How many tasks do I have?' });
    expect(stream.response.status).toBe(200);
    await waitUntil(() => held.length === 1, 15_000);
    expect(held[0].call).toMatchObject({ action: 'select' });

    const revoked = await request('DELETE', `${a}/api-keys/${key.body.apiKey.id}`, { token: user.accessToken });
    expect(revoked.status).toBe(200);
    const messages = await stream.ended;
    held[0].release();
    expect(messages.at(-1)).toEqual(REVOKED);
    expect(messages.filter((m) => m.event === 'text_chunk' || m.event === 'final')).toEqual([]);
    expect(JSON.stringify(messages)).not.toContain('Secret report');
    // The key is refused from the next request on: a new stream is 401.
    const again = await request('POST', `${b}/chat/stream`, { token: key.body.secret, body: { message: 'hello' } });
    expect(again.status).toBe(401);
  }, 60_000);

  test('sign-out on node A ends the session’s chat stream on node B mid-answer; another session’s stream of the same user answers in full', async () => {
    const user = await registerUser(a, 'Leaver');
    const other = await login(user);
    const leaving = await openStream(`${b}/chat/stream`, user.accessToken, { message: 'Tell me something', tools: 'none' });
    const staying = await openStream(`${b}/chat/stream`, other.accessToken, { message: 'Tell me another thing', tools: 'none' });
    expect([leaving.response.status, staying.response.status]).toEqual([200, 200]);
    await waitUntil(() => leaving.messages.some((m) => m.event === 'text_chunk'), 15_000);

    expect((await request('POST', `${a}/auth/logout`, { body: { refreshToken: user.refreshToken } })).status).toBe(204);
    const cut = await leaving.ended;
    expect(cut.at(-1)).toEqual(REVOKED);
    expect(cut.filter((m) => m.event === 'final')).toEqual([]);
    expect(cut.filter((m) => m.event === 'text_chunk').length).toBeLessThan(40);

    const whole = await staying.ended;
    expect(whole.at(-1)!.event).toBe('final');
    expect(whole.some((m) => m.data?.code === 'session_revoked')).toBe(false);
  }, 60_000);

  test('a reused refresh token ends the family’s generation stream on node B (and a second user’s stream stays)', async () => {
    const user = await registerUser(a, 'Reused');
    const bystander = await registerUser(a, 'Bystander');
    const canvasId = await createCanvas(a, user);
    const otherCanvas = await createCanvas(a, bystander);
    const open = gate('gen-reuse');
    const stream = await openStream(`${b}/canvases/${canvasId}/ai/generate-stream`, user.accessToken, { prompt: 'A plan hold:gen-reuse' });
    const theirs = await openStream(`${b}/canvases/${otherCanvas}/ai/generate-stream`, bystander.accessToken, {
      prompt: 'A plan hold:gen-reuse',
    });
    expect([stream.response.status, theirs.response.status]).toEqual([200, 200]);

    const rotated = await request('POST', `${a}/auth/refresh`, { body: { refreshToken: user.refreshToken } });
    expect(rotated.status).toBe(200);
    const reused = await request('POST', `${a}/auth/refresh`, { body: { refreshToken: user.refreshToken } });
    expect(reused.body.error.code).toBe('refresh_token_reused');
    const messages = await stream.ended;
    expect(messages.at(-1)).toEqual(REVOKED);
    expect(messages.some((m) => m.event === 'complete')).toBe(false);

    open();
    const finished = await theirs.ended;
    expect(finished.at(-1)!.event).toBe('complete');
  }, 60_000);

  test('sign-out ends the session’s ticket-notes stream on node B while the notes are being written', async () => {
    const user = await registerUser(a, 'Noter');
    const chat = await request('POST', `${a}/chat`, { token: user.accessToken, body: { message: 'My printer jams', tools: 'none' } });
    expect(chat.status).toBe(200);
    const sessionId = chat.body.sessionId as string;
    gate('notes-logout');
    const resolved = await request('POST', `${a}/chat/sessions/${sessionId}/resolve`, {
      token: user.accessToken,
      body: { resolutionSummary: 'Replaced the roller hold:notes-logout' },
    });
    expect(resolved.status).toBe(200);
    await waitUntil(() => llm.chatRequests().some((r) => JSON.stringify(r).includes('hold:notes-logout')), 15_000);
    const stream = await openStream(`${b}/chat/sessions/${sessionId}/documentation/stream`, user.accessToken);
    expect(stream.response.status).toBe(200);

    expect((await request('POST', `${a}/auth/logout`, { body: { refreshToken: user.refreshToken } })).status).toBe(204);
    const messages = await stream.ended;
    expect(messages.at(-1)).toEqual(REVOKED);
    expect(messages.some((m) => m.data === '[DONE]')).toBe(false);
  }, 60_000);

  test('deleting the account ends its flow execution stream on node B', async () => {
    const user = await registerUser(a, 'Deleter');
    gate('flow-delete');
    const flow = await request('POST', `${a}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: 'Slow', definition: { nodes: [{ id: 'n', prompt: 'Think hold:flow-delete' }], output: 'n' } },
    });
    expect(flow.status).toBe(201);
    const stream = await openStream(`${b}/flows/${flow.body.flow.id}/execute/stream`, user.accessToken, { input: {} });
    expect(stream.response.status).toBe(200);
    await waitUntil(() => llm.chatRequests().some((r) => JSON.stringify(r).includes('hold:flow-delete')), 15_000);

    const deleted = await request('DELETE', `${a}/me`, { token: user.accessToken, body: { confirm: user.email } });
    expect(deleted.status).toBe(200);
    const messages = await stream.ended;
    expect(messages.at(-1)).toEqual(REVOKED);
    expect(messages.some((m) => m.event === 'execution_completed')).toBe(false);
  }, 60_000);
});

/**
 * The announcement channel itself, on the real Redis: a watch that begins after its credential's
 * revocation arrived still fires (the request was authenticated before it); other credentials are
 * untouched; junk on the channel and a flood of revocations change nothing else.
 */
describe('revocations across processes', () => {
  const prefix = `t-${randomUUID().slice(0, 8)}`;
  let redis: RedisClient;
  let here: Revocations;
  let there: Revocations;

  beforeAll(async () => {
    redis = createRedis(testRedisTarget('realtime'), 'command');
    here = new Revocations(redis, prefix);
    there = new Revocations(redis, prefix);
    await redisReady(redis);
    await Promise.all([here.listen(), there.listen()]);
  });
  afterAll(async () => {
    await Promise.all([here.close(), there.close()]);
    redis.disconnect();
  });

  const watcher = () => {
    const fired: number[] = [];
    return { fired, revoked: () => void fired.push(Date.now()) };
  };

  test('a watch fires on another process, once per revocation, and a watch begun after the announcement fires too', async () => {
    const [revokedId, otherId] = [randomUUID(), randomUUID()];
    const early = watcher();
    const bystander = watcher();
    there.watch([revokedId, Revocations.userId('u1')], early);
    there.watch([otherId], bystander);
    await here.announce([revokedId]);
    await waitUntil(() => early.fired.length === 1);

    const late = watcher();
    there.watch([revokedId], late);
    await waitUntil(() => late.fired.length === 1);
    expect(bystander.fired).toEqual([]);

    there.unwatch([revokedId, Revocations.userId('u1')], early);
    await here.announce([Revocations.userId('u1')]);
    const marker = watcher();
    there.watch([Revocations.userId('u1')], marker);
    await waitUntil(() => marker.fired.length === 1);
    expect(early.fired).toHaveLength(1);
  });

  test('junk on the channel is ignored, and a flood of revocations leaves other watches alone', async () => {
    const channel = `${prefix}:revoked`;
    const mine = watcher();
    const id = randomUUID();
    there.watch([id], mine);
    for (const junk of ['not json', '{"a":1}', '[1,2,{}]', '"' + id + '"', '[null]']) await redis.publish(channel, junk);
    await here.announce(Array.from({ length: 5_000 }, () => randomUUID()));
    await here.announce([id]);
    await waitUntil(() => mine.fired.length === 1);
    expect(mine.fired).toHaveLength(1);
  });
});

import { randomUUID } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { demoResponder } from '../../src/demo-model';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, type CanvasClient } from '../support/sockets';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';
import { WsDevice } from '../support/ws-device';

/**
 * Bad input, black box: text that PostgreSQL cannot store (NUL, lone surrogates) is
 * refused when a client sends it (400, an error ack) and cleaned when a device or a model sends it;
 * never a 500, never a run left `running`. UNC paths are no local directory.
 */

const LONE = '\ud800';
const expect400 = (res: { status: number; body: any }) => {
  expect(res.status).toBe(400);
  expect(res.body.error).toMatchObject({ code: 'validation_failed', message: expect.any(String) });
};

describe('text that cannot be stored', () => {
  let t: TestApp;
  let user: TestUser;
  let canvasId: string;
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    t = await startTestApp({
      env: { SWITCHBOARD_ROLES: 'api,worker' },
      // A model that answers a marked prompt with text PostgreSQL could not store.
      responder: (req) => {
        if (!JSON.stringify(req.messages).includes('unclean-model')) return demoResponder(req);
        if (req.messages.at(-1)?.role === 'tool') return { text: `done \u0000${LONE}` };
        return { toolCalls: [{ name: 'create_text', args: { text: `model \u0000said${LONE}` } }] };
      },
    });
    user = await registerUser(t.api, 'Unicode');
    canvasId = await createCanvas(t.api, user);
  });

  afterAll(async () => {
    closers.forEach((close) => close());
    await t.stop();
  });

  const blocks = async () =>
    (await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken })).body.blocks as Array<{
      id: string;
      content: any;
    }>;
  const localAgent = (extra: Record<string, unknown>) => ({
    name: 'Notes',
    deviceId: 'laptop',
    directoryPaths: ['/Users/ana/Notes'],
    dataTypes: ['tasks'],
    promptTemplate: 'Extract tasks.',
    fileExtensions: ['.txt'],
    ...extra,
  });

  test('a lone surrogate in block content, a block PATCH, a canvas title or a chat message is 400 and writes nothing', async () => {
    const created = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text: 'kept' } },
    });
    expect(created.status).toBe(201);

    expect400(
      await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
        token: user.accessToken,
        body: { type: 'text', content: { text: `a${LONE}b` } },
      }),
    );
    expect400(
      await request('PATCH', `${t.api}/canvases/${canvasId}/blocks/${created.body.block.id}`, {
        token: user.accessToken,
        body: { content: { text: `x${LONE}` } },
      }),
    );
    expect400(await request('PATCH', `${t.api}/canvases/${canvasId}`, { token: user.accessToken, body: { title: `t\udc00` } }));
    expect400(await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: `hello ${LONE}`, tools: 'none' } }));

    expect((await blocks()).map((b) => b.content)).toEqual([{ text: 'kept' }]);
    expect((await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken })).body.sessions).toEqual([]);
  });

  test('a lone surrogate in filterConfig.labels or directoryPaths, or a NUL in an object key, is 400 and creates no agent', async () => {
    expect400(
      await request('POST', `${t.api}/agents/cloud`, {
        token: user.accessToken,
        body: { provider: 'gmail', name: 'g', dataTypes: ['tasks'], promptTemplate: 'p', filterConfig: { labels: [`inbox${LONE}`] } },
      }),
    );
    expect400(
      await request('POST', `${t.api}/agents/local`, {
        token: user.accessToken,
        body: localAgent({ directoryPaths: [`/Users/ana/${LONE}`] }),
      }),
    );
    expect400(
      await request('POST', `${t.api}/agents/local`, { token: user.accessToken, body: { ...localAgent({}), ['na\u0000me']: 'x' } }),
    );

    expect((await request('GET', `${t.api}/agents/local`, { token: user.accessToken })).body.agents).toEqual([]);
    expect((await request('GET', `${t.api}/agents/cloud`, { token: user.accessToken })).body.agents).toEqual([]);
  });

  test('UNC and device paths are no local directory: 400', async () => {
    for (const path of [
      '//attacker.example/share',
      '\\\\attacker.example\\share',
      '\\\\?\\C:\\Users',
      '\\\\.\\PhysicalDrive0',
      '/\\attacker\\share',
    ]) {
      expect400(await request('POST', `${t.api}/agents/local`, { token: user.accessToken, body: localAgent({ directoryPaths: [path] }) }));
    }
    expect(
      (
        await request('POST', `${t.api}/agents/local`, {
          token: user.accessToken,
          body: localAgent({ directoryPaths: ['C:\\Users\\ana\\Notes'] }),
        })
      ).status,
    ).toBe(201);
  });

  test('a NUL in a query string is 400; a path that is not UTF-8 is 4xx, never 500', async () => {
    expect400(await request('GET', `${t.api}/chat/sessions?cursor=a%00b`, { token: user.accessToken }));
    expect400(await request('GET', `${t.api}/agents/runs?agentId=%00`, { token: user.accessToken }));

    const badPath = await request('GET', `${t.api}/canvases/%ED%A0%80`, { token: user.accessToken });
    expect(badPath.status).toBeGreaterThanOrEqual(400);
    expect(badPath.status).toBeLessThan(500);
    expect(badPath.body.error.code).toEqual(expect.any(String));
  });

  test('socket frames: canvas:join with a lone surrogate and a device chat_request with a lone surrogate get an error ack, and nothing is queued', async () => {
    const canvas: CanvasClient = await connectCanvas(t.url, user.accessToken);
    closers.push(() => canvas.close());
    const device: Socket = io(`${t.url}/device`, {
      auth: { token: user.accessToken, deviceId: `dev-${randomUUID().slice(0, 6)}` },
      transports: ['websocket'],
      reconnection: false,
    });
    closers.push(() => device.close());
    await new Promise<void>((resolve, reject) => (device.once('connect', () => resolve()), device.once('connect_error', reject)));

    const joined = await canvas.timeout(5_000).emitWithAck('canvas:join', `${canvasId}${LONE}`);
    const asked = await device.timeout(5_000).emitWithAck('chat_request', { message: `how many ${LONE} tasks` });
    const stillJoins = await canvas.timeout(5_000).emitWithAck('canvas:join', canvasId);

    expect(joined).toMatchObject({ ok: false, error: { code: 'validation_failed' } });
    expect(asked).toMatchObject({ error: { code: 'validation_failed' } });
    expect(stillJoins).toMatchObject({ ok: true });
    expect((await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken })).body.sessions).toEqual([]);
  });

  test("a device's agent_complete with a NUL in its errors and a file with a lone surrogate: the run ends, cleaned", async () => {
    const runner = await registerUser(t.api, 'Runner');
    const agent = (await request('POST', `${t.api}/agents/local`, { token: runner.accessToken, body: localAgent({}) })).body;
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: runner.accessToken,
      deviceId: 'laptop',
      reconnection: false,
      readAgentFiles: async () => ({
        files: [{ path: '/Users/ana/Notes/a.txt', name: `a${LONE}.txt`, content: `TODO: Call Ana \u0000today${LONE}\n` }],
        errors: ['bad \u0000 file'],
      }),
    });
    closers.push(() => device.close());

    expect((await request('POST', `${t.api}/agents/${agent.id}/run`, { token: runner.accessToken })).status).toBe(202);
    const [run] = await eventually(
      async () =>
        (await request('GET', `${t.api}/agents/runs?agentId=${agent.id}`, { token: runner.accessToken })).body.runs as Array<
          Record<string, any>
        >,
      (list) => list.length === 1 && list[0].completedAt !== null,
    );

    expect(run.status).not.toBe('running');
    expect(run.errors).toEqual([expect.stringContaining('bad  file')]);
    expect(device.store.rows('tasks').map((task) => task.title)).toEqual(['Call Ana today\uFFFD']);
  });

  test('the same over the plain WebSocket device protocol: agent_complete with a NUL ends the run, cleaned, and draws no error frame', async () => {
    const runner = await registerUser(t.api, 'WsRunner');
    const agent = (
      await request('POST', `${t.api}/agents/local`, { token: runner.accessToken, body: localAgent({ deviceId: 'ws-laptop' }) })
    ).body;
    const device = await WsDevice.connect(t.url, runner.accessToken);
    closers.push(() => device.close());
    device.send({ type: 'device_hello', device_id: 'ws-laptop', agent_ids: [agent.id] });

    expect((await request('POST', `${t.api}/agents/${agent.id}/run`, { token: runner.accessToken })).status).toBe(202);
    const run = await device.next('agent_run');
    device.send({ type: 'agent_complete', run_id: run.run_id, files_read: 0, errors: ['bad \u0000 frame'] });
    const [done] = await eventually(
      async () =>
        (await request('GET', `${t.api}/agents/runs?agentId=${agent.id}`, { token: runner.accessToken })).body.runs as Array<
          Record<string, any>
        >,
      (list) => list.length === 1 && list[0].completedAt !== null,
    );

    expect(done.errors).toEqual([expect.stringContaining('bad  frame')]);
    expect(device.all('error')).toEqual([]);
  });

  test("a device's tool result with a NUL and a lone surrogate: the turn answers and its history holds the cleaned text", async () => {
    const owner = await registerUser(t.api, 'Rows');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: owner.accessToken,
      deviceId: `rows-${randomUUID().slice(0, 6)}`,
      reconnection: false,
      seed: { tasks: [{ title: `Pay \u0000rent${LONE}`, status: 'todo', priority: 'high' }] },
    });
    closers.push(() => device.close());

    const res = await request('POST', `${t.api}/chat`, {
      token: owner.accessToken,
      body: { message: 'How many todo tasks do I have?', deviceId: device.deviceId },
    });
    const history = await request('GET', `${t.api}/chat/sessions/${res.body.sessionId}/history`, { token: owner.accessToken });

    expect(res.status).toBe(200);
    const tool = history.body.messages.find((m: { role: string }) => m.role === 'tool');
    expect(tool.content).toContain('Pay rent\uFFFD');
  });

  test("a model's NUL and lone surrogates are cleaned before the blocks are stored", async () => {
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'unclean-model: write one line' },
    });

    expect(sse.messages.at(-1)!.event).toBe('complete');
    expect(sse.messages.at(-1)!.data.blocks.map((b: { content: { text: string } }) => b.content.text)).toEqual(['model said\uFFFD']);
    expect((await blocks()).map((b) => b.content.text)).toContain('model said\uFFFD');
  });
});

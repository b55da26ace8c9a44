import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { testConfig } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { profileNamed } from '../support/provider-profiles';
import { failMarkFor, startProviderReplay, type ReplayServer } from '../support/provider-replay';
import { eventually } from '../support/wait';

/*
 * An agent's own model: `model: {provider, model}` is checked against the configured providers when
 * the agent is saved (400 `unknown_model`, nothing written), shown in GET, and the agent's runs ask
 * that model first, then the deployment's chain (as a flow node does). Two providers of the replay
 * server; which one a run asked is read from the requests it received.
 */

type AgentRunView = { id: string; completedAt: string | null; status: string; itemsCreated: number; errors: string[] };

const OPENAI = profileNamed('openai');
const GROQ = profileNamed('groq');
const OPENROUTER = profileNamed('openrouter');

describe("an agent's and a flow's own model", () => {
  let replay: ReplayServer;
  let database: TestDatabase;
  let app: RunningSwitchboard;
  let api: string;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    replay = await startProviderReplay();
    database = await createTestDatabase();
    const config = testConfig({
      keyPrefix: `t-${randomUUID().slice(0, 8)}`,
      databaseUrl: database.url,
      env: {
        SWITCHBOARD_ROLES: 'api,worker',
        // The deployment's default is OpenAI; Groq and OpenRouter are there for agents that name them.
        LLM_PROVIDERS: JSON.stringify([replay.provider(OPENAI), replay.provider(GROQ), replay.provider(OPENROUTER)]),
      },
    });
    app = await startSwitchboard(config, { logger: createLogger({ level: config.log.level }) });
    api = `${app.url}/api/v1`;
  }, 60_000);

  afterEach(() => {
    for (const device of devices.splice(0)) device.close();
  });

  afterAll(async () => {
    await app?.stop();
    await replay?.close();
    await database?.drop();
  }, 60_000);

  const agentBody = (deviceId: string, extra: Record<string, unknown> = {}) => ({
    name: 'Notes folder',
    deviceId,
    directoryPaths: ['/Users/ana/Notes'],
    dataTypes: ['tasks'],
    promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
    ...extra,
  });

  async function deviceFor(user: TestUser, content: string) {
    const device = await DeviceSimulator.connect({
      url: app.url!,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      reconnection: false,
      readAgentFiles: async () => ({ files: [{ path: '/Users/ana/Notes/a.txt', name: 'a.txt', content }] }),
    });
    devices.push(device);
    return device;
  }

  /** Runs the agent and waits for its run to end; the extraction requests it made, by profile and model. */
  async function run(user: TestUser, agentId: string) {
    const from = replay.requests.length;
    const queued = await request('POST', `${api}/agents/${agentId}/run`, { token: user.accessToken });
    expect(queued.status).toBe(202);
    // This run by its id: an earlier run of the same agent has ended already and may still be listed first.
    const ended = await eventually(
      async () =>
        ((await request('GET', `${api}/agents/runs?agentId=${agentId}`, { token: user.accessToken })).body.runs as AgentRunView[]).find(
          (listed) => listed.id === queued.body.runId,
        ),
      (listed) => listed !== undefined && listed.completedAt !== null,
    );
    const asked = replay.requests.slice(from).map((entry) => [entry.profile, entry.body.model]);
    return { run: ended, asked };
  }

  test('given an agent saved with Groq, its run asks Groq for that model and the agent shows it', async () => {
    const user = await registerUser(api, 'OwnModel');
    const device = await deviceFor(user, 'TODO: Send the revised quote\n');
    const model = { provider: GROQ.name, model: GROQ.model };
    const created = await request('POST', `${api}/agents/local`, { token: user.accessToken, body: agentBody(device.deviceId, { model }) });
    expect(created.status).toBe(201);
    expect(created.body.model).toEqual(model);
    expect((await request('GET', `${api}/agents/local/${created.body.id}`, { token: user.accessToken })).body.model).toEqual(model);

    const { run: ended, asked } = await run(user, created.body.id);
    expect(ended).toMatchObject({ status: 'success', itemsCreated: 1 });
    expect(asked).toEqual([[GROQ.name, GROQ.model]]);

    // Back to the default: null clears it, and the next run asks the deployment's default.
    const cleared = await request('PUT', `${api}/agents/local/${created.body.id}`, { token: user.accessToken, body: { model: null } });
    expect(cleared.status).toBe(200);
    expect(cleared.body.model).toBeNull();
    expect((await run(user, created.body.id)).asked).toEqual([[OPENAI.name, OPENAI.model]]);
  }, 30_000);

  test("when the agent's model fails, the run falls back to the deployment's chain, as a flow node does", async () => {
    const user = await registerUser(api, 'Fallback');
    // OpenRouter fails this document mid-stream (an error object after HTTP 200).
    const device = await deviceFor(user, `TODO: Book the kickoff room ${failMarkFor(OPENROUTER.name)}\n`);
    const created = await request('POST', `${api}/agents/local`, {
      token: user.accessToken,
      body: agentBody(device.deviceId, { model: { provider: OPENROUTER.name, model: OPENROUTER.model } }),
    });
    const { run: ended, asked } = await run(user, created.body.id);
    expect(ended).toMatchObject({ status: 'success', itemsCreated: 1 });
    // A stream that failed once open is asked once more of the same model before the chain goes on.
    expect(asked).toEqual([
      [OPENROUTER.name, OPENROUTER.model],
      [OPENROUTER.name, OPENROUTER.model],
      [OPENAI.name, OPENAI.model],
    ]);
  }, 30_000);

  test("a flow's own models: a chatflow on Groq answers from Groq; an agentflow node on OpenRouter asks OpenRouter, its other node the default", async () => {
    const user = await registerUser(api, 'FlowModels');
    const create = async (body: unknown) => {
      const res = await request('POST', `${api}/flows`, { token: user.accessToken, body });
      expect(res.status).toBe(201);
      return res.body.flow.id as string;
    };
    const chatflowId = await create({
      type: 'chatflow',
      name: 'Groq helpdesk',
      definition: { systemPrompt: 'You answer briefly.', model: { provider: GROQ.name, model: GROQ.model } },
    });
    let from = replay.requests.length;
    const answered = await request('POST', `${api}/flows/${chatflowId}/chat`, {
      token: user.accessToken,
      body: { message: 'Hello there' },
    });
    expect(answered.status).toBe(200);
    expect(replay.requests.slice(from).map((entry) => [entry.profile, entry.body.model])).toEqual([[GROQ.name, GROQ.model]]);

    const agentflowId = await create({
      type: 'agentflow',
      name: 'Two models',
      definition: {
        nodes: [
          { id: 'facts', prompt: 'List facts about {{input.topic}}', model: { provider: OPENROUTER.name, model: OPENROUTER.model } },
          { id: 'summary', prompt: 'Summarize {{nodes.facts.output}}', dependsOn: ['facts'] },
        ],
        output: 'summary',
      },
    });
    from = replay.requests.length;
    const queued = await request('POST', `${api}/flows/${agentflowId}/execute`, {
      token: user.accessToken,
      body: { input: { topic: 'otters' } },
    });
    expect(queued.status).toBe(202);
    const executionId = queued.body.executionId as string;
    const ended = await eventually(
      () => request('GET', `${api}/flows/${agentflowId}/executions/${executionId}`, { token: user.accessToken }),
      (res) => ['completed', 'failed', 'cancelled'].includes(res.body.execution?.status),
    );
    expect(ended.body.execution.status).toBe('completed');
    // Each node asked its own model: the first OpenRouter's, the second the deployment's default.
    expect(replay.requests.slice(from).map((entry) => [entry.profile, entry.body.model])).toEqual([
      [OPENROUTER.name, OPENROUTER.model],
      [OPENAI.name, OPENAI.model],
    ]);
  }, 30_000);

  test.each([
    ['an unknown provider', { provider: 'nope', model: 'gpt-4o-mini' }],
    ['a model its provider does not serve', { provider: GROQ.name, model: 'not-a-groq-model' }],
  ])('%s is 400 unknown_model naming it, on create and on update, and nothing is written', async (_what, model) => {
    const user = await registerUser(api, 'BadModel');
    const refused = await request('POST', `${api}/agents/local`, { token: user.accessToken, body: agentBody('laptop', { model }) });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({
      code: 'unknown_model',
      message: expect.stringContaining(`${model.provider}:${model.model}`),
      details: [{ path: 'model', message: expect.stringContaining(`${model.provider}:${model.model}`) }],
    });
    expect((await request('GET', `${api}/agents/local`, { token: user.accessToken })).body.agents).toEqual([]);
    const cloud = await request('POST', `${api}/agents/cloud`, {
      token: user.accessToken,
      body: { provider: 'gmail', name: 'Inbox', dataTypes: ['tasks'], promptTemplate: 'Tasks.', model },
    });
    expect([400, 403]).toContain(cloud.status);
    if (cloud.status === 400) expect(cloud.body.error.code).toBe('unknown_model');

    const created = await request('POST', `${api}/agents/local`, { token: user.accessToken, body: agentBody('laptop') });
    const updated = await request('PUT', `${api}/agents/local/${created.body.id}`, {
      token: user.accessToken,
      body: { model, name: 'Renamed' },
    });
    expect(updated.status).toBe(400);
    expect(updated.body.error.code).toBe('unknown_model');
    const after = await request('GET', `${api}/agents/local/${created.body.id}`, { token: user.accessToken });
    expect(after.body).toMatchObject({ name: 'Notes folder', model: null });
  });

  test('a malformed model (not {provider, model}) is 400 validation_failed', async () => {
    const user = await registerUser(api, 'Malformed');
    for (const model of ['groq:llama', { provider: GROQ.name }, { provider: GROQ.name, model: GROQ.model, extra: 1 }]) {
      const refused = await request('POST', `${api}/agents/local`, { token: user.accessToken, body: agentBody('laptop', { model }) });
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('validation_failed');
    }
    expect((await request('GET', `${api}/agents/local`, { token: user.accessToken })).body.agents).toEqual([]);
  });
});

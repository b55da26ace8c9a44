import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { createSwitchboardClient } from '@switchboard/client';
import { demoResponder } from '../../src/demo-model';
import { createRedis, redisReady } from '../../src/lib/redis';
import { bullPrefix } from '../../src/producers/registry';
import { testRedisTarget } from '../support/database';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * The Adiuva desktop app's own reads of its agents, sent exactly as it sends them: bare
 * `GET /api/v1/agents/catalog`, `/agents/local` and `/agents/cloud` with its bearer token, and
 * `GET /agents/runs?agent_id=…&page=1&limit=5`. It reads snake_case fields; Switchboard's own
 * clients read camelCase from the same answers. No worker takes agent runs in this app, so a run
 * is read exactly as it is right after `POST /agents/:id/run` queued it.
 */
describe('Adiuva reads its agents and their runs', () => {
  let t: TestApp;
  let user: TestUser;

  beforeAll(async () => {
    t = await startTestApp({
      responder: demoResponder,
      env: { WORKER_QUEUES: 'broadcast', TIER_LIMITS: JSON.stringify({ free: { maxEnabledAgents: 50 } }) },
    });
    user = await registerUser(t.api, 'Adiuva');
  });

  afterAll(() => t.stop());

  /** The app's request: its path, its bearer token, nothing else. */
  const adiuva = (method: string, path: string, body?: unknown, who: TestUser = user) =>
    request(method, `${t.api}${path}`, { token: who.accessToken, body });

  /** The seed's create body: `{ name, device_id, directory_paths, data_types, prompt_template, file_extensions, schedule_cron }`. */
  const createLocal = async (who: TestUser = user) => {
    const body = {
      name: `Notes ${randomUUID().slice(0, 6)}`,
      device_id: `laptop-${randomUUID().slice(0, 6)}`,
      directory_paths: ['/Users/ana/Notes'],
      data_types: ['tasks', 'notes'],
      prompt_template: 'Extract tasks. Lines starting with TODO are tasks.',
      file_extensions: ['.txt', '.md'],
      schedule_cron: '0 */6 * * *',
    };
    const created = await adiuva('POST', '/agents/local', body, who);
    expect(created.status).toBe(201);
    return { body, id: created.body.id as string };
  };

  test('GET /agents/catalog: each item has type, name, description and config_schema (and configSchema for camelCase clients)', async () => {
    const res = await adiuva('GET', '/agents/catalog');

    expect(res.status).toBe(200);
    const types = (res.body.agents as Array<Record<string, unknown>>).map((item) => item.type);
    expect(types).toEqual(expect.arrayContaining(['local_directory', 'gmail', 'teams', 'outlook']));
    for (const item of res.body.agents as Array<Record<string, any>>) {
      expect(item).toMatchObject({ type: expect.any(String), name: expect.any(String), description: expect.any(String) });
      expect(item.config_schema).toMatchObject({ type: 'object', properties: expect.any(Object) });
      expect(item.configSchema).toEqual(item.config_schema);
      // A JSON Schema is the catalog's data: its own keys are not renamed.
      expect(JSON.stringify(item.config_schema)).not.toContain('additional_properties');
    }
    const local = (res.body.agents as Array<Record<string, any>>).find((item) => item.type === 'local_directory');
    expect(Object.keys(local!.config_schema.properties)).toEqual(expect.arrayContaining(['deviceId', 'directoryPaths']));
  });

  test('GET /agents/local: items carry device_id, directory_paths, data_types, prompt_template, file_extensions, schedule_cron', async () => {
    const { body, id } = await createLocal();

    const res = await adiuva('GET', '/agents/local');

    expect(res.status).toBe(200);
    const item = (res.body.agents as Array<Record<string, unknown>>).find((agent) => agent.id === id);
    expect(item).toMatchObject({
      id,
      name: body.name,
      device_id: body.device_id,
      directory_paths: body.directory_paths,
      data_types: body.data_types,
      prompt_template: body.prompt_template,
      file_extensions: body.file_extensions,
      schedule_cron: body.schedule_cron,
      enabled: true,
      last_run_at: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    expect(res.body).toHaveProperty('next_cursor');
  });

  test('GET /agents/cloud: items carry data_types, prompt_template, schedule_cron and filter_config.date_range', async () => {
    const created = await adiuva('POST', '/agents/cloud', {
      provider: 'gmail',
      name: `Mail ${randomUUID().slice(0, 6)}`,
      data_types: ['tasks'],
      prompt_template: 'Extract tasks from email.',
      schedule_cron: '*/30 * * * *',
      filter_config: { labels: ['clients'], date_range: { from: '2026-01-01', to: '2026-12-31' }, senders: [] },
    });
    expect(created.status).toBe(201);

    const res = await adiuva('GET', '/agents/cloud');

    expect(res.status).toBe(200);
    const item = (res.body.agents as Array<Record<string, unknown>>).find((agent) => agent.id === created.body.id);
    expect(item).toMatchObject({
      provider: 'gmail',
      data_types: ['tasks'],
      prompt_template: 'Extract tasks from email.',
      schedule_cron: '*/30 * * * *',
      filter_config: { labels: ['clients'], date_range: { from: '2026-01-01', to: '2026-12-31' }, senders: [] },
    });
  });

  test("right after POST /agents/:id/run, GET /agents/runs?agent_id=…&page=1&limit=5 lists that agent's run in snake_case", async () => {
    const mine = await createLocal();
    const other = await createLocal();
    const otherRun = await adiuva('POST', `/agents/${other.id}/run`);
    expect(otherRun.status).toBe(202);

    const started = await adiuva('POST', `/agents/${mine.id}/run`);
    expect(started.status).toBe(202);
    const runs = await adiuva('GET', `/agents/runs?agent_id=${mine.id}&page=1&limit=5`);

    expect(runs.status).toBe(200);
    expect(runs.body).toMatchObject({ page: 1, limit: 5, total: 1 });
    expect(runs.body.runs).toEqual([
      {
        id: started.body.runId,
        agent_id: mine.id,
        agent_type: 'local',
        trigger: 'manual',
        slot: null,
        device_id: mine.body.device_id,
        status: 'queued',
        items_processed: 0,
        items_created: 0,
        errors: [],
        started_at: expect.any(String),
        completed_at: null,
      },
    ]);
    expect(Object.keys(runs.body).filter((key) => /[A-Z]/.test(key))).toEqual([]);
  });

  test("another user's agent_id lists nothing, and their runs are not counted", async () => {
    const mine = await createLocal();
    expect((await adiuva('POST', `/agents/${mine.id}/run`)).status).toBe(202);
    const stranger = await registerUser(t.api, 'Stranger');

    const runs = await adiuva('GET', `/agents/runs?agent_id=${mine.id}&page=1&limit=5`, undefined, stranger);

    expect(runs.status).toBe(200);
    expect(runs.body).toMatchObject({ runs: [], total: 0 });
  });

  test('a queued run cancelled before any worker took it ends cancelled in the list, and its job is gone', async () => {
    const mine = await createLocal();
    const started = await adiuva('POST', `/agents/${mine.id}/run`);
    const runId = started.body.runId as string;

    const cancelled = await adiuva('POST', `/agents/runs/${runId}/cancel`);

    expect(cancelled.status).toBe(202);
    const runs = await adiuva('GET', `/agents/runs?agent_id=${mine.id}&page=1&limit=5`);
    expect(runs.body.runs).toEqual([expect.objectContaining({ id: runId, status: 'cancelled', completed_at: expect.any(String) })]);
    const redis = createRedis(testRedisTarget('queues'), 'command');
    try {
      await redisReady(redis);
      const queue = new Queue('agent-runs', { connection: redis, prefix: bullPrefix(t.keyPrefix) });
      expect(await queue.getJob(`run-${runId}`)).toBeFalsy();
      await queue.close();
    } finally {
      redis.disconnect();
    }
    expect((await t.app.repos.runs.find('agent', runId))?.status).toBe('cancelled');
    expect((await adiuva('POST', `/agents/runs/${runId}/cancel`)).status).toBe(409);
  });

  test('a bad agent_id is a 400 in snake_case and lists nothing', async () => {
    const res = await adiuva('GET', '/agents/runs?agent_id=not-a-uuid&page=1&limit=5');

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.map((detail: { path: string }) => detail.path)).toContain('agent_id');
  });

  test('camelCase clients read what they always read: the TS client, and camelCase queries without snake_case keys', async () => {
    const mine = await createLocal();
    const sdk = createSwitchboardClient({ baseUrl: t.url, accessToken: user.accessToken });
    const started = await sdk.agents.run(mine.id);
    expect(started).toMatchObject({ agentId: mine.id, agentType: 'local', status: 'queued' });

    const page = await sdk.agents.runs({ agentId: mine.id, page: 1, limit: 5 });

    expect(page.runs.map((run) => [run.id, run.agentId, run.status])).toEqual([[started.runId, mine.id, 'queued']]);
    expect(Object.keys(page).some((key) => key.includes('_'))).toBe(false);
    expect(Object.keys(page.runs[0]).some((key) => key.includes('_'))).toBe(false);
    const listed = await sdk.agents.local.list();
    expect(listed.agents.find((agent) => agent.id === mine.id)).toMatchObject({
      deviceId: mine.body.device_id,
      scheduleCron: '0 */6 * * *',
    });
  });
});

import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * The `/agents/…` paths the API shares with the Adiuva desktop app, whose requests are snake_case:
 * a snake_case request is read as its camelCase twin and answered in snake_case (errors too); a
 * camelCase request is answered exactly as before; a read (GET) that says neither is answered in both.
 */
describe('compatibility edge: snake_case requests on /agents', () => {
  let t: TestApp;
  let user: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { TIER_LIMITS: JSON.stringify({ free: { maxEnabledAgents: 50 } }) } });
    user = await registerUser(t.api, 'Adiuva');
  });

  afterAll(() => t.stop());

  const call = (method: string, path: string, body?: unknown, who: TestUser = user) =>
    request(method, `${t.api}${path}`, { token: who.accessToken, body });

  /** The seed's create body: `{ name, device_id, directory_paths, data_types, prompt_template, file_extensions, schedule_cron }`. */
  const seedLocalAgent = (name: string) => ({
    name,
    device_id: `laptop-${randomUUID().slice(0, 6)}`,
    directory_paths: ['/Users/ana/Notes'],
    data_types: ['tasks'],
    prompt_template: 'Extract tasks. Lines starting with TODO are tasks.',
    file_extensions: ['.txt', '.md'],
    schedule_cron: '0 * * * *',
  });

  const agentCount = async () => (await call('GET', '/agents/local?limit=200')).body.agents.length as number;

  test('given the seed body, a local agent is created and answered in snake_case; a camelCase read of it stays camelCase', async () => {
    const body = seedLocalAgent(`Seed ${randomUUID().slice(0, 6)}`);

    const created = await call('POST', '/agents/local', body);

    expect(created.status).toBe(201);
    const agent = created.body;
    expect(agent).toMatchObject({
      name: body.name,
      device_id: body.device_id,
      directory_paths: body.directory_paths,
      data_types: ['tasks'],
      prompt_template: body.prompt_template,
      file_extensions: ['.txt', '.md'],
      schedule_cron: '0 * * * *',
    });
    expect(Object.keys(agent).filter((key) => /[A-Z]/.test(key))).toEqual([]);

    // A bare GET says neither spelling: it is answered in both.
    const read = await call('GET', `/agents/local/${agent.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ deviceId: body.device_id, directoryPaths: body.directory_paths, scheduleCron: '0 * * * *' });
    expect(read.body).toMatchObject({ device_id: body.device_id, directory_paths: body.directory_paths, schedule_cron: '0 * * * *' });
    // A camelCase query is answered in camelCase only.
    const camel = await call('GET', `/agents/runs?agentId=${agent.id}`);
    expect(camel.status).toBe(200);
    expect(camel.body).toHaveProperty('nextCursor');
    expect(camel.body).not.toHaveProperty('next_cursor');

    const updated = await call('PUT', `/agents/local/${agent.id}`, { prompt_template: 'Only TODO lines.', data_types: ['tasks', 'notes'] });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ prompt_template: 'Only TODO lines.', data_types: ['tasks', 'notes'] });
  });

  test('given a camelCase body, the answer is exactly the camelCase one it always was', async () => {
    const created = await call('POST', '/agents/local', {
      name: `Camel ${randomUUID().slice(0, 6)}`,
      deviceId: 'laptop-camel',
      directoryPaths: ['/tmp/a'],
      dataTypes: ['notes'],
      promptTemplate: 'Extract notes.',
      fileExtensions: ['.md'],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ deviceId: 'laptop-camel', directoryPaths: ['/tmp/a'] });
    expect(Object.keys(created.body).some((key) => key.includes('_'))).toBe(false);
  });

  test('a cloud agent with filter_config.date_range, and its runs read with ?agent_id=, answer in snake_case', async () => {
    const created = await call('POST', '/agents/cloud', {
      provider: 'gmail',
      name: `Mail ${randomUUID().slice(0, 6)}`,
      data_types: ['tasks'],
      prompt_template: 'Extract tasks from email.',
      schedule_cron: '*/30 * * * *',
      filter_config: { labels: ['clients'], date_range: { from: '2026-01-01', to: '2026-12-31' }, senders: [] },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      provider: 'gmail',
      filter_config: { labels: ['clients'], date_range: { from: '2026-01-01', to: '2026-12-31' }, senders: [] },
    });

    const runs = await call('GET', `/agents/runs?agent_id=${created.body.id}&page=1&limit=10`);
    expect(runs.status).toBe(200);
    expect(runs.body.runs).toEqual([]);
    expect(Object.keys(runs.body).every((key) => !/[A-Z]/.test(key))).toBe(true);
  });

  test('the setup journey speaks snake_case: {agent_type, data_types} then {session_id, message}', async () => {
    const started = await call('POST', '/agents/journey/start', { agent_type: 'local', data_types: ['tasks'] });
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ session_id: expect.any(String), message: expect.any(String), done: false });

    const answered = await call('POST', '/agents/journey/message', {
      session_id: started.body.session_id,
      message: 'Meeting notes in markdown',
    });
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({ session_id: started.body.session_id, done: expect.any(Boolean) });
  });

  test('a bad snake_case body is a 400 naming the snake_case fields, and nothing is written', async () => {
    const before = await agentCount();

    const wrongType = await call('POST', '/agents/local', { ...seedLocalAgent('Bad'), directory_paths: 'not-a-list' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.code).toBe('validation_failed');
    expect(wrongType.body.error.details.map((d: { path: string }) => d.path)).toContain('directory_paths');

    const unknown = await call('POST', '/agents/local', { ...seedLocalAgent('Bad'), oauth_token_encrypted: 'x' });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body.error.details)).toContain('oauth_token_encrypted');
    expect(JSON.stringify(unknown.body.error.details)).not.toContain('oauthTokenEncrypted');

    const twice = await call('POST', '/agents/local', { ...seedLocalAgent('Bad'), deviceId: 'other' });
    expect(twice.status).toBe(400);
    expect(twice.body.error.details).toEqual([{ path: 'device_id', message: 'The same field is sent in two spellings' }]);

    expect(await agentCount()).toBe(before);
  });

  test("another user's agent is 404 in snake_case too", async () => {
    const created = await call('POST', '/agents/local', seedLocalAgent(`Mine ${randomUUID().slice(0, 6)}`));
    const stranger = await registerUser(t.api, 'Stranger');
    const read = await call('PUT', `/agents/local/${created.body.id}`, { prompt_template: 'stolen' }, stranger);
    expect(read.status).toBe(404);
    expect(read.body.error.code).toBe('not_found');
    const mine = await call('GET', `/agents/local/${created.body.id}`);
    expect(mine.body.promptTemplate).not.toBe('stolen');
  });
});

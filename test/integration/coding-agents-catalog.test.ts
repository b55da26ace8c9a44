import { DEFAULT_CODING_AGENTS } from '../../config/coding-agents';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/** `GET /coding/agents`: the five coding agents as the operator configured them. */
describe('GET /coding/agents', () => {
  let t: TestApp;
  let user: TestUser;

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        OPENAI_API_KEY: 'test',
        LLM_MODEL: 'primary-model',
        LLM_FALLBACK_MODELS: 'planning-model',
        // The operator's overrides: a served model, one the deployment does not serve, a prompt, a step limit.
        CODING_AGENTS: JSON.stringify({
          architect: { model: { provider: 'scripted', model: 'planning-model' } },
          coder: { model: { provider: 'openai', model: 'not-served' } },
          ask: { prompt: 'You are the Ask agent of ACME. Read before answering.' },
          debug: { maxToolIterations: 12 },
        }),
      },
    });
    user = await registerUser(t.api, 'Lister');
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
  });

  test('lists the five agents with their prompt, tools and model, the overrides applied', async () => {
    const res = await request('GET', `${t.api}/coding/agents`, { token: user.accessToken });
    expect(res.status).toBe(200);
    const agents = res.body.agents as Array<Record<string, unknown>>;
    expect(agents.map((agent) => agent.name)).toEqual(['orchestrator', 'ask', 'coder', 'debug', 'architect']);
    const byName = Object.fromEntries(agents.map((agent) => [agent.name, agent]));
    const defaultModel = { provider: 'scripted', model: 'primary-model' };

    expect(byName.orchestrator).toEqual({
      name: 'orchestrator',
      description: DEFAULT_CODING_AGENTS.orchestrator.description,
      prompt: DEFAULT_CODING_AGENTS.orchestrator.prompt,
      toolsets: ['code_read'],
      tools: [
        { name: 'read_file', risk: 'read' },
        { name: 'list_files', risk: 'read' },
        { name: 'search_files', risk: 'read' },
        { name: 'plan_steps', risk: 'plan' },
      ],
      model: defaultModel,
      configuredModel: null,
      maxToolIterations: DEFAULT_CODING_AGENTS.orchestrator.maxToolIterations,
      overridden: [],
    });
    expect(byName.ask).toMatchObject({ prompt: 'You are the Ask agent of ACME. Read before answering.', overridden: ['prompt'] });
    expect(byName.architect).toMatchObject({
      model: { provider: 'scripted', model: 'planning-model' },
      configuredModel: { provider: 'scripted', model: 'planning-model' },
      overridden: ['model'],
    });
    // Configured with a model the deployment does not serve: its turns get the default, and the list says both.
    expect(byName.coder).toMatchObject({
      model: defaultModel,
      configuredModel: { provider: 'openai', model: 'not-served' },
      overridden: ['model'],
    });
    expect((byName.coder.tools as Array<{ name: string; risk: string }>).map((tool) => `${tool.name}:${tool.risk}`)).toEqual([
      'read_file:read',
      'list_files:read',
      'search_files:read',
      'write_file:write',
      'edit_file:write',
      'delete_file:write',
      'execute_command:execute',
    ]);
    expect(byName.debug).toMatchObject({ maxToolIterations: 12, overridden: ['maxToolIterations'], toolsets: ['code_read', 'code_exec'] });
    expect((byName.debug.tools as Array<{ name: string }>).map((tool) => tool.name)).not.toContain('write_file');
  });

  test('an API key with scope read may list; no credentials is 401; writing to the list is not a route', async () => {
    const key = await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name: 'agents-reader', scopes: ['read'] } });
    expect(key.status).toBe(201);
    const listed = await request('GET', `${t.api}/coding/agents`, { token: key.body.secret });
    expect(listed.status).toBe(200);
    expect(listed.body.agents).toHaveLength(5);

    const anonymous = await request('GET', `${t.api}/coding/agents`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toMatchObject({ code: 'unauthorized' });

    const put = await request('PUT', `${t.api}/coding/agents`, { token: user.accessToken, body: { coder: { prompt: 'x' } } });
    expect([404, 405]).toContain(put.status);
    expect((await request('GET', `${t.api}/coding/agents`, { token: user.accessToken })).body.agents[2].prompt).toBe(
      DEFAULT_CODING_AGENTS.coder.prompt,
    );
  });
});

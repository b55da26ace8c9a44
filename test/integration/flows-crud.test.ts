import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * Flows CRUD: saved chatflows and agentflows, validated on save (400 with the path of
 * the problem), visible to their owner only, paginated, and never a 500 on hostile bodies.
 */

const MODEL = { provider: 'scripted', model: 'scripted-model' };
const chatflow = (extra: Record<string, unknown> = {}) => ({
  type: 'chatflow',
  name: 'Support bot',
  definition: { systemPrompt: 'You answer briefly.', ...extra },
});
const agentflow = (nodes: unknown[], output = 'c') => ({ type: 'agentflow', name: 'Pipeline', definition: { nodes, output } });
const threeNodes = [
  { id: 'a', prompt: 'List facts about {{input.topic}}' },
  { id: 'b', prompt: 'Summarize {{nodes.a.output}}', dependsOn: ['a'], model: MODEL },
  {
    id: 'c',
    prompt: 'Translate {{nodes.b.output}} and {{nodes.a.output}}',
    dependsOn: ['b'],
    outputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
  },
];

describe('flows CRUD', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    t = await startTestApp();
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  });
  afterAll(() => t.stop());

  const post = (user: TestUser, body: unknown) => request('POST', `${t.api}/flows`, { token: user.accessToken, body });

  test('a chatflow is created with its defaults, read, renamed, redefined and deleted', async () => {
    const created = await post(ada, chatflow({ model: MODEL, temperature: 0.3 }));
    expect(created.status).toBe(201);
    const flow = created.body.flow;
    expect(flow).toMatchObject({
      type: 'chatflow',
      name: 'Support bot',
      definition: { systemPrompt: 'You answer briefly.', model: MODEL, temperature: 0.3, historyWindow: 20 },
    });

    const read = await request('GET', `${t.api}/flows/${flow.id}`, { token: ada.accessToken });
    expect(read.status).toBe(200);
    expect(read.body.flow).toEqual(flow);

    const renamed = await request('PATCH', `${t.api}/flows/${flow.id}`, { token: ada.accessToken, body: { name: 'Helpdesk' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body.flow).toMatchObject({ name: 'Helpdesk', definition: flow.definition });

    const redefined = await request('PATCH', `${t.api}/flows/${flow.id}`, {
      token: ada.accessToken,
      body: { definition: { systemPrompt: 'Be terse.', historyWindow: 5 } },
    });
    expect(redefined.status).toBe(200);
    expect(redefined.body.flow.definition).toEqual({ systemPrompt: 'Be terse.', historyWindow: 5 });

    // Its type never changes: an agentflow definition on a chatflow is refused.
    const wrongType = await request('PATCH', `${t.api}/flows/${flow.id}`, {
      token: ada.accessToken,
      body: { definition: agentflow(threeNodes).definition },
    });
    expect(wrongType.status).toBe(400);

    expect((await request('DELETE', `${t.api}/flows/${flow.id}`, { token: ada.accessToken })).status).toBe(204);
    expect((await request('GET', `${t.api}/flows/${flow.id}`, { token: ada.accessToken })).status).toBe(404);
    expect((await request('DELETE', `${t.api}/flows/${flow.id}`, { token: ada.accessToken })).status).toBe(404);
  });

  test('an agentflow of three nodes is saved as written', async () => {
    const created = await post(ada, agentflow(threeNodes));
    expect(created.status).toBe(201);
    expect(created.body.flow.definition).toEqual({ nodes: threeNodes, output: 'c' });
  });

  test("another user's flow is a 404 on every route, and lists hold only one's own", async () => {
    const { body } = await post(ada, chatflow());
    const id = body.flow.id;
    for (const [method, payload] of [['GET'], ['PATCH', { name: 'Mine now' }], ['DELETE']] as const) {
      const res = await request(method, `${t.api}/flows/${id}`, { token: bob.accessToken, body: payload });
      expect({ method, status: res.status, code: res.body?.error?.code }).toEqual({ method, status: 404, code: 'not_found' });
    }
    const bobs = await request('GET', `${t.api}/flows?limit=200`, { token: bob.accessToken });
    expect(bobs.body.flows.map((f: { id: string }) => f.id)).not.toContain(id);
    const still = await request('GET', `${t.api}/flows/${id}`, { token: ada.accessToken });
    expect(still.body.flow.name).toBe('Support bot');
    expect((await request('GET', `${t.api}/flows/not-a-uuid`, { token: ada.accessToken })).status).toBe(404);
    expect((await request('GET', `${t.api}/flows`)).status).toBe(401);
  });

  test('lists are newest first, in pages that neither skip nor repeat', async () => {
    const carol = await registerUser(t.api, 'Carol');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await post(carol, { ...chatflow(), name: `Flow ${i}` })).body.flow.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { flows: Array<{ id: string }>; nextCursor: string | null } } = await request(
        'GET',
        `${t.api}/flows?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        { token: carol.accessToken },
      );
      expect(page.status).toBe(200);
      expect(page.body.flows.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.flows.map((f) => f.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const bad = await request('GET', `${t.api}/flows?cursor=bm9wZQ`, { token: carol.accessToken });
    expect({ status: bad.status, code: bad.body.error.code }).toEqual({ status: 400, code: 'invalid_cursor' });
    expect((await request('GET', `${t.api}/flows?limit=201`, { token: carol.accessToken })).status).toBe(400);
  });

  describe('bad definitions are a 400 naming the path of the problem', () => {
    const many = Array.from({ length: 51 }, (_, i) => ({ id: `n${i}`, prompt: 'Say hi' }));
    const cases: Array<[string, unknown, string, string?]> = [
      ['an unknown type', { ...chatflow(), type: 'workflow' }, 'type'],
      ['a chatflow without systemPrompt', { type: 'chatflow', name: 'x', definition: {} }, 'definition.systemPrompt'],
      ['a historyWindow of 0', chatflow({ historyWindow: 0 }), 'definition.historyWindow'],
      ['a historyWindow of 101', chatflow({ historyWindow: 101 }), 'definition.historyWindow'],
      ['an unknown field', chatflow({ tools: [] }), 'definition'],
      ['a chatflow model not configured', chatflow({ model: { provider: 'openai', model: 'gpt-9' } }), 'definition.model', 'unknown_model'],
      ['no nodes', agentflow([], 'a'), 'definition.nodes'],
      ['51 nodes', agentflow(many, 'n0'), 'definition.nodes'],
      [
        'a duplicate id',
        agentflow(
          [
            { id: 'a', prompt: 'x' },
            { id: 'a', prompt: 'y' },
          ],
          'a',
        ),
        'definition.nodes.1.id',
      ],
      ['an id with a space', agentflow([{ id: 'a b', prompt: 'x' }], 'a b'), 'definition.nodes.0.id'],
      ['dependsOn an unknown node', agentflow([{ id: 'a', prompt: 'x', dependsOn: ['zz'] }], 'a'), 'definition.nodes.0.dependsOn.0'],
      ['output naming no node', agentflow([{ id: 'a', prompt: 'x' }], 'b'), 'definition.output'],
      ['a node depending on itself', agentflow([{ id: 'a', prompt: 'x', dependsOn: ['a'] }], 'a'), 'definition.nodes.0.dependsOn.0'],
      [
        'a cycle',
        agentflow(
          [
            { id: 'a', prompt: 'x', dependsOn: ['c'] },
            { id: 'b', prompt: 'x', dependsOn: ['a'] },
            { id: 'c', prompt: 'x', dependsOn: ['b'] },
          ],
          'c',
        ),
        'definition.nodes.0.dependsOn',
      ],
      ['a prompt of 8,001 characters', agentflow([{ id: 'a', prompt: 'x'.repeat(8_001) }], 'a'), 'definition.nodes.0.prompt'],
      [
        'a template reading a node that is not an ancestor',
        agentflow(
          [
            { id: 'a', prompt: 'x' },
            { id: 'b', prompt: 'use {{nodes.a.output}}' },
          ],
          'b',
        ),
        'definition.nodes.1.prompt',
      ],
      [
        'a template reading a node that does not exist',
        agentflow([{ id: 'a', prompt: 'use {{nodes.ghost.output}}' }], 'a'),
        'definition.nodes.0.prompt',
      ],
      ['an unknown template expression', agentflow([{ id: 'a', prompt: 'use {{env.SECRET}}' }], 'a'), 'definition.nodes.0.prompt'],
      [
        'an outputSchema that is no JSON Schema',
        agentflow([{ id: 'a', prompt: 'x', outputSchema: { type: 'bogus' } }], 'a'),
        'definition.nodes.0.outputSchema',
      ],
      [
        'a node model not configured',
        agentflow([{ id: 'a', prompt: 'x', model: { provider: 'scripted', model: 'other' } }], 'a'),
        'definition.nodes.0.model',
        'unknown_model',
      ],
    ];
    test.each(cases)('%s', async (_what, body, path, code = 'validation_failed') => {
      const res = await post(ada, body);
      expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status: 400, code });
      expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    });

    test('a PATCH with a bad definition changes nothing', async () => {
      const { body } = await post(ada, agentflow(threeNodes));
      const res = await request('PATCH', `${t.api}/flows/${body.flow.id}`, {
        token: ada.accessToken,
        body: { definition: { nodes: [{ id: 'a', prompt: 'x', dependsOn: ['a'] }], output: 'a' } },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.details[0].path).toBe('definition.nodes.0.dependsOn.0');
      const after = await request('GET', `${t.api}/flows/${body.flow.id}`, { token: ada.accessToken });
      expect(after.body.flow.definition).toEqual(body.flow.definition);
    });
  });

  test('lone surrogates, NUL and huge bodies are a 4xx, never a 500, and store nothing', async () => {
    const dan = await registerUser(t.api, 'Dan');
    const raw = (text: string) => request('POST', `${t.api}/flows`, { token: dan.accessToken, rawBody: text });
    const surrogate = await raw('{"type":"chatflow","name":"bad \\ud800 name","definition":{"systemPrompt":"hi"}}');
    expect(surrogate.status).toBe(400);
    const nul = await raw('{"type":"agentflow","name":"n","definition":{"nodes":[{"id":"a","prompt":"x\\u0000y"}],"output":"a"}}');
    expect(nul.status).toBe(400);
    const surrogateKey = await raw(
      '{"type":"agentflow","name":"n","definition":{"nodes":[{"id":"a","prompt":"x","outputSchema":{"\\udc00":1}}],"output":"a"}}',
    );
    expect(surrogateKey.status).toBe(400);
    const huge = await post(dan, chatflow({ systemPrompt: 'x'.repeat(1_100_000) }));
    expect(huge.status).toBe(413);
    const deep = await raw(
      `{"type":"agentflow","name":"n","definition":{"nodes":[{"id":"a","prompt":"x","outputSchema":${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}}],"output":"a"}}`,
    );
    expect(deep.status).toBeGreaterThanOrEqual(400);
    expect(deep.status).toBeLessThan(500);
    const notJson = await raw('{"type":');
    expect(notJson.status).toBe(400);
    const list = await request('GET', `${t.api}/flows`, { token: dan.accessToken });
    expect(list.body).toEqual({ flows: [], nextCursor: null });
  });
});

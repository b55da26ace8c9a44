import { createSwitchboardClient } from '../../packages/client/src/index';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * `GET /evaluations?flowId=`: the evaluations of one flow (what a flow's page lists), in pages,
 * newest first; another user's flow lists none, a malformed id is a 400. The SDK's
 * `evaluations.list({flowId})` sends it.
 */
describe('evaluations listed by flow', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ responder: () => ({ text: 'an answer' }) });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  });
  afterAll(async () => {
    await t.stop();
  });

  const post = (user: TestUser, path: string, body: unknown) => request('POST', `${t.api}${path}`, { token: user.accessToken, body });
  const get = (user: TestUser, path: string) => request('GET', `${t.api}${path}`, { token: user.accessToken });
  const flow = async (user: TestUser, name: string) => {
    const res = await post(user, '/flows', {
      type: 'agentflow',
      name,
      definition: { nodes: [{ id: 'a', prompt: 'Say {{input.word}}' }], output: 'a' },
    });
    expect(res.status).toBe(201);
    return res.body.flow.id as string;
  };
  const evaluate = async (user: TestUser, flowId: string, datasetId: string) => {
    const res = await post(user, '/evaluations', { flowId, datasetId, versions: [1], scorers: [{ type: 'contains', value: 'answer' }] });
    expect(res.status).toBe(202);
    const id = res.body.evaluation.id as string;
    await eventually(
      () => get(user, `/evaluations/${id}`),
      (r) => r.body.evaluation.status !== 'running',
      30_000,
    );
    return id;
  };

  test('lists only the named flow’s evaluations, newest first and in pages; never another user’s', async () => {
    const [first, second] = [await flow(ada, 'First'), await flow(ada, 'Second')];
    const dataset = await post(ada, '/evaluations/datasets', { name: 'Words', csv: 'word,expected\nhello,answer\n' });
    expect(dataset.status).toBe(201);
    const a1 = await evaluate(ada, first, dataset.body.dataset.id);
    const b1 = await evaluate(ada, second, dataset.body.dataset.id);
    const a2 = await evaluate(ada, first, dataset.body.dataset.id);

    const all = await get(ada, '/evaluations');
    expect(all.body.evaluations.map((e: { id: string }) => e.id)).toEqual([a2, b1, a1]);
    const page1 = await get(ada, `/evaluations?flowId=${first}&limit=1`);
    expect(page1.status).toBe(200);
    expect(page1.body.evaluations.map((e: { id: string }) => e.id)).toEqual([a2]);
    const page2 = await get(ada, `/evaluations?flowId=${first}&limit=1&cursor=${encodeURIComponent(page1.body.nextCursor)}`);
    expect(page2.body.evaluations.map((e: { id: string }) => e.id)).toEqual([a1]);
    expect(page2.body.nextCursor).toBeNull();
    expect((await get(ada, `/evaluations?flowId=${second}`)).body.evaluations.map((e: { id: string }) => e.id)).toEqual([b1]);

    // Bob names Ada's flow: nothing of hers.
    const bobs = await get(bob, `/evaluations?flowId=${first}`);
    expect(bobs.status).toBe(200);
    expect(bobs.body.evaluations).toEqual([]);

    // A malformed id is refused, naming the field.
    const bad = await get(ada, '/evaluations?flowId=not-a-uuid');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body.error)).toContain('flowId');

    // The SDK sends it.
    const sdk = createSwitchboardClient({ baseUrl: t.url, accessToken: ada.accessToken });
    const listed = await sdk.evaluations.list({ flowId: second, limit: 5 });
    expect(listed.evaluations.map((e) => e.id)).toEqual([b1]);
  }, 90_000);
});

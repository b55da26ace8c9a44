import { AdminDirectory } from '../../src/auth/admins';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** `GET /api/v1/metrics/json`, prom-client's JSON form, for admins with the dashboard's credentials. */
describe('GET /api/v1/metrics/json', () => {
  let t: TestApp;
  let admin: TestUser;
  let user: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ env: { ADMIN_USER: 'ops', ADMIN_PASSWORD: 'ops-password' } });
    user = await registerUser(t.api, 'Plain');
    admin = await registerUser(t.api, 'Boss');
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
  });

  afterAll(() => t.stop());

  const get = (authorization?: string) => request('GET', `${t.api}/metrics/json`, { headers: authorization ? { authorization } : {} });

  test('HTTP Basic with the dashboard credentials gets every metric as [{name, help, type, values: [{labels, value}]}]', async () => {
    // Given: one counted request before the read
    await request('GET', `${t.url}/healthz`);

    const res = await get(basic('ops', 'ops-password'));

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(Array.isArray(res.body)).toBe(true);
    for (const metric of res.body) {
      expect(metric).toEqual({
        name: expect.stringMatching(/^switchboard_/),
        help: expect.any(String),
        type: expect.stringMatching(/^(counter|gauge|histogram|summary)$/),
        values: expect.any(Array),
      });
    }
    const byName = new Map<string, any>(res.body.map((metric: any) => [metric.name, metric]));
    expect(byName.get('switchboard_flow_executions_total')).toMatchObject({ type: 'counter', values: [] });
    expect(byName.get('switchboard_flow_node_seconds')).toMatchObject({ type: 'histogram' });
    const requests = byName.get('switchboard_http_requests_total');
    expect(requests.values).toEqual(
      expect.arrayContaining([{ labels: { method: 'GET', route: '/healthz', status: '200' }, value: expect.any(Number) }]),
    );
  });

  test("an admin's Bearer token opens it too; a plain user's is 403, no credentials 401, a wrong password 403", async () => {
    const asAdmin = await get(`Bearer ${admin.accessToken}`);
    const asUser = await get(`Bearer ${user.accessToken}`);
    const anonymous = await get();
    const wrong = await get(basic('ops', 'not-the-password'));

    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body.length).toBeGreaterThan(5);
    expect(asUser.status).toBe(403);
    expect(asUser.body.error.code).toBe('forbidden');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('unauthorized');
    expect(wrong.status).toBe(403);
  });
});

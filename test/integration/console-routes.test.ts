import { randomBytes } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { AI_AGENT_USER_ID } from '../../config';
import { AdminDirectory, OPERATOR_ACTOR_ID } from '../../src/auth/admins';
import { startTestApp, type TestApp } from '../support/app';
import { startFakeGoogle, type FakeGoogle } from '../support/fake-google';
import { startFakeMicrosoft, type FakeMicrosoft } from '../support/fake-microsoft';
import { registerUser, request, type TestUser } from '../support/http';
import { providerEnv } from '../support/provider-env';
import { eventually } from '../support/wait';

/**
 * The routes the console's pages needed: admins list and search users, a user lists their devices
 * (online now, or named by a local agent), disconnects a cloud agent's account, and a browser that
 * finishes an OAuth consent lands back on the console.
 */
describe('console routes: users for admins, devices, disconnect, OAuth back to the console', () => {
  let t: TestApp;
  let google: FakeGoogle;
  let microsoft: FakeMicrosoft;
  let admin: TestUser;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    [google, microsoft] = await Promise.all([startFakeGoogle(), startFakeMicrosoft()]);
    t = await startTestApp({ env: { OAUTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ...providerEnv(google, microsoft) } });
    admin = await registerUser(t.api, 'Admin');
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
  });
  afterEach(() => {
    for (const device of devices.splice(0)) device.close();
  });
  afterAll(async () => {
    await t.stop();
    await Promise.all([google.close(), microsoft.close()]);
  });

  const get = (path: string, user: TestUser, headers?: Record<string, string>) =>
    request('GET', `${t.api}${path}`, { token: user.accessToken, headers });

  describe('GET /admin/users', () => {
    test('an admin searches by part of an email or name, in any case, and pages through newest first', async () => {
      const tag = randomBytes(4).toString('hex');
      const made: TestUser[] = [];
      for (const name of ['Ann', 'Bob', 'Cid']) made.push(await registerUser(t.api, `${name}${tag}`));

      const byName = await get(`/admin/users?q=${tag.toUpperCase()}`, admin);
      expect(byName.status).toBe(200);
      expect(byName.body.users.map((u: { id: string }) => u.id)).toEqual(made.map((u) => u.id).reverse());
      expect(byName.body.users[0]).toEqual({
        id: made[2].id,
        email: made[2].email,
        name: made[2].name,
        tier: 'free',
        admin: false,
        createdAt: expect.any(String),
      });

      const first = await get(`/admin/users?q=${tag}&limit=2`, admin);
      expect(first.body.users).toHaveLength(2);
      const second = await get(`/admin/users?q=${tag}&limit=2&cursor=${first.body.nextCursor}`, admin);
      expect(second.body).toEqual({ users: [expect.objectContaining({ id: made[0].id })], nextCursor: null });

      // `%` and `_` are plain characters, not wildcards.
      expect((await get(`/admin/users?q=${encodeURIComponent('%')}`, admin)).body.users).toEqual([]);
      const self = await get(`/admin/users?q=${encodeURIComponent(admin.email)}`, admin);
      expect(self.body.users).toEqual([expect.objectContaining({ id: admin.id, admin: true })]);
    });

    test('service accounts are not people: never listed', async () => {
      // The operator row exists once an operator acted (this grant, through the CLI's path).
      const ids = (await get('/admin/users?limit=200', admin)).body.users.map((u: { id: string }) => u.id);
      expect(ids).toContain(admin.id);
      expect(ids).not.toContain(AI_AGENT_USER_ID);
      expect(ids).not.toContain(OPERATOR_ACTOR_ID);
    });

    test('a non-admin, and an admin with an API key, get 403; a bad query is 400', async () => {
      const plain = await registerUser(t.api, 'Plain');
      const denied = await get('/admin/users', plain);
      expect(denied.status).toBe(403);
      expect(denied.body.error.code).toBe('forbidden');
      const key = await request('POST', `${t.api}/api-keys`, { token: admin.accessToken, body: { name: 'admin key' } });
      expect((await request('GET', `${t.api}/admin/users`, { headers: { 'x-api-key': key.body.secret } })).status).toBe(403);
      expect((await get('/admin/users?limit=0', admin)).status).toBe(400);
      expect((await get('/admin/users?cursor=nope', admin)).body.error.code).toBe('invalid_cursor');
      expect((await get(`/admin/users?q=${'x'.repeat(201)}`, admin)).status).toBe(400);
      // A NUL is refused, never a 500.
      for (const q of ['%00', 'a%00b']) {
        const bad = await get(`/admin/users?q=${q}`, admin);
        expect(bad.status).toBe(400);
        expect(bad.body.error.code).toEqual(expect.any(String));
      }
    });
  });

  describe('GET /devices', () => {
    test('online devices with their hello, then offline ones named by local agents; never another user’s', async () => {
      const user = await registerUser(t.api, 'Devices');
      const other = await registerUser(t.api, 'Other');
      const agent = await request('POST', `${t.api}/agents/local`, {
        token: user.accessToken,
        body: {
          name: 'Notes',
          deviceId: 'desk',
          directoryPaths: ['/home/me/notes'],
          dataTypes: ['notes'],
          promptTemplate: 'Extract the notes.',
          fileExtensions: ['.md'],
        },
      });
      expect(agent.status).toBe(201);
      expect((await get('/devices', user)).body).toEqual({
        devices: [
          {
            deviceId: 'desk',
            online: false,
            connectedAt: null,
            agentIds: [],
            agents: [{ id: agent.body.id, name: 'Notes' }],
            project: null,
          },
        ],
      });

      devices.push(await DeviceSimulator.connect({ url: t.url, accessToken: user.accessToken, deviceId: 'laptop', reconnection: false }));
      const listed = await eventually(
        async () => (await get('/devices', user)).body.devices as Array<Record<string, unknown>>,
        (list) => list.length === 2,
      );
      expect(listed).toEqual([
        { deviceId: 'laptop', online: true, connectedAt: expect.any(String), agentIds: [], agents: [], project: null },
        expect.objectContaining({ deviceId: 'desk', online: false }),
      ]);
      expect((await get('/devices', other)).body).toEqual({ devices: [] });

      devices.pop()!.close();
      await eventually(
        async () => (await get('/devices', user)).body.devices as Array<{ deviceId: string }>,
        (list) => list.length === 1 && list[0].deviceId === 'desk',
      );
    });
  });

  /** Starts the consent for a new Gmail agent; answers the agent, the browser's cookie and the callback URL the provider would send. */
  async function consent(user: TestUser) {
    const created = await request('POST', `${t.api}/agents/cloud`, {
      token: user.accessToken,
      body: { provider: 'gmail', name: 'Inbox', dataTypes: ['tasks'], promptTemplate: 'Extract tasks.' },
    });
    const authorize = await get(`/oauth/gmail/authorize?agentId=${created.body.id}`, user);
    const url = new URL(authorize.body.url);
    const redirectUri = url.searchParams.get('redirect_uri')!;
    const cookie = authorize.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ');
    const code = google.issueCode({ redirectUri });
    const callback = `${t.api}/oauth/gmail/callback?code=${code}&state=${encodeURIComponent(url.searchParams.get('state')!)}`;
    return { agentId: created.body.id as string, cookie, callback };
  }

  test('a browser finishing the consent is sent back to the console’s agents page; a failed one with the error code', async () => {
    const user = await registerUser(t.api, 'Browser');
    const { agentId, cookie, callback } = await consent(user);
    const html = { cookie, accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
    const back = await fetch(callback, { headers: html, redirect: 'manual' });
    expect(back.status).toBe(303);
    expect(back.headers.get('location')).toBe(`/#/agents?connected=gmail&agentId=${agentId}`);
    expect((await get(`/agents/cloud/${agentId}`, user)).body.connected).toBe(true);

    // The same URL again: the state was used; the browser hears so on the console, not as JSON.
    const replay = await fetch(callback, { headers: html, redirect: 'manual' });
    expect(replay.status).toBe(303);
    expect(replay.headers.get('location')).toBe('/#/agents?oauthError=invalid_state');
    // A program still gets JSON.
    const json = await request('GET', callback, { headers: { cookie } });
    expect(json.status).toBe(400);
    expect(json.body.error.code).toBe('invalid_state');
  });

  test('disconnect: the agent keeps its settings, answers connected false, cannot run, and its sealed tokens are gone', async () => {
    const user = await registerUser(t.api, 'Disconnect');
    const other = await registerUser(t.api, 'Stranger');
    const { agentId, cookie, callback } = await consent(user);
    expect((await request('GET', callback, { headers: { cookie } })).status).toBe(200);
    expect(await t.app.repos.agents.credentialCiphertexts(user.id)).toHaveLength(1);

    expect((await request('DELETE', `${t.api}/agents/cloud/${agentId}/connection`, { token: other.accessToken })).status).toBe(404);
    const gone = await request('DELETE', `${t.api}/agents/cloud/${agentId}/connection`, { token: user.accessToken });
    expect(gone.status).toBe(200);
    expect(gone.body).toMatchObject({ id: agentId, name: 'Inbox', connected: false, status: 'active' });
    expect(await t.app.repos.agents.credentialCiphertexts(user.id)).toEqual([]);
    const run = await request('POST', `${t.api}/agents/${agentId}/run`, { token: user.accessToken });
    expect(run.status).toBe(409);
    expect(run.body.error.code).toBe('not_connected');
    // Again: nothing to disconnect, same answer.
    expect((await request('DELETE', `${t.api}/agents/cloud/${agentId}/connection`, { token: user.accessToken })).body.connected).toBe(
      false,
    );
    expect((await request('DELETE', `${t.api}/agents/cloud/not-a-uuid/connection`, { token: user.accessToken })).status).toBe(404);
  });
});

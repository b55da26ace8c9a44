import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { Client } from 'pg';
import { loadConfig } from '../../config';
import { runSwitchboardCli } from '../support/cli';
import { createTestDatabase, serverPostgresUrl, testRedisEnv, type TestDatabase } from '../support/database';
import { request, type TestUser } from '../support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../support/processes';

/**
 * Admin rights never follow from an email a stranger can register; an operator grants
 * them (`switchboard admin grant`, or ADMIN_USER_IDS), and every grant is audited. Black box: the
 * API and the CLI run as their own processes on one PostgreSQL database.
 */
const JWT_SECRET = 'admin-test-secret-admin-test-secret-0123456789';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('admin rights come from an operator, never from an email', () => {
  let database: TestDatabase;
  let server: SwitchboardProcess | undefined;
  let env: Record<string, string>;
  let api: string;
  const tag = randomUUID().slice(0, 8);
  const opsEmail = `ops-${tag}@corp.example`;
  const rootEmail = `root-${tag}@corp.example`;

  const start = async (extra: Record<string, string> = {}) => {
    server = await spawnSwitchboard({ ...env, ...extra });
    api = `${server.url}/api/v1`;
  };
  const register = async (email: string, name: string): Promise<TestUser> => {
    const res = await request('POST', `${api}/auth/register`, { body: { email, password: 'correct horse battery', name } });
    expect(res.status).toBe(201);
    return { ...res.body.user, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
  };
  /** What an admin can reach with a Bearer token: the dashboard's API, everyone's usage, /me's flag. */
  const adminView = async (user: TestUser) => ({
    dashboard: (await request('GET', `${server!.url}/admin/queues/api/queues`, { token: user.accessToken })).status,
    scope: (await request('GET', `${api}/metrics/summary`, { token: user.accessToken })).body.scope,
    me: (await request('GET', `${api}/me`, { token: user.accessToken })).body.user.admin,
  });
  const NOTHING = { dashboard: 403, scope: 'user', me: false };
  const EVERYTHING = { dashboard: 200, scope: 'all', me: true };
  const auditRows = async (userId: string) => {
    const client = new Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query(
        `select action, actor_id, details from system_audit where target_id = $1 and action like 'admin.%' order by created_at`,
        [userId],
      );
      return rows as Array<{ action: string; actor_id: string; details: Record<string, string> }>;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    env = {
      SWITCHBOARD_ROLES: 'api',
      PORT: '0',
      DATABASE_URL: database.url,
      ...testRedisEnv(),
      REDIS_KEY_PREFIX: `admin-${tag}`,
      JWT_SECRET,
      ADMIN_USER: 'ops',
      ADMIN_PASSWORD: 'ops-dashboard-password',
      // The old setting: its emails must grant nothing, whoever registers them.
      ADMIN_EMAILS: `${opsEmail},${rootEmail}`,
    };
    await start();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  test('ADMIN_EMAILS is ignored with a warning at start', () => {
    expect(server!.output()).toContain('ADMIN_EMAILS is ignored');
  });

  test('a case variant of a listed email, and a listed email registered first by a stranger, get nothing', async () => {
    const caseVariant = await register(opsEmail.toUpperCase(), 'Mallory');
    const registeredFirst = await register(rootEmail, 'Eve');
    expect(await adminView(caseVariant)).toEqual(NOTHING);
    expect(await adminView(registeredFirst)).toEqual(NOTHING);
    expect((await request('GET', `${server!.url}/admin/queues`, { token: registeredFirst.accessToken })).status).toBe(403);
  });

  test('a validly signed token claiming role admin grants nothing: rights are read from the database', async () => {
    const user = await register(`claim-${tag}@example.test`, 'Claimer');
    const forged = await new SignJWT({ email: user.email, name: user.name, tier: 'free', role: 'admin' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.id)
      .setIssuer('switchboard')
      .setAudience('switchboard-api')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JWT_SECRET));
    expect(await adminView({ ...user, accessToken: forged })).toEqual(NOTHING);
  });

  test('switchboard admin grant gives rights to the named user at once, audited; revoke takes them away, audited', async () => {
    const boss = await register(`boss-${tag}@example.test`, 'Boss');
    const bystander = await register(`bystander-${tag}@example.test`, 'Bystander');
    expect(await adminView(boss)).toEqual(NOTHING);

    const granted = await runSwitchboardCli(['admin', 'grant', boss.email], env);
    expect(granted).toMatchObject({ code: 0 });
    expect(granted.stdout).toContain(`Granted admin rights to ${boss.email} (id ${boss.id}`);
    // The token issued before the grant works at once: the check reads the database, not the claim.
    expect(await adminView(boss)).toEqual(EVERYTHING);
    expect(await adminView(bystander)).toEqual(NOTHING);
    // HTTP Basic for the dashboard is unchanged.
    expect(
      (await request('GET', `${server!.url}/admin/queues`, { headers: { authorization: basic('ops', 'ops-dashboard-password') } })).status,
    ).toBe(200);

    const again = await runSwitchboardCli(['admin', 'grant', boss.email], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already is an admin');

    const revoked = await runSwitchboardCli(['admin', 'revoke', boss.id], env);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`Revoked admin rights of ${boss.email}`);
    expect(await adminView(boss)).toEqual(NOTHING);
    // A fresh login after the revoke carries no rights either.
    const login = await request('POST', `${api}/auth/login`, { body: { email: boss.email, password: 'correct horse battery' } });
    expect(await adminView({ ...boss, accessToken: login.body.accessToken })).toEqual(NOTHING);

    const rows = await auditRows(boss.id);
    expect(rows.map((row) => row.action)).toEqual(['admin.granted', 'admin.revoked']);
    for (const row of rows) {
      expect(row.actor_id).toBe('00000000-0000-4000-8000-0000000000b0');
      expect(row.details).toMatchObject({ via: 'cli', email: boss.email });
    }
    expect(await auditRows(bystander.id)).toEqual([]);
  }, 90_000);

  test('a grant for nobody fails, writes nothing and never creates the account', async () => {
    const ghost = `ghost-${tag}@corp.example`;
    const result = await runSwitchboardCli(['admin', 'grant', ghost], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`No user ${ghost}`);
    // Registering the email afterwards gives nothing: the grant was not remembered for later.
    expect(await adminView(await register(ghost, 'Ghost'))).toEqual(NOTHING);
    // Service accounts (the AI agent) cannot be made admins.
    const service = await runSwitchboardCli(['admin', 'grant', '00000000-0000-4000-8000-0000000000a1'], env);
    expect(service.code).toBe(1);
    expect(service.stderr).toContain('service account');
  }, 60_000);

  test('ADMIN_USER_IDS grants by user id, audited once per id however often the API starts', async () => {
    const named = await register(`named-${tag}@example.test`, 'Named');
    const other = await register(`other-${tag}@example.test`, 'Other');
    const unknownId = randomUUID();
    await server!.stop();
    await start({ ADMIN_USER_IDS: `${named.id},${unknownId}` });
    expect(server!.output()).toContain('ADMIN_USER_IDS names no user');
    expect(await adminView(named)).toEqual(EVERYTHING);
    expect(await adminView(other)).toEqual(NOTHING);
    await server!.stop();
    await start({ ADMIN_USER_IDS: named.id });
    expect(await adminView(named)).toEqual(EVERYTHING);
    expect((await auditRows(named.id)).map((row) => [row.action, row.details.via])).toEqual([['admin.granted', 'env']]);
    // Taken out of the variable, the rights are gone at the next start.
    await server!.stop();
    await start();
    expect(await adminView(named)).toEqual(NOTHING);
  }, 120_000);

  test('ADMIN_USER_IDS holds user ids only: an email there is a configuration error', () => {
    expect(() => loadConfig({ ADMIN_USER_IDS: 'ops@corp.example' })).toThrow(/ADMIN_USER_IDS/);
  });
});

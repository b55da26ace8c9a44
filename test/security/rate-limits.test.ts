import { io, type Socket } from 'socket.io-client';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type JsonResponse, type TestUser } from '../support/http';

/**
 * Abuse and cost: login per IP and per account (backoff, then 429 with
 * Retry-After), registration per IP, and every endpoint that costs a model call, an embedding or a
 * device round trip per user and tier (config/tiers.ts), HTTP and sockets counted together.
 */
const PASSWORD = 'correct horse battery';

function expectLimited(res: JsonResponse) {
  expect(res.status).toBe(429);
  expect(res.body.error.code).toBe('rate_limited');
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
}

const login = (t: TestApp, email: string, password: string) => request('POST', `${t.api}/auth/login`, { body: { email, password } });
const emailFor = (tag: string) => `${tag}-${Math.random().toString(36).slice(2, 10)}@example.test`;
const register = (t: TestApp, tag: string, email = emailFor(tag)) =>
  request('POST', `${t.api}/auth/register`, { body: { email, password: PASSWORD, name: tag } });

describe('security: login backoff per account (defaults)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  }, 120_000);
  afterAll(async () => {
    await t.stop();
  }, 60_000);

  test('after 5 wrong passwords the account backs off: even the right password is 429 with Retry-After; other accounts are untouched', async () => {
    const victim = await registerUser(t.api, 'Victim');
    const bystander = await registerUser(t.api, 'Bystander');

    const wrong: number[] = [];
    for (let i = 0; i < 5; i++) wrong.push((await login(t, victim.email, `guess ${i}`)).status);
    const sixth = await login(t, victim.email, 'guess 6');
    const right = await login(t, victim.email.toUpperCase(), PASSWORD);

    expect(wrong).toEqual([401, 401, 401, 401, 401]);
    expectLimited(sixth);
    expectLimited(right);
    expect(Number(right.headers.get('retry-after'))).toBeLessThanOrEqual(30);
    expect((await login(t, bystander.email, PASSWORD)).status).toBe(200);
  });

  test('a successful login clears the run of failures', async () => {
    const user = await registerUser(t.api, 'Forgetful');
    for (let i = 0; i < 4; i++) expect((await login(t, user.email, `typo ${i}`)).status).toBe(401);
    expect((await login(t, user.email, PASSWORD)).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await login(t, user.email, `typo again ${i}`)).status).toBe(401);
    expect((await login(t, user.email, PASSWORD)).status).toBe(200);
  });
});

describe('security: login and registration per IP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { LOGIN_ATTEMPTS_PER_IP_PER_MINUTE: '6', REGISTRATIONS_PER_IP_PER_HOUR: '3' } });
  }, 120_000);
  afterAll(async () => {
    await t.stop();
  }, 60_000);

  test('registration: the 4th in an hour from one IP is 429 with Retry-After and creates nothing; bad input is still a 400', async () => {
    const made = [await register(t, 'ip-a'), await register(t, 'ip-b'), await register(t, 'ip-c')];
    const refusedEmail = emailFor('ip-d');
    const fourth = await register(t, 'ip-d', refusedEmail);

    expect(made.map((res) => res.status)).toEqual([201, 201, 201]);
    expectLimited(fourth);
    expect(Number(fourth.headers.get('retry-after'))).toBeGreaterThan(60);
    expect(await t.app.repos.users.findByEmail(refusedEmail)).toBeNull();
    expect((await request('POST', `${t.api}/auth/register`, { body: { email: 'x' } })).status).toBe(400);
  });

  test('login: past 6 attempts a minute from one IP (spread over many accounts) every attempt is 429', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await login(t, `nobody-${i}@example.test`, 'guess')).status);
    const seventh = await login(t, 'nobody-7@example.test', 'guess');

    expect(statuses).toEqual([401, 401, 401, 401, 401, 401]);
    expectLimited(seventh);
  });
});

describe('security: per-user tier limits on paid work', () => {
  let t: TestApp;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    t = await startTestApp({
      responder: () => ({ text: 'ok' }),
      env: {
        TIER_LIMITS: JSON.stringify({ free: { chatPerMinute: 3, embeddingsPerMinute: 3, journeyPerMinute: 2, agentRunsPerMinute: 2 } }),
      },
    });
  }, 120_000);
  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await t.stop();
  }, 60_000);

  const post = (user: TestUser, path: string, body?: unknown) => request('POST', `${t.api}${path}`, { token: user.accessToken, body });

  test('chat: POST /chat, /chat/stream and the socket chat_request share one window; past it each answers rate_limited; another user is unaffected', async () => {
    const user = await registerUser(t.api, 'Chatty');
    const other = await registerUser(t.api, 'Quiet');
    const device: Socket = io(`${t.url}/device`, {
      auth: { token: user.accessToken, deviceId: 'laptop-rl' },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    sockets.push(device);
    await new Promise<void>((resolve, reject) => (device.once('connect', () => resolve()), device.once('connect_error', reject)));

    const first = await post(user, '/chat', { message: 'one' });
    const stream = await post(user, '/chat/stream', { message: 'two' });
    const viaSocket = await device.timeout(10_000).emitWithAck('chat_request', { message: 'three' });
    const overHttp = await post(user, '/chat', { message: 'four' });
    const overStream = await post(user, '/chat/stream', { message: 'five' });
    const overSocket = await device.timeout(10_000).emitWithAck('chat_request', { message: 'six' });

    expect(first.status).toBe(200);
    expect(stream.status).toBe(200);
    expect(viaSocket).toEqual({ sessionId: expect.any(String), messageId: expect.any(String) });
    expectLimited(overHttp);
    expectLimited(overStream);
    expect(overSocket).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
    expect((await post(other, '/chat', { message: 'mine' })).status).toBe(200);
  });

  test('embeddings: the 4th POST /storage/vectors/embed in a minute is 429', async () => {
    const user = await registerUser(t.api, 'Embedder');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(user, '/storage/vectors/embed', { text: `note ${i}` })).status);

    expect(statuses).toEqual([200, 200, 200]);
    expectLimited(await post(user, '/storage/vectors/embed', { text: 'one too many' }));
  });

  test('journey: start and message count together; the 3rd turn is 429', async () => {
    const user = await registerUser(t.api, 'Journeyer');
    const started = await post(user, '/agents/journey/start', { agentType: 'local', dataTypes: ['tasks'] });
    expect(started.status).toBe(201);
    const answered = await post(user, '/agents/journey/message', { sessionId: started.body.sessionId, message: 'My notes folder' });
    expect(answered.status).not.toBe(429);

    expectLimited(await post(user, '/agents/journey/message', { sessionId: started.body.sessionId, message: 'again' }));
    expectLimited(await post(user, '/agents/journey/start', { agentType: 'local', dataTypes: ['tasks'] }));
  });

  test('manual agent runs: the 3rd POST /agents/:id/run in a minute is 429', async () => {
    const user = await registerUser(t.api, 'Runner');
    const agent = await post(user, '/agents/local', {
      name: 'Inbox folder',
      deviceId: 'laptop',
      directoryPaths: ['/Users/ana/Notes'],
      dataTypes: ['tasks'],
      promptTemplate: 'Extract tasks. Lines starting with TODO or Action: are tasks.',
      fileExtensions: ['.txt', '.md'],
    });
    expect(agent.status).toBe(201);

    const runs = [(await post(user, `/agents/${agent.body.id}/run`)).status, (await post(user, `/agents/${agent.body.id}/run`)).status];

    expect(runs).toEqual([202, 202]);
    expectLimited(await post(user, `/agents/${agent.body.id}/run`));
  });
});

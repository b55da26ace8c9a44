import { useCluster } from '../support/cluster';
import { startFakeConnectWise, type FakeConnectWise } from '../support/fake-connectwise';
import { registerUser, request } from '../support/http';
import { eventually } from '../support/wait';

/**
 * kill -9 of the workers while a PSA push waits on the PSA: BullMQ hands the stalled push job to a
 * fresh worker, which posts the note, and the session ends `sent` instead of staying
 * `pending_retry` for ever.
 */
describe('PSA push after its worker died', () => {
  const cluster = useCluster('psa-crash', { WORKER_LOCK_MS: '2000', DEMO_LLM_DELAY_MS: '5', LOG_LEVEL: 'info' });
  let cw: FakeConnectWise;

  beforeAll(async () => {
    cw = await startFakeConnectWise({ companyId: 'crash_msp', publicKey: 'pub', privateKey: 'priv' });
    cw.tickets.add(77);
  });
  afterAll(async () => {
    await cw.close();
  });

  test('the stalled push is run again by a fresh worker and the note reaches the ticket once', async () => {
    const env = { PSA_PRIVATE_ORIGINS: cw.url };
    const [api, workerA, workerB] = await Promise.all([
      cluster.spawn({ ...env, SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ ...env, SWITCHBOARD_ROLES: 'worker' }),
      cluster.spawn({ ...env, SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'PsaCrash');
    const connected = await request('PUT', `${base}/psa/connection`, {
      token: user.accessToken,
      body: { provider: 'connectwise', baseUrl: cw.apiRoot, companyId: 'crash_msp', publicKey: 'pub', privateKey: 'priv' },
    });
    expect(connected.status).toBe(200);
    const chat = await request('POST', `${base}/chat`, {
      token: user.accessToken,
      body: { message: 'The label printer prints blank labels.', tools: 'none' },
    });
    expect(chat.status).toBe(200);
    const sessionId = chat.body.sessionId as string;

    const held = cw.holdNotes();
    const resolved = await request('POST', `${base}/chat/sessions/${sessionId}/resolve`, {
      token: user.accessToken,
      body: { psaTicketId: '77' },
    });
    expect(resolved.body.psaPushStatus).toBe('pending_retry');
    // The push is waiting on the PSA: kill both workers, start a fresh one, then let the PSA answer.
    await eventually(
      async () => cw.requests.filter((r) => r.method === 'POST').length,
      (posts) => posts === 1,
      30_000,
    );
    workerA.child.kill('SIGKILL');
    workerB.child.kill('SIGKILL');
    await cluster.spawn({ ...env, SWITCHBOARD_ROLES: 'worker' });
    held.release();

    const session = await eventually(
      async () => (await request('GET', `${base}/chat/sessions/${sessionId}`, { token: user.accessToken })).body.session,
      (s) => s.psaPushStatus === 'sent' || s.psaPushStatus === 'failed',
      45_000,
    );
    expect(session.psaPushStatus).toBe('sent');
    expect(cw.notes.filter((note) => note.ticketId === 77)).toHaveLength(1);
    expect(cw.requests.filter((r) => r.method === 'POST').length).toBe(2);
  }, 90_000);
});

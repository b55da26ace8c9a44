import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { demoResponder } from '../../src/demo-model';
import { rowsOf } from '../../src/models/migrate';
import type { Job } from 'bullmq';
import { PsaPush } from '../../src/assistant/psa-push';
import { resolutionOutputs } from '../../src/assistant/ticket-notes';
import type { PsaConnections } from '../../src/connectors/psa';
import { createLogger } from '../../src/lib/logger';
import type { Enqueue } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { startFakeConnectWise, type FakeConnectWise } from '../support/fake-connectwise';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * Resolving a session pushes its ticket notes to the user's PSA (a ConnectWise-Manage-style REST
 * API, faked locally): the push is reported on the resolve answer and the session
 * (`psaPushStatus` sent | pending_retry | no_psa | failed, `psaPushError`, `memberMappingWarning`),
 * retried on the `psa` queue while the PSA is down; credentials are sealed and never answered.
 */

const COMPANY = 'acme_msp';
const PUBLIC_KEY = 'pubKey4711';
const PRIVATE_KEY = `priv-${randomUUID()}`;

describe('PSA push of ticket notes', () => {
  let t: TestApp;
  let cw: FakeConnectWise;
  const logs: string[] = [];

  beforeAll(async () => {
    cw = await startFakeConnectWise({ companyId: COMPANY, publicKey: PUBLIC_KEY, privateKey: PRIVATE_KEY, clientId: 'switchboard-test' });
    t = await startTestApp({
      responder: (req) =>
        req.messages.some((m) => m.role === 'system' && String(m.content).includes('ticket notes'))
          ? demoResponder(req)
          : { text: 'Restart the print spooler.' },
      env: { PSA_PRIVATE_ORIGINS: cw.url },
      logs: (line) => logs.push(line),
    });
  });
  afterAll(async () => {
    await t.stop();
    await cw.close();
  });

  const connect = (user: TestUser, body: Record<string, unknown> = {}) =>
    request('PUT', `${t.api}/psa/connection`, {
      token: user.accessToken,
      body: {
        provider: 'connectwise',
        baseUrl: cw.apiRoot,
        companyId: COMPANY,
        clientId: 'switchboard-test',
        publicKey: PUBLIC_KEY,
        privateKey: PRIVATE_KEY,
        ...body,
      },
    });

  /** A user's session of one chat turn. */
  async function session(user: TestUser): Promise<string> {
    const chat = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { message: 'The printer queue is stuck on job 12.', tools: 'none' },
    });
    expect(chat.status).toBe(200);
    return chat.body.sessionId as string;
  }
  const resolve = (user: TestUser, sessionId: string, body: Record<string, unknown> = {}) =>
    request('POST', `${t.api}/chat/sessions/${sessionId}/resolve`, { token: user.accessToken, body });
  const sessionOf = async (user: TestUser, sessionId: string) =>
    (await request('GET', `${t.api}/chat/sessions/${sessionId}`, { token: user.accessToken })).body.session;
  const settled = (user: TestUser, sessionId: string) =>
    eventually(
      () => sessionOf(user, sessionId),
      (s) => s.psaPushStatus === 'sent' || s.psaPushStatus === 'failed',
      20_000,
    );

  test('connecting seals the credentials: never answered, never stored or logged in clear', async () => {
    const user = await registerUser(t.api, 'Psa');
    const res = await connect(user, { memberIdentifier: 'jdoe' });
    expect(res.status).toBe(200);
    expect(res.body.connection).toEqual({
      provider: 'connectwise',
      baseUrl: cw.apiRoot,
      companyId: COMPANY,
      clientId: 'switchboard-test',
      memberIdentifier: 'jdoe',
      authType: 'member_keys',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const read = await request('GET', `${t.api}/psa/connection`, { token: user.accessToken });
    expect(read.body).toEqual(res.body);
    expect(JSON.stringify(read.body)).not.toContain(PRIVATE_KEY);
    const [row] = rowsOf<{ ciphertext: string }>(
      await t.app.repos.db.execute(sql`select ciphertext from psa_connections where user_id = ${user.id}::uuid`),
    );
    expect(row.ciphertext).toMatch(/^v1\./);
    expect(row.ciphertext).not.toContain(PRIVATE_KEY);
    expect(logs.join('\n')).not.toContain(PRIVATE_KEY);
  });

  test('resolve answers pending_retry, then the notes are posted to the ticket as the mapped member and the session says sent', async () => {
    const user = await registerUser(t.api, 'Psa');
    cw.tickets.add(1001);
    cw.members.add('jdoe');
    expect((await connect(user, { memberIdentifier: 'jdoe' })).status).toBe(200);
    const sessionId = await session(user);

    const res = await resolve(user, sessionId, { resolutionSummary: 'Cleared the spooler.', psaTicketId: '1001' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      sessionId,
      status: 'resolved',
      documentation: null,
      psaPushStatus: 'pending_retry',
      psaPushError: null,
      memberMappingWarning: null,
    });

    const done = await settled(user, sessionId);
    expect(done).toMatchObject({ psaTicketId: '1001', psaPushStatus: 'sent', psaPushError: null, memberMappingWarning: null });
    const documentation = (await request('GET', `${t.api}/chat/sessions/${sessionId}/documentation`, { token: user.accessToken })).body;
    const posted = cw.notes.filter((note) => note.ticketId === 1001);
    expect(posted).toHaveLength(1);
    expect(posted[0]).toMatchObject({
      text: documentation.documentation,
      internalAnalysisFlag: true,
      resolutionFlag: true,
      member: { identifier: 'jdoe' },
    });
    const post = cw.requests.find((r) => r.method === 'POST' && r.path.endsWith('/service/tickets/1001/notes'))!;
    expect(post.clientId).toBe('switchboard-test');
    // Resolving again does not post the same notes to the same ticket twice.
    expect((await resolve(user, sessionId)).body.psaPushStatus).toBe('sent');
    expect(cw.notes.filter((note) => note.ticketId === 1001)).toHaveLength(1);
  });

  test('without a PSA the answer is no_psa; with one but no ticket, failed with the reason', async () => {
    const user = await registerUser(t.api, 'NoPsa');
    const first = await session(user);
    expect((await resolve(user, first)).body).toMatchObject({ psaPushStatus: 'no_psa', psaPushError: null });
    expect((await sessionOf(user, first)).psaPushStatus).toBe('no_psa');

    expect((await connect(user)).status).toBe(200);
    const second = await session(user);
    const res = await resolve(user, second);
    expect(res.body).toMatchObject({ psaPushStatus: 'failed', psaPushError: expect.stringContaining('psaTicketId') });
  });

  test('an unknown PSA member: the note is posted as the API member with member_mapping_warning', async () => {
    const user = await registerUser(t.api, 'Unmapped');
    cw.tickets.add(1002);
    expect((await connect(user, { memberIdentifier: 'nobody-here' })).status).toBe(200);
    const sessionId = await session(user);
    await resolve(user, sessionId, { psaTicketId: 1002 });

    const done = await settled(user, sessionId);
    expect(done.psaPushStatus).toBe('sent');
    expect(done.memberMappingWarning).toContain('nobody-here');
    const [note] = cw.notes.filter((n) => n.ticketId === 1002);
    expect(note.member).toBeUndefined();
  });

  test('a PSA that is down is retried on the queue until it takes the note; one that stays down ends failed', async () => {
    const user = await registerUser(t.api, 'Retry');
    cw.tickets.add(1003);
    cw.tickets.add(1004);
    cw.members.add('retry-member');
    expect((await connect(user, { memberIdentifier: 'retry-member' })).status).toBe(200);

    cw.failNotes(1, 503);
    const recovered = await session(user);
    await resolve(user, recovered, { psaTicketId: '1003' });
    expect((await settled(user, recovered)).psaPushStatus).toBe('sent');
    expect(cw.notes.filter((n) => n.ticketId === 1003)).toHaveLength(1);
    const tries = cw.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/tickets/1003/notes'));
    expect(tries).toHaveLength(2);

    cw.failNotes(100, 503);
    const down = await session(user);
    await resolve(user, down, { psaTicketId: '1004' });
    const waiting = await eventually(
      () => sessionOf(user, down),
      (s) => s.psaPushStatus === 'pending_retry' && s.psaPushError !== null,
      15_000,
    );
    expect(waiting.psaPushError).toContain('503');
    const failed = await settled(user, down);
    expect(failed).toMatchObject({ psaPushStatus: 'failed', psaPushError: expect.stringContaining('503') });
    expect(cw.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/tickets/1004/notes'))).toHaveLength(4);
    cw.failNotes(0, 503);
  }, 40_000);

  test('a missing ticket or refused credentials fail at once, without retries', async () => {
    const user = await registerUser(t.api, 'Refused');
    expect((await connect(user)).status).toBe(200);
    const missing = await session(user);
    await resolve(user, missing, { psaTicketId: '424242' });
    expect(await settled(user, missing)).toMatchObject({ psaPushStatus: 'failed', psaPushError: expect.stringContaining('424242') });
    expect(cw.requests.filter((r) => r.path.endsWith('/tickets/424242/notes'))).toHaveLength(1);

    cw.tickets.add(1005);
    expect((await connect(user, { privateKey: 'wrong-key' })).status).toBe(200);
    const refused = await session(user);
    await resolve(user, refused, { psaTicketId: '1005' });
    expect(await settled(user, refused)).toMatchObject({ psaPushStatus: 'failed', psaPushError: expect.stringContaining('401') });
  });

  test('the PSA URL follows the SSRF rules: https on a public host unless the operator allowed the origin', async () => {
    const user = await registerUser(t.api, 'Ssrf');
    for (const baseUrl of [
      'http://127.0.0.1:9/v4_6_release/apis/3.0',
      'https://127.0.0.1/api',
      'https://10.1.2.3/api',
      'https://[::1]/api',
      'https://169.254.169.254/latest',
      'https://localhost/api',
      'http://psa.example.com/api',
      'https://user:pw@psa.example.com/api',
      'ftp://psa.example.com/',
      'not a url',
    ]) {
      const res = await connect(user, { baseUrl });
      expect({ baseUrl, status: res.status }).toEqual({ baseUrl, status: 400 });
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect((await request('GET', `${t.api}/psa/connection`, { token: user.accessToken })).status).toBe(404);
  });

  test('bad bodies are 400 and write nothing; another user sees and pushes nothing of yours', async () => {
    const owner = await registerUser(t.api, 'Owner');
    const other = await registerUser(t.api, 'Other');
    expect((await connect(owner, { apiKey: 'k' })).status).toBe(400);
    expect((await connect(owner, { privateKey: undefined })).status).toBe(400);
    expect((await connect(owner, { provider: 'autotask' })).status).toBe(400);
    expect((await connect(owner, { companyId: '\ud800' })).status).toBe(400);
    expect((await request('GET', `${t.api}/psa/connection`, { token: owner.accessToken })).status).toBe(404);

    expect((await connect(owner)).status).toBe(200);
    const sessionId = await session(owner);
    for (const psaTicketId of ['abc', '0', '-3', 1.5, '1'.repeat(13)])
      expect((await resolve(owner, sessionId, { psaTicketId })).status).toBe(400);
    expect((await sessionOf(owner, sessionId)).status).toBe('active');

    expect((await request('GET', `${t.api}/psa/connection`, { token: other.accessToken })).status).toBe(404);
    expect((await resolve(other, sessionId, { psaTicketId: '1001' })).status).toBe(404);
    expect((await request('DELETE', `${t.api}/psa/connection`, { token: other.accessToken })).status).toBe(404);
    expect((await request('GET', `${t.api}/psa/connection`, { token: owner.accessToken })).status).toBe(200);
    expect((await request('DELETE', `${t.api}/psa/connection`, { token: owner.accessToken })).status).toBe(204);
    expect((await request('GET', `${t.api}/psa/connection`, { token: owner.accessToken })).status).toBe(404);
  });

  test('the FlowPilot path answers psa_push_status, psa_push_error and member_mapping_warning', async () => {
    const user = await registerUser(t.api, 'FlowPilot');
    cw.tickets.add(1006);
    expect((await connect(user)).status).toBe(200);
    const sessionId = await session(user);
    const res = await request('POST', `${t.url}/api/ai-sessions/${sessionId}/resolve`, {
      token: user.accessToken,
      body: { resolution_summary: 'Spooler restarted.', psa_ticket_id: 1006 },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      session_id: sessionId,
      status: 'resolved',
      documentation: null,
      psa_push_status: 'pending_retry',
      psa_push_error: null,
      member_mapping_warning: null,
    });
    const done = await settled(user, sessionId);
    expect(done.psaPushStatus).toBe('sent');
    expect(done.memberMappingWarning).toContain('No PSA member');
  });

  test('notes stored between a resolve reading its session and claiming the push are pushed once', async () => {
    // Given: a session read by a resolve before its notes exist
    const user = await registerUser(t.api, 'Race');
    const sessionId = await session(user);
    const { repos } = t.app;
    const queued: Array<Record<string, unknown>> = [];
    const enqueue = (async (_queue: string, _name: string, data: Record<string, unknown>) => void queued.push(data)) as unknown as Enqueue;
    const connections = {
      connected: async () => true,
      pushNotes: async () => {
        throw new Error('a push of a claim that is no longer current must not reach the PSA');
      },
    } as unknown as PsaConnections;
    const push = new PsaPush({ repos, psa: connections, enqueue, logger: createLogger({ level: 'silent' }) });
    const stale = (await repos.chat.findOwned(user.id, sessionId))!;
    expect(stale.documentation).toBeNull();

    // When: the notes are stored and announced before the resolve claims the push
    await repos.notes.storeDocumentation(
      sessionId,
      '## Problem Summary\nStuck queue.',
      resolutionOutputs('## Problem Summary\nStuck queue.', null),
    );
    await push.notesReady(user.id, sessionId);
    expect(queued).toEqual([]);
    const state = await push.onResolve(user.id, stale, '1007');

    // Then: the claim sees the notes and queues its push, under the claim's id
    expect(state.psaPushStatus).toBe('pending_retry');
    const claim = (await repos.chat.findOwned(user.id, sessionId))!.psaPushClaim;
    expect(claim).toEqual(expect.any(String));
    expect(queued).toEqual([{ userId: user.id, sessionId, pushId: claim }]);
    // A second queue of the same claim names the same job, so BullMQ keeps one.
    await push.notesReady(user.id, sessionId);
    expect(queued[1]).toEqual(queued[0]);

    // And: a job of an earlier claim does nothing
    const job = { attemptsMade: 0, opts: { attempts: 4 } } as unknown as Job;
    expect(await push.process({ userId: user.id, sessionId, pushId: randomUUID() }, job)).toEqual({ status: 'pending_retry' });
  });
});

import { randomInt, randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { startFakeConnectWise, type FakeConnectWise } from '../support/fake-connectwise';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * FlowPilot's console closes a session with `resolveSession(id, {resolution_summary})` or
 * `escalateSession(id, {escalation_reason})` and reads the seed's `SessionCloseResponse`. It never
 * sends `psa_ticket_id` there: the ticket is the one its session was started with, kept in the
 * session's context. Against a real server and a local ConnectWise-style PSA, both closes push the
 * session's notes to that ticket and answer the whole response.
 */

const COMPANY = 'flowpilot_msp';
const PUBLIC_KEY = 'fpPublic';
const PRIVATE_KEY = `fp-${randomUUID()}`;

/** The seed's `SessionCloseResponse`, in its key order. */
const CLOSE_KEYS = ['session_id', 'status', 'documentation', 'psa_push_status', 'psa_push_error', 'member_mapping_warning'];

describe('FlowPilot: resolve and escalate answer SessionCloseResponse and push to the session ticket', () => {
  let t: TestApp;
  let cw: FakeConnectWise;

  beforeAll(async () => {
    cw = await startFakeConnectWise({ companyId: COMPANY, publicKey: PUBLIC_KEY, privateKey: PRIVATE_KEY });
    t = await startTestApp({
      responder: (req) =>
        req.messages.some((m) => m.role === 'system' && String(m.content).includes('ticket notes'))
          ? demoResponder(req)
          : { text: 'Flush the DNS cache and renew the lease.' },
      env: { PSA_PRIVATE_ORIGINS: cw.url },
    });
  });
  afterAll(async () => {
    await t.stop();
    await cw.close();
  });

  /** A ticket number no other test uses, known to the PSA. */
  function newTicket(): number {
    const ticket = randomInt(100_000, 999_999_999);
    cw.tickets.add(ticket);
    return ticket;
  }

  async function psaUser(name: string): Promise<TestUser> {
    const user = await registerUser(t.api, name);
    const connected = await request('PUT', `${t.api}/psa/connection`, {
      token: user.accessToken,
      body: { provider: 'connectwise', baseUrl: cw.apiRoot, companyId: COMPANY, publicKey: PUBLIC_KEY, privateKey: PRIVATE_KEY },
    });
    expect(connected.status).toBe(200);
    return user;
  }

  /** A session started the way the console starts one: the problem and the PSA ticket in its context. */
  async function session(user: TestUser, context: Record<string, unknown>): Promise<string> {
    const turn = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { message: 'DNS lookups fail on the branch office laptops.', tools: 'none', context },
    });
    expect(turn.status).toBe(200);
    return turn.body.sessionId as string;
  }

  const close = (user: TestUser, sessionId: string, action: 'resolve' | 'escalate', body?: unknown) =>
    request('POST', `${t.url}/api/ai-sessions/${sessionId}/${action}`, { token: user.accessToken, body });
  const sessionOf = async (user: TestUser, sessionId: string) =>
    (await request('GET', `${t.api}/chat/sessions/${sessionId}`, { token: user.accessToken })).body.session;
  /** The console's `getDocumentation(id)`. */
  const documentation = (user: TestUser, sessionId: string) =>
    request('GET', `${t.url}/api/ai-sessions/${sessionId}/documentation`, { token: user.accessToken });
  const settled = (user: TestUser, sessionId: string) =>
    eventually(
      () => sessionOf(user, sessionId),
      (s) => s.psaPushStatus === 'sent' || s.psaPushStatus === 'failed',
      20_000,
    );

  test("resolve with the console's body pushes the notes to the ticket its session was started with", async () => {
    const user = await psaUser('FpResolve');
    const ticket = newTicket();
    const sessionId = await session(user, { problem_summary: 'DNS failures', psa_ticket_id: String(ticket) });

    // The console's exact call: aiSessionsApi.resolveSession(activeChatId, {resolution_summary}).
    const res = await close(user, sessionId, 'resolve', { resolution_summary: 'Resolved via assistant chat' });

    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(CLOSE_KEYS);
    expect(res.body).toEqual({
      session_id: sessionId,
      status: 'resolved',
      documentation: null,
      psa_push_status: 'pending_retry',
      psa_push_error: null,
      member_mapping_warning: null,
    });
    const done = await settled(user, sessionId);
    expect(done).toMatchObject({ psaTicketId: String(ticket), psaPushStatus: 'sent' });
    const doc = (await documentation(user, sessionId)).body;
    expect(doc).toMatchObject({ documentation_status: 'ready', problem_summary: 'DNS failures' });
    const notes = cw.notes.filter((note) => note.ticketId === ticket);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ text: doc.documentation, internalAnalysisFlag: true, resolutionFlag: true });
    expect(notes[0].text).toContain('## Problem Summary');
  });

  test("escalate with the console's body answers SessionCloseResponse and hands the notes to the ticket, not as its resolution", async () => {
    const user = await psaUser('FpEscalate');
    const ticket = newTicket();
    // A ticket number as the context's JSON number works the same.
    const sessionId = await session(user, { problem_summary: 'DNS failures', psa_ticket_id: ticket });

    // The console's exact call: aiSessionsApi.escalateSession(activeChatId, {escalation_reason}).
    const res = await close(user, sessionId, 'escalate', { escalation_reason: 'Escalated from assistant chat' });

    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(CLOSE_KEYS);
    expect(res.body).toEqual({
      session_id: sessionId,
      status: 'escalated',
      documentation: null,
      psa_push_status: 'pending_retry',
      psa_push_error: null,
      member_mapping_warning: null,
    });
    const done = await settled(user, sessionId);
    expect(done).toMatchObject({
      status: 'escalated',
      escalationReason: 'Escalated from assistant chat',
      psaTicketId: String(ticket),
      psaPushStatus: 'sent',
    });
    const doc = (await documentation(user, sessionId)).body;
    expect(doc).toMatchObject({ session_id: sessionId, status: 'escalated', documentation_status: 'ready' });
    const notes = cw.notes.filter((note) => note.ticketId === ticket);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ text: doc.documentation, internalAnalysisFlag: true, resolutionFlag: false });

    // Resolving it later does not post the same notes to the same ticket again.
    const resolved = await close(user, sessionId, 'resolve', { resolution_summary: 'Fixed by the network team' });
    expect(resolved.body).toMatchObject({ status: 'resolved', psa_push_status: 'sent' });
    expect(cw.notes.filter((note) => note.ticketId === ticket)).toHaveLength(1);
  });

  test('a ticket given with the close wins over the context; no ticket anywhere, or a context value that is no ticket number, is failed with the reason', async () => {
    const user = await psaUser('FpTickets');
    const fromContext = newTicket();
    const given = newTicket();
    const overridden = await session(user, { psa_ticket_id: String(fromContext) });
    const res = await close(user, overridden, 'resolve', { resolution_summary: 'Done', psa_ticket_id: given });
    expect(res.body.psa_push_status).toBe('pending_retry');
    expect(await settled(user, overridden)).toMatchObject({ psaTicketId: String(given), psaPushStatus: 'sent' });
    expect(cw.notes.filter((note) => note.ticketId === given)).toHaveLength(1);
    expect(cw.notes.filter((note) => note.ticketId === fromContext)).toHaveLength(0);

    for (const context of [
      { problem_summary: 'No ticket' },
      { psa_ticket_id: '12; DROP TABLE' },
      { psa_ticket_id: '0042' },
      { psa_ticket_id: 1.5 },
    ]) {
      const sessionId = await session(user, context);
      const closed = await close(user, sessionId, 'escalate', { escalation_reason: 'Needs tier 2' });
      expect({ context, status: closed.status, push: closed.body.psa_push_status }).toEqual({ context, status: 200, push: 'failed' });
      expect(closed.body.psa_push_error).toContain('psa_ticket_id');
      expect((await sessionOf(user, sessionId)).psaTicketId).toBeNull();
    }
    expect(cw.requests.filter((r) => r.method === 'POST' && r.path.includes('DROP'))).toHaveLength(0);
  });

  test("another user's session is 404 on resolve and escalate, and nothing is written or pushed", async () => {
    const owner = await psaUser('FpOwner');
    const other = await psaUser('FpOther');
    const ticket = newTicket();
    const sessionId = await session(owner, { psa_ticket_id: String(ticket) });

    for (const [action, body] of [
      ['resolve', { resolution_summary: 'Not yours' }],
      ['escalate', { escalation_reason: 'Not yours' }],
      ['resolve', { resolution_summary: 'Not yours', psa_ticket_id: ticket }],
    ] as const) {
      const res = await close(other, sessionId, action, body);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    expect(await sessionOf(owner, sessionId)).toMatchObject({
      status: 'active',
      escalationReason: null,
      psaTicketId: null,
      psaPushStatus: null,
    });
    // No notes were asked for.
    expect((await documentation(owner, sessionId)).status).toBe(404);
    expect(cw.notes.filter((note) => note.ticketId === ticket)).toHaveLength(0);
  });

  test('a flood of closes: resolves and escalates share 15 a minute, then 429 with Retry-After on either', async () => {
    const user = await registerUser(t.api, 'FpFlood');
    const sessionId = await session(user, { problem_summary: 'Flood' });
    const statuses: number[] = [];
    for (let i = 0; i < 15; i += 1) {
      const res =
        i % 2
          ? await close(user, sessionId, 'resolve', { resolution_summary: `Try ${i}` })
          : await close(user, sessionId, 'escalate', { escalation_reason: `Try ${i}` });
      statuses.push(res.status);
    }
    expect(statuses).toEqual(Array(15).fill(200));
    const escalate = await close(user, sessionId, 'escalate', { escalation_reason: 'One too many' });
    const resolve = await close(user, sessionId, 'resolve', {});
    for (const refused of [escalate, resolve]) {
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('rate_limited');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect((await sessionOf(user, sessionId)).escalationReason).toBe('Try 14');
  });

  test('bad bodies are 400 naming the field as sent, and nothing is written', async () => {
    const user = await psaUser('FpBad');
    const ticket = newTicket();
    const sessionId = await session(user, { psa_ticket_id: String(ticket) });

    for (const [action, body, field] of [
      ['escalate', { escalation_reason: 42 }, 'escalation_reason'],
      ['escalate', { escalation_reason: 'x'.repeat(2_001) }, 'escalation_reason'],
      ['escalate', { escalation_reason: 'ok', psa_ticket_id: 'abc' }, 'psa_ticket_id'],
      ['escalate', { escalation_reason: 'ok', unexpected: true }, ''],
      ['resolve', { resolution_summary: 'ok', psa_ticket_id: '0012' }, 'psa_ticket_id'],
      ['resolve', { resolution_summary: 'ok', psa_ticket_id: -3 }, 'psa_ticket_id'],
      ['resolve', { resolution_summary: 7 }, 'resolution_summary'],
    ] as const) {
      const res = await close(user, sessionId, action, body);
      expect({ body, status: res.status, code: res.body.error?.code }).toEqual({ body, status: 400, code: 'validation_failed' });
      if (field) expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(field);
    }
    expect(await sessionOf(user, sessionId)).toMatchObject({
      status: 'active',
      escalationReason: null,
      psaTicketId: null,
      psaPushStatus: null,
    });
    expect((await documentation(user, sessionId)).status).toBe(404);
    expect(cw.notes.filter((note) => note.ticketId === ticket)).toHaveLength(0);
  });
});

import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * Who did what from where: audit rows of HTTP actions carry the client address (`req.ip`, which
 * follows TRUST_PROXY: here loopback proxies are trusted, so `X-Forwarded-For` names the client)
 * and the user agent; the assistant's tool calls on a device are audited with the user, device,
 * tool, outcome and the approval they waited for; admins read it all at `GET /admin/audit`.
 */

const TASK_ID = '5a1c2e3f-4b5d-4c6e-8f70-8192a3b4c5d6';
const LOOPBACK = /^(::ffff:)?127\.0\.0\.1$|^::1$/;
type AuditRow = Record<string, any>;

describe('audit: who did what from where', () => {
  let t: TestApp;
  let admin: TestUser;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { TRUST_PROXY: 'loopback', HITL_TIMEOUT_MS: '60000' } });
    admin = await registerUser(t.api, 'Auditor');
    expect((await t.app.repos.admins.setRole({ id: admin.id }, 'admin', { via: 'test' })).outcome).toBe('changed');
  });
  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const readAudit = async (query: Record<string, string>, token = admin.accessToken) =>
    request('GET', `${t.api}/admin/audit?${new URLSearchParams(query).toString()}`, { token });

  test("an HTTP action's audit row carries the client address behind the trusted proxy and the user agent", async () => {
    const user = await registerUser(t.api, 'Origin');
    const viaProxy = await request('POST', `${t.api}/api-keys`, {
      token: user.accessToken,
      body: { name: 'via proxy' },
      headers: { 'User-Agent': 'AuditProbe/1.0 (proxied)', 'X-Forwarded-For': '203.0.113.9' },
    });
    expect(viaProxy.status).toBe(201);
    const direct = await request('POST', `${t.api}/api-keys`, {
      token: user.accessToken,
      body: { name: 'direct' },
      headers: { 'User-Agent': 'AuditProbe/1.0 (direct)' },
    });
    expect(direct.status).toBe(201);

    const res = await readAudit({ actorId: user.id, action: 'api_key.created' });
    expect(res.status).toBe(200);
    const rows = res.body.audit as AuditRow[];
    expect(rows).toHaveLength(2);
    // Newest first.
    expect(rows[0]).toMatchObject({ actorId: user.id, details: { name: 'direct' }, userAgent: 'AuditProbe/1.0 (direct)', deviceId: null });
    expect(rows[0].ip).toMatch(LOOPBACK);
    expect(rows[1]).toMatchObject({ details: { name: 'via proxy' }, ip: '203.0.113.9', userAgent: 'AuditProbe/1.0 (proxied)' });
  });

  test('device tool calls are audited with user, device, tool and outcome; an approved one with its approval id', async () => {
    const user = await registerUser(t.api, 'Tools');
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId,
      seed: { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] },
      reconnection: false,
    });
    devices.push(device);

    // A safe tool: runs at once.
    t.llm.push({ toolCalls: [{ name: 'list_tasks', args: {} }] }, { text: 'You have one task.' });
    const listed = nextDeviceEvent<{ response: string }>(device, 'final', () => true, 15_000);
    await device.socket.timeout(5_000).emitWithAck('chat_request', { message: 'Show my tasks' });
    expect((await listed).response).toBe('You have one task.');

    // A dangerous one: runs after the user approves it over HTTP.
    const requested = nextDeviceEvent<ApprovalRequested>(device, 'approval_requested');
    const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: `Delete task ${TASK_ID}` })) as {
      sessionId: string;
    };
    const { approvalId } = await requested;
    const deleted = nextDeviceEvent<{ sessionId: string }>(device, 'final', (f) => f.sessionId === ack.sessionId, 15_000);
    const approved = await request('PUT', `${t.api}/hitl/requests/${approvalId}/approve`, {
      token: user.accessToken,
      headers: { 'User-Agent': 'ConsoleBrowser/2.0', 'X-Forwarded-For': '198.51.100.4' },
    });
    expect(approved.status).toBe(200);
    await deleted;

    const toolRows = (
      await eventually(
        () => readAudit({ deviceId, action: 'device.tool_call' }),
        (res) => res.body.audit?.length === 2,
      )
    ).body.audit as AuditRow[];
    expect(toolRows[0]).toMatchObject({
      actorId: user.id,
      action: 'device.tool_call',
      deviceId,
      targetType: 'approval',
      targetId: approvalId,
      details: { tool: 'delete_task', outcome: 'ok', approvalId, sessionId: ack.sessionId },
      // Run by a worker, not an HTTP request: no address of its own.
      ip: null,
      userAgent: null,
    });
    expect(toolRows[1]).toMatchObject({ actorId: user.id, deviceId, targetId: null, details: { tool: 'list_tasks', outcome: 'ok' } });
    expect(toolRows[1].details).not.toHaveProperty('approvalId');

    // The approval itself was an HTTP action: where it came from is on its row.
    const decision = (await readAudit({ actorId: user.id, action: 'hitl.approved' })).body.audit as AuditRow[];
    expect(decision).toEqual([expect.objectContaining({ targetId: approvalId, ip: '198.51.100.4', userAgent: 'ConsoleBrowser/2.0' })]);
  });

  test('a device tool call that fails on the device is audited with its outcome', async () => {
    const user = await registerUser(t.api, 'Failing');
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const device = await DeviceSimulator.connect({ url: t.url, accessToken: user.accessToken, deviceId, reconnection: false });
    devices.push(device);
    device.responder = (call) => ({ id: call.id, error: 'disk full' });
    t.llm.push({ toolCalls: [{ name: 'list_tasks', args: {} }] }, { text: 'Could not read them.' });
    const final = nextDeviceEvent<{ response: string }>(device, 'final', () => true, 15_000);
    await device.socket.timeout(5_000).emitWithAck('chat_request', { message: 'Show my tasks' });
    await final;
    const rows = (
      await eventually(
        () => readAudit({ deviceId }),
        (res) => res.body.audit?.length === 1,
      )
    ).body.audit as AuditRow[];
    expect(rows[0]).toMatchObject({ actorId: user.id, details: { tool: 'list_tasks', outcome: 'device_error' } });
  });

  test('GET /admin/audit: admins only, filters validated, pages newest first', async () => {
    const user = await registerUser(t.api, 'Plain');
    for (const name of ['one', 'two', 'three'])
      expect((await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name } })).status).toBe(201);

    const refused = await readAudit({}, user.accessToken);
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: { code: 'forbidden', message: expect.any(String) } });
    expect((await request('GET', `${t.api}/admin/audit`)).status).toBe(401);

    const badQueries: Array<Record<string, string>> = [
      { actorId: 'not-a-uuid' },
      { deviceId: 'bad device!' },
      { action: 'DROP TABLE' },
      { limit: '0' },
      { bogus: '1' },
      { cursor: 'nope' },
    ];
    for (const query of badQueries) {
      const bad = await readAudit(query);
      expect(bad.status).toBe(400);
      expect(bad.body.error).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
    }

    const first = await readAudit({ actorId: user.id, limit: '2' });
    expect(first.status).toBe(200);
    expect(first.body.audit.map((row: AuditRow) => row.details.name)).toEqual(['three', 'two']);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await readAudit({ actorId: user.id, limit: '2', cursor: first.body.nextCursor });
    expect(second.body.audit.map((row: AuditRow) => row.details.name)).toEqual(['one']);
    expect(second.body.nextCursor).toBeNull();
  });
});

import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

/**
 * A cursor is validated whole before it reaches a query: the number of parts, each part's type, and
 * each number's range (a sequence, a version, microseconds in a `bigint`, a timestamp PostgreSQL
 * can read). A forged one is 400 `invalid_cursor` on every list, never a 500.
 */
const cursor = (key: unknown) => encodeURIComponent(Buffer.from(JSON.stringify(key)).toString('base64url'));
const raw = (text: string) => encodeURIComponent(Buffer.from(text).toString('base64url'));

describe('forged pagination cursors', () => {
  let t: TestApp;
  let user: TestUser;
  let sessionId: string;
  let flowId: string;
  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder });
    user = await registerUser(t.api, 'Cursors');
    const turn = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'Hello there.', tools: 'none' } });
    expect(turn.status).toBe(200);
    sessionId = turn.body.sessionId as string;
    const flow = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: `Cursors ${randomUUID().slice(0, 6)}`,
        definition: { nodes: [{ id: 'a', prompt: 'hi' }], output: 'a' },
      },
    });
    expect(flow.status).toBe(201);
    flowId = flow.body.flow.id as string;
  }, 60_000);
  afterAll(() => t.stop());

  const get = (path: string) => request('GET', `${t.api}${path}`, { token: user.accessToken });
  const expectInvalid = async (path: string) => {
    const res = await get(path);
    // An oversized cursor may already fail the list's query schema (400 `validation_failed`).
    const oversized = decodeURIComponent(new URL(path, t.api).searchParams.get('cursor') ?? '').length > 500;
    const code = oversized ? expect.stringMatching(/^(invalid_cursor|validation_failed)$/) : 'invalid_cursor';
    expect({ path, status: res.status, code: res.body?.error?.code }).toEqual({ path, status: 400, code });
    expect(res.body.error.message).toEqual(expect.any(String));
  };
  const id = randomUUID();
  /** Forgeries every list refuses, whatever its key. */
  const anyList = [
    raw('not json'),
    cursor({ at: '1', id }),
    cursor([]),
    cursor([id, id, id]),
    'not*base64url',
    'A'.repeat(501),
    raw('[[[[[1]]]]]'),
  ];

  test('/me/history: microseconds past 2^63, negative, not numeric, the wrong number of parts or oversized are 400', async () => {
    for (const forged of [
      cursor(['9223372036854775808', id]),
      cursor(['9999999999999999999', id]),
      cursor(['-1', id]),
      cursor([-1, id]),
      cursor(['12.5', id]),
      cursor(['1e5', id]),
      cursor(['abc', id]),
      cursor([1, id]),
      cursor(['1', id, 'extra']),
      cursor(['1']),
      cursor(['1'.repeat(400), id]),
      ...anyList,
    ])
      await expectInvalid(`/me/history?cursor=${forged}`);
    // The largest bigint is a cursor PostgreSQL can read: an empty page, not an error.
    const edge = await get(`/me/history?cursor=${cursor(['9223372036854775807', id])}`);
    expect(edge.status).toBe(200);
  });

  test('a conversation history (sequence cursor) refuses out-of-range, negative and non-numeric sequences', async () => {
    for (const forged of [
      cursor([2 ** 63]),
      cursor([1e300]),
      cursor([-5]),
      cursor([0]),
      cursor([1.5]),
      cursor(['7']),
      cursor([1, 2]),
      ...anyList,
    ])
      await expectInvalid(`/chat/sessions/${sessionId}/history?cursor=${forged}`);
  });

  test('the session list and the flow list (timestamp cursors) refuse dates PostgreSQL cannot read or the API never wrote', async () => {
    for (const at of [
      '-271821-04-20T00:00:00.000Z',
      '+275760-09-13T00:00:00.000Z',
      '0000-01-01T00:00:00.000Z',
      '2024-02-30T00:00:00.000Z',
      '1',
      'Tue Mar 05 2024',
      5,
    ])
      for (const list of ['/chat/sessions', '/flows']) await expectInvalid(`${list}?cursor=${cursor([at, id])}`);
    for (const forged of anyList) for (const list of ['/chat/sessions', '/flows']) await expectInvalid(`${list}?cursor=${forged}`);
    expect((await get(`/flows?cursor=${cursor(['2024-03-05T10:00:00.000Z', id])}`)).status).toBe(200);
  });

  test('flow versions (integer cursor) refuse versions past the integer range, negative or fractional', async () => {
    for (const forged of [cursor([2 ** 31]), cursor([1e300]), cursor([-1]), cursor([2.5]), cursor(['3']), ...anyList])
      await expectInvalid(`/flows/${flowId}/versions?cursor=${forged}`);
    expect((await get(`/flows/${flowId}/versions?cursor=${cursor([2 ** 31 - 1])}`)).status).toBe(200);
  });

  test('id lists refuse a key with the wrong number of parts or a non-uuid', async () => {
    for (const forged of [cursor([id, 'x']), cursor([42]), ...anyList]) await expectInvalid(`/canvases?cursor=${forged}`);
  });
});

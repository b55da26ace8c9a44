import { randomUUID } from 'node:crypto';
import { CLIENT_OPERATIONS, createSwitchboardClient, isApiError, type SwitchboardClient } from '@switchboard/client';
import { buildOpenApiDocument } from '../../src/http/openapi/document';
import { apiRoutes } from '../../src/http/routes';
import { startTestApp, type TestApp } from '../support/app';

/** Every operationId of the OpenAPI document built from the route declarations. */
function documentOperations(): string[] {
  const doc = buildOpenApiDocument(apiRoutes) as unknown as { paths: Record<string, Record<string, { operationId: string }>> };
  return Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
}

/** The value at a dotted path of the client (`flows.embeds.create`). */
function at(client: SwitchboardClient, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], client);
}

describe('@switchboard/client covers every operation of the API', () => {
  test('each operationId of the OpenAPI document has a client method, and the map names no other', () => {
    const operations = documentOperations();
    expect(operations.length).toBeGreaterThanOrEqual(80);
    expect(Object.keys(CLIENT_OPERATIONS).sort()).toEqual([...operations].sort());
    const client = createSwitchboardClient({ baseUrl: 'http://127.0.0.1:1' });
    const notFunctions = Object.entries(CLIENT_OPERATIONS).filter(([, path]) => typeof at(client, path) !== 'function');
    expect(notFunctions).toEqual([]);
  });
});

describe('the methods added for flows, embeds, sessions and usage, against a live server', () => {
  let t: TestApp;
  let sb: SwitchboardClient;

  beforeAll(async () => {
    t = await startTestApp({ responder: () => ({ text: 'A plain answer.' }) });
    sb = createSwitchboardClient({ baseUrl: t.url });
    await sb.auth.register({ email: `ops-${randomUUID().slice(0, 8)}@example.test`, password: 'correct horse battery', name: 'Ops' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  test('an agentflow: create, list, rename, execute as a stream, replay its events, read it, list executions, delete', async () => {
    const { flow } = await sb.flows.create({
      type: 'agentflow',
      name: `brief-${randomUUID().slice(0, 6)}`,
      definition: { nodes: [{ id: 'facts', prompt: 'Facts about {{input.topic}}' }], output: 'facts' },
    });
    expect((await sb.flows.list({ limit: 10 })).flows.map((f) => f.id)).toContain(flow.id);
    expect((await sb.flows.update(flow.id, { name: 'renamed' })).flow.name).toBe('renamed');

    const stream = sb.flows.executeStream(flow.id, { input: { topic: 'otters' } });
    const live: string[] = [];
    for await (const { event } of stream) live.push(event.type);
    expect(live).toEqual(['execution_started', 'node_started', 'node_completed', 'execution_completed']);
    const executionId = stream.executionId!;
    expect(executionId).toEqual(expect.any(String));

    const replayed: number[] = [];
    for await (const { seq } of sb.flows.events(flow.id, executionId, { lastEventId: '2' })) replayed.push(seq);
    expect(replayed).toEqual([3, 4]);
    expect((await sb.flows.execution(flow.id, executionId)).execution).toMatchObject({
      status: 'completed',
      output: 'A plain answer.',
      input: { topic: 'otters' },
    });
    expect((await sb.flows.executions(flow.id)).executions.map((e) => e.id)).toEqual([executionId]);

    const started = await sb.flows.execute(flow.id, { input: { topic: 'seals' } });
    const ended = await sb.flows.cancel(flow.id, started.executionId).then(
      (answer) => answer.status,
      (error: unknown) => (isApiError(error) ? error.code : 'thrown'),
    );
    expect(['cancelling', 'not_running']).toContain(ended);

    await sb.flows.delete(flow.id);
    await expect(sb.flows.get(flow.id)).rejects.toMatchObject({ status: 404 });
  }, 30_000);

  test('a chatflow: chat, chat as a stream, a public embed (JSON and stream), the sessions, escalation with a reason', async () => {
    const { flow } = await sb.flows.create({ type: 'chatflow', name: 'helper', definition: { systemPrompt: 'Be terse.' } });
    const first = await sb.flows.chat(flow.id, { message: 'Hi' });
    expect(first).toMatchObject({ sessionId: expect.any(String), response: 'A plain answer.' });
    const types: string[] = [];
    for await (const event of sb.flows.chatStream(flow.id, { message: 'Again', sessionId: first.sessionId })) types.push(event.type);
    expect(types.at(-1)).toBe('final');
    expect(types).toContain('text_chunk');
    const chatHistory = await sb.flows.chatHistory(flow.id, { limit: 50 });
    expect(chatHistory).toMatchObject({ flowId: flow.id, nextCursor: null, sessions: [{ id: first.sessionId }] });
    expect(chatHistory.messages.filter((m) => m.role === 'user').map((m) => [m.sessionId, m.content])).toEqual([
      [first.sessionId, 'Hi'],
      [first.sessionId, 'Again'],
    ]);

    const { embedToken, embed } = await sb.flows.embeds.create(flow.id, { allowedOrigins: ['https://example.test'] });
    expect((await sb.flows.embeds.list(flow.id)).embeds.map((e) => e.embedId)).toEqual([embed.embedId]);
    const changed = await sb.flows.embeds.update(flow.id, embed.embedId, {
      allowedOrigins: ['https://example.test', 'https://b.example.test'],
    });
    expect(changed.embed.allowedOrigins).toEqual(['https://example.test', 'https://b.example.test']);
    const anonymous = createSwitchboardClient({ baseUrl: t.url });
    const viaEmbed = await anonymous.embed.chat(embedToken, { message: 'From a widget' });
    expect(viaEmbed.response).toBe('A plain answer.');
    const streamed: string[] = [];
    for await (const event of anonymous.embed.chatStream(embedToken, { message: 'Streamed', sessionId: viaEmbed.sessionId }))
      streamed.push(event.type);
    expect(streamed.at(-1)).toBe('final');
    await sb.flows.embeds.delete(flow.id, embed.embedId);
    await expect(anonymous.embed.chat(embedToken, { message: 'gone' })).rejects.toMatchObject({ status: 404 });

    const { sessions } = await sb.chat.sessions({ limit: 50 });
    expect(sessions.map((s) => s.id)).toContain(first.sessionId);
    expect((await sb.chat.sessions({ kind: 'flow' })).sessions.map((s) => s.id)).toContain(first.sessionId);
    expect((await sb.chat.sessions({ kind: 'assistant' })).sessions.map((s) => s.id)).not.toContain(first.sessionId);
    expect((await sb.models.list()).models).toEqual([{ provider: 'scripted', model: 'scripted-model' }]);
    expect(await sb.chat.escalate(first.sessionId, { reason: 'needs a human' })).toEqual({
      sessionId: first.sessionId,
      status: 'escalated',
      documentation: null,
      psaPushStatus: 'no_psa',
      psaPushError: null,
      memberMappingWarning: null,
    });
    expect((await sb.chat.session(first.sessionId)).session).toMatchObject({
      id: first.sessionId,
      status: 'escalated',
      escalationReason: 'needs a human',
      flowId: flow.id,
    });
  }, 30_000);

  test('usage, the JSON metrics and the OpenAPI document', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const { days } = await sb.usage.daily({ from: today, to: today });
    expect(days.every((d) => d.day === today)).toBe(true);
    await expect(sb.usage.daily({ from: 'not-a-day' })).rejects.toMatchObject({ status: 400 });
    // Admins only: the caller's token is sent, and a user who is not an admin is told so.
    await expect(sb.metrics.json()).rejects.toMatchObject({ status: 403 });
    expect(await sb.openapi()).toMatchObject({ openapi: expect.stringMatching(/^3\./) });
  });
});

import { randomUUID } from 'node:crypto';
// The worktree's own sources (the installed @switchboard/* resolve to another checkout's).
import { CLIENT_OPERATIONS, createSwitchboardClient, isApiError, type SwitchboardClient } from '../../packages/client/src/index';
import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { buildOpenApiDocument } from '../../src/http/openapi/document';
import { apiRoutes } from '../../src/http/routes';
import { startTestApp, type TestApp } from '../support/app';
import { eventually } from '../support/wait';

const promptOf = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' });

/** The client's replay methods against a live server, and its map of operations covering the replay routes. */
describe('@switchboard/client: replay an execution from a node', () => {
  let t: TestApp;
  let sb: SwitchboardClient;

  beforeAll(async () => {
    t = await startTestApp({ responder: (req) => ({ text: `answer to ${promptOf(req)}` }) });
    sb = createSwitchboardClient({ baseUrl: t.url });
    await sb.auth.register({ email: `replay-${randomUUID().slice(0, 8)}@example.test`, password: 'correct horse battery', name: 'Replay' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  test('the replay operations of the document map to client methods', () => {
    const doc = buildOpenApiDocument(apiRoutes) as unknown as { paths: Record<string, Record<string, { operationId: string }>> };
    const operations = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    const replays = operations.filter((operation) => /^replayFlow/.test(operation)).sort();
    expect(replays).toEqual(['replayFlowExecution', 'replayFlowExecutionStream']);
    expect(replays.map((operation) => CLIENT_OPERATIONS[operation as keyof typeof CLIENT_OPERATIONS])).toEqual([
      'flows.replay',
      'flows.replayStream',
    ]);
    expect([typeof sb.flows.replay, typeof sb.flows.replayStream]).toEqual(['function', 'function']);
  });

  test('replay streams the new execution (reused node first), replayStream too; a draft is published with versions.publish', async () => {
    const { flow } = await sb.flows.create({
      type: 'agentflow',
      name: `replay-${randomUUID().slice(0, 6)}`,
      definition: {
        nodes: [
          { id: 'facts', prompt: 'Facts about {{input.topic}}' },
          { id: 'line', prompt: 'One line: {{nodes.facts.output}}', dependsOn: ['facts'] },
        ],
        output: 'line',
      },
    });
    const { executionId } = await sb.flows.execute(flow.id, { input: { topic: 'otters' } });
    await eventually(
      () => sb.flows.execution(flow.id, executionId),
      (read) => read.execution.status === 'completed',
    );

    const started = await sb.flows.replay(flow.id, executionId, {
      fromNode: 'line',
      changes: { prompt: 'Two lines: {{nodes.facts.output}}' },
    });
    expect(started).toMatchObject({ flowVersion: 2, draft: true, reusedNodes: ['facts'] });
    const events: string[] = [];
    for await (const { event } of sb.flows.events(flow.id, started.executionId))
      events.push(event.type === 'node_completed' && event.reused ? `reused:${event.nodeId}` : event.type);
    expect(events).toEqual(['execution_started', 'reused:facts', 'node_started', 'node_completed', 'execution_completed']);
    const replay = (await sb.flows.execution(flow.id, started.executionId)).execution;
    expect(replay.replayOf).toEqual({ executionId, fromNode: 'line' });
    expect(replay.nodes.map((node) => node.reused)).toEqual([true, false]);

    const streamed: string[] = [];
    const stream = sb.flows.replayStream(flow.id, executionId, {
      fromNode: 'line',
      changes: { prompt: 'Two lines: {{nodes.facts.output}}' },
    });
    for await (const { event } of stream) streamed.push(event.type);
    expect(streamed.at(-1)).toBe('execution_completed');
    expect(stream.executionId).toEqual(expect.any(String));

    expect((await sb.flows.versions.publish(flow.id, 2)).flow.publishedVersion).toBe(2);
    const refused = await sb.flows.replay(flow.id, executionId, { fromNode: 'missing' }).catch((error: unknown) => error);
    expect(isApiError(refused) && refused.status === 400 && refused.code === 'validation_failed').toBe(true);
  });
});

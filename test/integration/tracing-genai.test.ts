import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { createTextEmbedder } from '../../src/ai/embeddings';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { nextDeviceEvent } from '../support/device-events';
import { readSse } from '../support/sse';
import { userWithDevice } from '../support/user-device';
import { eventually } from '../support/wait';

/**
 * AI spans a Langfuse or Phoenix reader can follow, exported over OTLP to a local receiver: an
 * agentflow node is an `invoke_agent` span holding its `chat` model calls and an `execute_tool`
 * span per tool call (`gen_ai.tool.name`, `gen_ai.tool.call.id`); an embedding request is an
 * `embeddings` span with its model and tokens. Prompts, answers, tool arguments and results are on
 * spans only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true, and redacted then. An
 * assistant turn that parks on an approval is an `invoke_agent assistant` span for its first job
 * and another for its resume, each holding that job's model calls.
 */

const INTERNAL = 1;
const CLIENT = 3;
const PROMPT = 'Weather in Oslo please, my key is Bearer sk-abcdefghijklmnopqrstu';

describe('GenAI spans', () => {
  let receiver: OtlpReceiver;
  let target: http.Server;
  let origin: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    target = http.createServer((_req, res) => res.end(JSON.stringify({ temperature: 21 })));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
    process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
    process.env.OTEL_SERVICE_NAME = 'genai-test';
  });
  afterAll(async () => {
    for (const name of [
      'OTEL_EXPORTER_OTLP_ENDPOINT',
      'OTEL_BSP_SCHEDULE_DELAY',
      'OTEL_SERVICE_NAME',
      'OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT',
    ])
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    await receiver.close();
    await new Promise((resolve) => target.close(resolve));
  });

  /** Runs a one-node agentflow whose model calls the HTTP tool once; the spans of its trace. */
  async function runFlow(t: TestApp, user: TestUser): Promise<{ spans: ReceivedSpan[]; node: ReceivedSpan }> {
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Traced',
        definition: {
          nodes: [{ id: 'forecast', prompt: PROMPT, tools: ['weather'] }],
          output: 'forecast',
          httpTools: [{ name: 'weather', description: 'Weather', method: 'GET', url: `${origin}/weather` }],
          allowedOrigins: [origin],
        },
      },
    });
    expect(created.status).toBe(201);
    t.llm.push({ toolCalls: [{ name: 'weather', args: { query: { city: 'Oslo' } } }] }, { text: 'It is 21 degrees.' });
    const sse = await readSse(`${t.api}/flows/${created.body.flow.id}/execute/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { input: {} },
      timeoutMs: 30_000,
    });
    const executionId = sse.headers.get('x-execution-id')!;
    const node = await eventually(
      async () => receiver.spans.find((s) => s.name === 'invoke_agent forecast' && s.attributes['gen_ai.conversation.id'] === executionId),
      Boolean,
    );
    // The node's two model calls and its tool call, all in its trace.
    const spans = await eventually(
      async () => receiver.spans.filter((s) => s.traceId === node!.traceId),
      (list) =>
        list.filter((s) => s.attributes['gen_ai.operation.name'] === 'chat').length >= 2 &&
        list.some((s) => s.name === 'execute_tool weather'),
    );
    return { spans, node: node! };
  }

  const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((s) => s.parentSpanId === parent.spanId);

  test('an agentflow node: invoke_agent over its chat calls and its execute_tool call; no content by default', async () => {
    const t = await startTestApp({ env: { FLOW_HTTP_PRIVATE_ORIGINS: origin } });
    try {
      const user = await registerUser(t.api, 'Tracy');
      const { spans, node } = await runFlow(t, user);
      expect(node.kind).toBe(INTERNAL);
      expect(node.attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'forecast' });

      const chats = spans.filter((s) => s.attributes['gen_ai.operation.name'] === 'chat');
      for (const chat of chats) {
        expect(chat.kind).toBe(CLIENT);
        expect(chat.attributes).toMatchObject({
          'gen_ai.provider.name': 'scripted',
          'gen_ai.request.model': expect.any(String),
          'gen_ai.usage.input_tokens': expect.any(Number),
          'gen_ai.usage.output_tokens': expect.any(Number),
        });
        // Under the node's span (the node's job → the model call).
        expect(ancestors(spans, chat)).toContain(node.spanId);
      }
      const tool = spans.find((s) => s.name === 'execute_tool weather')!;
      expect(tool.attributes).toMatchObject({
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'weather',
        'gen_ai.tool.call.id': expect.stringMatching(/\S/),
        'gen_ai.tool.type': 'function',
        'switchboard.tool.kind': 'http',
      });
      expect(ancestors(spans, tool)).toContain(node.spanId);
      expect(childrenOf(spans, node).length).toBeGreaterThan(0);

      // Content is off by default: no prompt, answer, arguments or result anywhere.
      const all = JSON.stringify(spans);
      for (const key of ['gen_ai.input.messages', 'gen_ai.output.messages', 'gen_ai.tool.call.arguments', 'gen_ai.tool.call.result'])
        expect(all).not.toContain(key);
      expect(all).not.toContain('Oslo');

      // An embedding request is an `embeddings` client span with its model and tokens.
      const embedder = createTextEmbedder(
        { baseURL: t.llm.baseURL, apiKey: 'test', provider: 'scripted', models: [] },
        'scripted-embedding',
      );
      await embedder.embed(['first text', 'second text']);
      const embedding = await eventually(async () => receiver.spans.find((s) => s.name === 'embeddings scripted-embedding'), Boolean);
      expect(embedding!.kind).toBe(CLIENT);
      expect(embedding!.attributes).toMatchObject({
        'gen_ai.operation.name': 'embeddings',
        'gen_ai.provider.name': 'scripted',
        'gen_ai.request.model': 'scripted-embedding',
        'gen_ai.usage.input_tokens': expect.any(Number),
        'gen_ai.embeddings.input_count': 2,
      });
      expect(JSON.stringify(embedding)).not.toContain('first text');
    } finally {
      await t.stop();
    }
  });

  test('an assistant turn parked on an approval: invoke_agent assistant over its first job and over its resume', async () => {
    const t = await startTestApp();
    const devices: DeviceSimulator[] = [];
    try {
      const taskId = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
      const { user, device } = await userWithDevice(t.url, devices, {
        name: 'Turner',
        seed: { tasks: [{ id: taskId, title: 'Old report', status: 'done', priority: 'low' }] },
      });
      t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: taskId } }] }, { text: 'Deleted it.' });
      const asked = nextDeviceEvent<ApprovalRequested>(device, 'approval_requested');
      const { sessionId } = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: 'Remove the old report' })) as {
        sessionId: string;
      };
      const final = nextDeviceEvent<{ sessionId: string }>(device, 'final', (event) => event.sessionId === sessionId, 15_000);
      const approval = await asked;
      const approved = await request('PUT', `${t.api}/hitl/requests/${approval.approvalId}/approve`, { token: user.accessToken });
      expect(approved.status).toBe(200);
      await final;

      const turns = await eventually(
        async () =>
          receiver.spans.filter((s) => s.name === 'invoke_agent assistant' && s.attributes['gen_ai.conversation.id'] === sessionId),
        (list) => list.length === 2,
      );
      const chatsUnder = async (turn: ReceivedSpan) =>
        eventually(
          async () =>
            receiver.spans.filter(
              (s) =>
                s.traceId === turn.traceId &&
                s.attributes['gen_ai.operation.name'] === 'chat' &&
                ancestors(receiver.spans, s).includes(turn.spanId),
            ),
          (list) => list.length > 0,
        );
      for (const turn of turns) {
        expect(turn.kind).toBe(INTERNAL);
        expect(turn.attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'assistant' });
        // The first job's call asked for the delete; the resume's answered after it ran.
        expect(await chatsUnder(turn)).toHaveLength(1);
      }
    } finally {
      devices.forEach((device) => device.close());
      await t.stop();
    }
  });

  test('with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true: prompts, answers, arguments and results, redacted', async () => {
    process.env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = 'true';
    const t = await startTestApp({ env: { FLOW_HTTP_PRIVATE_ORIGINS: origin } });
    try {
      const user = await registerUser(t.api, 'Capture');
      const { spans } = await runFlow(t, user);
      const chats = spans.filter((s) => s.attributes['gen_ai.operation.name'] === 'chat');
      const first = chats.find((s) => String(s.attributes['gen_ai.input.messages']).includes('Weather in Oslo'))!;
      const input = JSON.parse(String(first.attributes['gen_ai.input.messages'])) as Array<{
        role: string;
        parts: Array<{ content?: string }>;
      }>;
      expect(input.map((m) => m.role)).toEqual(['system', 'user']);
      expect(input[1].parts[0].content).toBe('Weather in Oslo please, my key is [redacted]');
      const output = JSON.parse(String(first.attributes['gen_ai.output.messages']));
      expect(output).toEqual([
        {
          role: 'assistant',
          parts: [{ type: 'tool_call', id: expect.any(String), name: 'weather', arguments: expect.anything() }],
          finish_reason: expect.any(String),
        },
      ]);
      const tool = spans.find((s) => s.name === 'execute_tool weather')!;
      expect(JSON.parse(String(tool.attributes['gen_ai.tool.call.arguments']))).toEqual({ query: { city: 'Oslo' } });
      expect(String(tool.attributes['gen_ai.tool.call.result'])).toContain('"temperature":21');
      expect(JSON.stringify(spans)).not.toContain('sk-abcdefghijklmnopqrstu');
    } finally {
      await t.stop();
      delete process.env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT;
    }
  });
});

/** The span ids above `span`, nearest first. */
function ancestors(spans: ReceivedSpan[], span: ReceivedSpan): string[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const out: string[] = [];
  for (let at = span.parentSpanId; at; at = byId.get(at)?.parentSpanId) out.push(at);
  return out;
}

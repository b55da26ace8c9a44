/**
 * Drives the generated TypeScript client against a live Switchboard (test/integration/sdk-generated.test.ts),
 * which copies this file next to the generated `typescript/` folder, type-checks both with `tsc
 * --strict` and runs it with tsx:  tsx usage.ts BASE_URL
 *
 * The explicit types below are the point: they only compile if the generated ones are right.
 */
import { createClient, SwitchboardApiError, type CreateCanvasResult, type GetMeResult, type SseEvent } from './typescript/index';

const PASSWORD = 'correct horse battery';

async function errorOf(call: () => Promise<unknown>): Promise<{ status: number; code: string; message: string } | null> {
  try {
    await call();
    return null;
  } catch (error) {
    if (!(error instanceof SwitchboardApiError)) throw error;
    return { status: error.status, code: error.code, message: error.message };
  }
}

async function main(base: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const email = `ts-${Math.random().toString(36).slice(2, 10)}@example.test`;
  const client = createClient({ baseUrl: base });

  const registered = await client.auth.register(email, PASSWORD, 'TypeScript');
  out.registered = { email: registered.user.email, kept: client.token === registered.accessToken };
  const me: GetMeResult = await client.auth.getMe();
  out.me = me.user.email;

  const created: CreateCanvasResult = await client.canvases.createCanvas('From TypeScript');
  const canvasId: string = created.canvas.id;
  out.canvas = created.canvas;
  const page = await client.canvases.listCanvases({ limit: 5 });
  out.listed = page.canvases.map((c) => c.id);

  const events: SseEvent[] = [];
  const stream = await client.generations.generateStream(canvasId, 'A heading please');
  for await (const event of stream) events.push(event);
  out.generation = {
    names: events.map((e) => e.event),
    ids: events.map((e) => e.id),
    complete: events.at(-1)?.data,
    lastEventId: stream.lastEventId,
  };
  out.generationRecord = await client.generations.getGeneration(canvasId, events.at(-1)?.data.generationId);
  out.blocks = (await client.blocks.listBlocks(canvasId)).blocks.map((b) => b.content);

  const chat = await client.chat.chat('Hello from TypeScript');
  out.chat = chat;
  const chatEvents: Array<{ event: string; data: unknown }> = [];
  for await (const event of await client.chat.chatStream('And a stream', { sessionId: chat.sessionId }))
    chatEvents.push({ event: event.event, data: event.data });
  out.chatStream = chatEvents;

  // Two clients at once: the token is per client.
  const [again, other] = await Promise.all([
    createClient({ baseUrl: base }).auth.login(email, PASSWORD),
    createClient({ baseUrl: `${base}/` }).auth.register(`x${email}`, PASSWORD, 'Other'),
  ]);
  out.loginUser = again.user.id === registered.user.id && other.user.id !== registered.user.id;

  const { flow } = await client.flows.create('agentflow', 'TS brief', {
    nodes: [{ id: 'facts', prompt: 'List three facts about {{input.topic}}' }],
    output: 'facts',
  });
  const listedFlows = await client.flows.list({ limit: 10 });
  const bad = await client.flows
    .create('agentflow', 'Bad', { nodes: [{ id: 'a', prompt: 'x' }], output: 'b' })
    .catch((error: unknown) => error);
  out.flows = {
    created: { type: flow.type, name: flow.name },
    listed: listedFlows.flows.length,
    got: (await client.flows.get(flow.id)).flow.name,
    updated: (await client.flows.updateFlow(flow.id, { name: 'TS brief 2' })).flow.name,
    badPath: bad instanceof SwitchboardApiError ? (bad.details as Array<{ path: string }>)[0]?.path : null,
  };

  // A chatflow: chat (JSON) twice in one session, then streamed.
  const chatflow = (await client.flows.create('chatflow', 'TS helper', { systemPrompt: 'You are terse.' })).flow;
  const reply = await client.flows.chat(chatflow.id, 'Hi flow');
  const second = await client.flows.chat(chatflow.id, 'Again', { sessionId: reply.sessionId });
  const streamed: string[] = [];
  for await (const event of await client.flows.chatWithFlowStream(chatflow.id, 'Stream it', { sessionId: reply.sessionId }))
    streamed.push(event.event);
  out.flowChat = { response: reply.response, sameSession: second.sessionId === reply.sessionId, streamed };

  // Execute and stream (X-Execution-Id), then read the execution back with its typed nodes.
  const live = await client.flows.executeFlowStream(flow.id, { input: { topic: 'otters' } });
  const names: string[] = [];
  for await (const event of live) names.push(event.event);
  const executionId = live.headers.get('x-execution-id') ?? '';
  const { execution } = await client.flows.getExecution(flow.id, executionId);
  out.execution = {
    events: names,
    header: executionId,
    status: execution.status,
    output: execution.output,
    nodes: execution.nodes.map((node) => ({ id: node.id, status: node.status })),
    missing: await errorOf(() => client.flows.execute(flow.id, {})),
  };

  out.notFound = await errorOf(() => client.canvases.getCanvas('00000000-0000-4000-8000-000000000000'));
  out.invalid = await errorOf(() => client.canvases.createCanvas(''));
  out.anonymous = await errorOf(() => createClient({ baseUrl: base }).canvases.listCanvases());
  out.unreachable = await errorOf(() => createClient({ baseUrl: 'http://127.0.0.1:9' }).auth.getMe());
  return out;
}

main(process.argv[2]).then(
  (out) => process.stdout.write(`${JSON.stringify(out)}\n`),
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  },
);

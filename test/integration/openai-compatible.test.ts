import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { HumanMessage, type AIMessageChunk, type BaseMessage, type ToolMessage } from '@langchain/core/messages';
import type { ToolCall } from '@langchain/core/messages/tool';
import { tool } from '@langchain/core/tools';
import { z } from 'zod';
import { startDemoLLM } from '../../src/demo-model';
import { cosineSimilarity, embedText } from '../../src/demo-model/embeddings';
import type { OpenAICompatibleServer } from '../../src/demo-model/openai-compatible-server';
import { startScriptedLLM } from '../support/scripted-llm';

const servers: OpenAICompatibleServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function track<T extends OpenAICompatibleServer>(server: Promise<T>): Promise<T> {
  const started = await server;
  servers.push(started);
  return started;
}

const chatModel = (baseURL: string, maxRetries = 0): ChatOpenAI =>
  new ChatOpenAI({ apiKey: 'test', configuration: { baseURL }, model: 'demo', streaming: true, streamUsage: true, maxRetries });

/** Streams a call and concatenates the chunks, as agents do. */
async function streamAll(stream: AsyncIterable<AIMessageChunk>, onChunk?: (c: AIMessageChunk) => void): Promise<AIMessageChunk> {
  let all: AIMessageChunk | undefined;
  for await (const chunk of stream) {
    onChunk?.(chunk);
    all = all ? all.concat(chunk) : chunk;
  }
  if (!all) throw new Error('empty stream');
  return all;
}

/** The parsed `data:` payloads of a raw SSE body. */
async function sseEvents(res: Response): Promise<unknown[]> {
  const body = await res.text();
  return body
    .split('\n\n')
    .filter(Boolean)
    .map((e) => e.replace(/^data: /, ''))
    .map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
}

const post = (baseURL: string, path: string, body: unknown): Promise<Response> =>
  fetch(`${baseURL}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

test('streamed tool calls with split arguments aggregate into parsed tool_calls and usage', async () => {
  const calls = [
    { name: 'create_task', args: { title: 'Write the launch brief for the press', priority: 2 } },
    { name: 'list_tasks', args: { status: 'todo', labels: ['launch', 'press'] } },
    { name: 'delete_task', args: { id: '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab' } },
  ];
  const llm = await track(startScriptedLLM([{ text: 'On it.', toolCalls: calls }]));
  const result = await streamAll(await chatModel(llm.baseURL).stream('plan it'));

  expect(result.content).toBe('On it.');
  expect(result.tool_calls?.map((c) => ({ name: c.name, args: c.args }))).toEqual(calls);
  expect(new Set(result.tool_calls?.map((c) => c.id)).size).toBe(3);
  expect(result.usage_metadata).toMatchObject({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) });
  expect(result.usage_metadata!.total_tokens).toBe(result.usage_metadata!.input_tokens + result.usage_metadata!.output_tokens);
  expect(llm.chatRequests()[0]).toMatchObject({ model: 'demo', stream: true, stream_options: { include_usage: true } });
});

test('the SSE stream follows OpenAI chunk format, arguments split across deltas', async () => {
  const llm = await track(
    startScriptedLLM([{ toolCalls: [{ name: 'create_task', args: { title: 'A fairly long task title to split' } }] }]),
  );
  const res = await post(llm.baseURL, '/chat/completions', {
    model: 'x',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
  const events = await sseEvents(res);
  type Chunk = {
    object: string;
    choices: Array<{
      delta: { role?: string; tool_calls?: Array<{ id?: string; function: { name?: string; arguments: string } }> };
      finish_reason: string | null;
    }>;
    usage?: unknown;
  };
  const chunks = events.slice(0, -1) as Chunk[];
  expect(events.at(-1)).toBe('[DONE]');
  expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
  expect(chunks[0].choices[0].delta.role).toBe('assistant');
  const toolDeltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
  expect(toolDeltas[0]).toMatchObject({ id: expect.any(String), function: { name: 'create_task', arguments: '' } });
  expect(toolDeltas.length).toBeGreaterThan(2);
  expect(toolDeltas.slice(1).every((d) => d.id === undefined)).toBe(true);
  expect(JSON.parse(toolDeltas.map((d) => d.function.arguments).join(''))).toEqual({ title: 'A fairly long task title to split' });
  expect(chunks.at(-2)!.choices[0].finish_reason).toBe('tool_calls');
  expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) } });
});

test('the demo model builds the canvas example through bindTools with zod tools', async () => {
  const demo = await track(startDemoLLM());
  const blocks: Array<{ kind: string; value: unknown }> = [];
  const block = (kind: string) => async (value: unknown) => {
    blocks.push({ kind, value });
    return `ok: ${kind} created`;
  };
  const tools = [
    tool(block('heading'), {
      name: 'create_heading',
      description: 'Add a heading',
      schema: z.object({ text: z.string(), level: z.number().int().min(1).max(3) }),
    }),
    tool(block('todo'), { name: 'create_todo', description: 'Add a todo', schema: z.object({ text: z.string(), checked: z.boolean() }) }),
    tool(block('bullets'), {
      name: 'create_bullet_list',
      description: 'Add a bullet list',
      schema: z.object({ items: z.array(z.string()) }),
    }),
    tool(block('text'), { name: 'create_text', description: 'Add a paragraph', schema: z.object({ text: z.string() }) }),
  ];
  // One loose signature for the runner; each tool still validates its input against its zod schema.
  const byName = new Map<string, { invoke(call: ToolCall): Promise<unknown> }>(tools.map((t) => [t.name, t as never]));
  const model = chatModel(demo.baseURL).bindTools(tools);
  const messages: BaseMessage[] = [
    new HumanMessage('Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph'),
  ];

  let answer: AIMessageChunk | undefined;
  for (let round = 0; round < 4; round++) {
    answer = await streamAll(await model.stream(messages));
    messages.push(answer);
    if (!answer.tool_calls?.length) break;
    for (const call of answer.tool_calls) messages.push((await byName.get(call.name)!.invoke(call)) as ToolMessage);
  }

  expect(blocks.map((b) => b.kind)).toEqual(['heading', 'todo', 'todo', 'todo', 'text']);
  expect(blocks.slice(0, 4).map((b) => b.value)).toEqual([
    { text: 'Plan the launch', level: 1 },
    { text: 'book venue', checked: false },
    { text: 'invite press', checked: false },
    { text: 'ship beta', checked: false },
  ]);
  expect(answer?.content).toBe('Created 5 blocks (demo model).');
  expect(answer?.response_metadata.model_name).toBe('demo');
});

test('the demo model answers chat questions from tool results', async () => {
  const demo = await track(startDemoLLM());
  const listTasks = tool(
    async ({ status }) =>
      JSON.stringify([
        { title: 'Write launch brief', status },
        { title: 'Book venue', status },
      ]),
    {
      name: 'list_tasks',
      description: 'List tasks',
      schema: z.object({ status: z.enum(['todo', 'done']).optional() }),
    },
  );
  const model = chatModel(demo.baseURL).bindTools([listTasks]);
  const messages: BaseMessage[] = [new HumanMessage('how many todo tasks do I have?')];
  const first = await streamAll(await model.stream(messages));
  expect(first.tool_calls?.map((c) => [c.name, c.args])).toEqual([['list_tasks', { status: 'todo' }]]);
  messages.push(first, await listTasks.invoke(first.tool_calls![0] as never));
  const chunks: string[] = [];
  const second = await streamAll(await model.stream(messages), (c) => {
    if (c.content) chunks.push(String(c.content));
  });
  expect(second.content).toBe('You have 2 todo task(s): Write launch brief, Book venue.');
  expect(chunks.length).toBeGreaterThan(3);
});

test('a 500 error turn is retried by the client, which then succeeds', async () => {
  const llm = await track(startScriptedLLM([{ error: { status: 500, message: 'upstream exploded' } }, { text: 'recovered' }]));
  // stream(), not invoke(): invoke() on a `streaming: true` ChatOpenAI estimates tokens with tiktoken,
  // which downloads its encoding from the internet and retries for a minute when offline.
  const result = await streamAll(await chatModel(llm.baseURL, 1).stream('hello'));
  expect(result.content).toBe('recovered');
  expect(llm.chatRequests()).toHaveLength(2);
});

test('a 400 error turn is not retried and surfaces the status and message', async () => {
  const llm = await track(startScriptedLLM([{ error: { status: 400, message: 'bad things' } }]));
  const model = chatModel(llm.baseURL, 3);
  await expect((async () => streamAll(await model.stream('hello')))()).rejects.toMatchObject({
    status: 400,
    message: expect.stringContaining('bad things'),
  });
  expect(llm.chatRequests()).toHaveLength(1);
});

test('non-streaming calls get a full completion with usage', async () => {
  const llm = await track(startScriptedLLM([{ toolCalls: [{ name: 'list_notes', args: {} }] }]));
  const model = new ChatOpenAI({ apiKey: 'test', configuration: { baseURL: llm.baseURL }, model: 'gpt-test', maxRetries: 0 });
  const result = await model.invoke('notes?');
  expect(result.tool_calls?.map((c) => [c.name, c.args])).toEqual([['list_notes', {}]]);
  expect(result.usage_metadata?.total_tokens).toBeGreaterThan(0);
  expect(llm.chatRequests()[0].stream).toBeFalsy();
});

test('OpenAIEmbeddings gets deterministic demo vectors', async () => {
  const demo = await track(startDemoLLM());
  const embeddings = new OpenAIEmbeddings({ apiKey: 'test', configuration: { baseURL: demo.baseURL }, model: 'demo-embed', maxRetries: 0 });
  const [a, b, c] = await embeddings.embedDocuments(['reset my password', 'forgot password reset', 'quarterly revenue report']);
  expect(await embeddings.embedQuery('reset my password')).toEqual(a);
  expect(a).toHaveLength(256);
  // The SDK asks for base64 float32, so values match the pure function to float32 precision.
  embedText('reset my password').forEach((v, i) => expect(a[i]).toBeCloseTo(v, 6));
  expect(cosineSimilarity(a, b)).toBeGreaterThan(cosineSimilarity(a, c));
});

test('delayMs paces streamed tokens', async () => {
  const delayMs = 20;
  const demo = await track(startDemoLLM({ delayMs }));
  const stamps: number[] = [];
  const result = await streamAll(await chatModel(demo.baseURL).stream('Tell me something about the weather in Lisbon today'), (c) => {
    if (c.content) stamps.push(performance.now());
  });
  expect(String(result.content)).toMatch(/demo model/);
  expect(stamps.length).toBeGreaterThan(5);
  // Loose on purpose: timers only fire late, so the spread is at least a fraction of the pacing.
  expect(stamps.at(-1)! - stamps[0]).toBeGreaterThanOrEqual(((stamps.length - 1) * delayMs) / 2);
});

test('malformed requests get 400 in OpenAI error shape; models are listed', async () => {
  const demo = await track(startDemoLLM());
  const bad = await post(demo.baseURL, '/chat/completions', '{not json');
  expect(bad.status).toBe(400);
  expect(await bad.json()).toMatchObject({ error: { message: expect.any(String), type: 'invalid_request_error' } });
  const noMessages = await post(demo.baseURL, '/chat/completions', { model: 'demo', messages: [] });
  expect(noMessages.status).toBe(400);
  const badInput = await post(demo.baseURL, '/embeddings', { model: 'demo', input: 42 });
  expect(badInput.status).toBe(400);
  const models = await (await fetch(`${demo.baseURL}/models`)).json();
  expect(models).toMatchObject({ object: 'list', data: [{ id: 'demo', object: 'model' }] });
});

test('200 tool calls in one streamed turn stay fast', async () => {
  const toolCalls = Array.from({ length: 200 }, (_, i) => ({ name: 'create_todo', args: { text: `item number ${i}`, checked: false } }));
  const llm = await track(startScriptedLLM([{ toolCalls }]));
  const started = performance.now();
  const result = await streamAll(await chatModel(llm.baseURL).stream('go'));
  expect(result.tool_calls).toHaveLength(200);
  expect(result.tool_calls![199].args).toEqual({ text: 'item number 199', checked: false });
  expect(performance.now() - started).toBeLessThan(5_000);
});

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeviceSimulator } from '@switchboard/client/testing';
import { createTextEmbedder } from '../../src/ai/embeddings';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { testConfig } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { createCanvas, registerUser, request } from '../support/http';
import { userWithDevice as userWithDeviceOn } from '../support/user-device';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

/*
 * What goes back to a provider and what is charged, against a local HTTP server that behaves like
 * each provider where they differ from OpenAI. Each path is the real one: the chat tool loop
 * through the API and a device, a generation with a fallback configured by LLM_PROVIDERS and
 * LLM_FALLBACK, and embeddings through the embeddings queue and the real client.
 */

// Profiles. Each is one base path of the server below (`/<profile>/v1`).
//
// deepseek: thinking mode streams `reasoning_content` beside `content`; in a tool loop the next
//   request must carry that `reasoning_content` on the assistant message, else 400 "Missing
//   `reasoning_content` field in the assistant message at message index N" (DeepSeek API docs,
//   https://api-docs.deepseek.com/guides/thinking_mode#tool-calls; the error text as reported in
//   hotovo/aider-desk#529 and openai/openai-agents-js#791).
// gemini: Gemini 3 puts a thought signature on a tool call, `extra_content.google.thought_signature`
//   (only on the first of parallel calls); the next request must send it back on that call, else
//   400 INVALID_ARGUMENT "Function call is missing a thought_signature in functionCall parts"
//   (https://ai.google.dev/gemini-api/docs/thought-signatures, "OpenAI compatibility" section;
//   the error text as reported in tinyhumansai/openhuman#3548 and Gitlawb/openclaude#67).
// local (an Ollama box, kind "ollama", the deployment's first provider, so it also serves the
//   embeddings): its chat fails mid-stream with an `error` chunk after two tool calls of a
//   generation (the error-object-in-the-stream shape of OpenRouter's and vLLM's streaming errors);
//   its /embeddings answers a JSON array of floats whatever `encoding_format` asks
//   (ollama/ollama#6934; BerriAI/litellm#42426: the openai SDK asks for base64 by default and
//   decodes the float array as base64, so the vectors come out wrong).
// backup: a plain OpenAI-compatible model, the LLM_FALLBACK, reporting usage in a final chunk.

const REASONING = ['The user wants todo tasks. ', 'I will call list_tasks with status todo.'];
const SIGNATURE = 'CiQBjz1rX2thought-signature-of-call-one==';
const VECTOR = [0.25, -0.5, 1.5, 0.125];

interface ChatBody {
  model: string;
  messages: Array<Record<string, any>>;
  tools?: Array<{ function: { name: string } }>;
}

/** What the server received and answered, per profile. */
interface Received {
  profile: string;
  body: any;
  status: number;
}

function sse(res: http.ServerResponse, chunks: unknown[], end = true): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const chunk of chunks) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  if (end) res.end('data: [DONE]\n\n');
  else res.end();
}

const chunk = (model: string, delta: Record<string, unknown>, finish: string | null = null) => ({
  id: 'cmpl-1',
  object: 'chat.completion.chunk',
  model,
  choices: [{ index: 0, delta, finish_reason: finish }],
});
const usageChunk = (model: string, prompt: number, completion: number) => ({
  id: 'cmpl-1',
  object: 'chat.completion.chunk',
  model,
  choices: [],
  usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
});
const toolCall = (index: number, id: string, name: string, args: string, extra?: unknown) => ({
  index,
  id,
  type: 'function',
  function: { name, arguments: args },
  ...(extra ? { extra_content: extra } : {}),
});

function refuse(res: http.ServerResponse, status: number, error: unknown): number {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(error));
  return status;
}

const isGeneration = (body: ChatBody) => body.tools?.some((tool) => tool.function.name.startsWith('create_')) ?? false;
const hasToolResults = (body: ChatBody) => body.messages.some((message) => message.role === 'tool');

/** DeepSeek in thinking mode: answers a tool loop's follow-up only when its reasoning came back. */
function deepseek(body: ChatBody, res: http.ServerResponse): number {
  if (!hasToolResults(body)) {
    sse(res, [
      chunk(body.model, { role: 'assistant', content: null, reasoning_content: REASONING[0] }),
      chunk(body.model, { reasoning_content: REASONING[1] }),
      chunk(body.model, { tool_calls: [toolCall(0, 'call_ds_1', 'list_tasks', '{"status":')] }),
      chunk(body.model, { tool_calls: [{ index: 0, function: { arguments: '"todo"}' } }] }, 'tool_calls'),
      usageChunk(body.model, 300, 40),
    ]);
    return 200;
  }
  const index = body.messages.findIndex((message) => message.role === 'assistant' && message.tool_calls?.length);
  if (body.messages[index]?.reasoning_content !== REASONING.join(''))
    return refuse(res, 400, {
      error: {
        message: `Missing \`reasoning_content\` field in the assistant message at message index ${index}. For more information, please refer to https://api-docs.deepseek.com/guides/thinking_mode#tool-calls`,
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_request_error',
      },
    });
  sse(res, [
    chunk(body.model, { role: 'assistant', reasoning_content: 'Two rows came back.' }),
    chunk(body.model, { content: 'You have 2 todo tasks.' }, 'stop'),
    usageChunk(body.model, 420, 12),
  ]);
  return 200;
}

/** Gemini 3: two parallel calls, the first signed; the follow-up must carry the signature on that call. */
function gemini(body: ChatBody, res: http.ServerResponse): number {
  if (!hasToolResults(body)) {
    sse(res, [
      chunk(body.model, {
        role: 'assistant',
        tool_calls: [
          toolCall(0, 'function-call-1', 'list_tasks', '{"status":"todo"}', { google: { thought_signature: SIGNATURE } }),
          toolCall(1, 'function-call-2', 'list_projects', '{}'),
        ],
      }),
      chunk(body.model, {}, 'tool_calls'),
      usageChunk(body.model, 280, 30),
    ]);
    return 200;
  }
  const assistant = body.messages.find((message) => message.role === 'assistant' && message.tool_calls?.length);
  const first = assistant?.tool_calls?.find((call: { id: string }) => call.id === 'function-call-1');
  if (first?.extra_content?.google?.thought_signature !== SIGNATURE)
    return refuse(res, 400, [
      {
        error: {
          code: 400,
          message:
            'Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:list_tasks` , position 2. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.',
          status: 'INVALID_ARGUMENT',
        },
      },
    ]);
  sse(res, [chunk(body.model, { role: 'assistant', content: 'Two todo tasks, in one project.' }, 'stop'), usageChunk(body.model, 350, 9)]);
  return 200;
}

/** The local Ollama box: a generation fails after two streamed blocks; anything else is refused. */
function local(body: ChatBody, res: http.ServerResponse): number {
  if (!isGeneration(body)) return refuse(res, 503, { error: { message: 'model is loading' } });
  sse(
    res,
    [
      chunk(body.model, { role: 'assistant', tool_calls: [toolCall(0, 'call_l_1', 'create_text', '{"text":"draft one"}')] }),
      chunk(body.model, { tool_calls: [toolCall(1, 'call_l_2', 'create_text', '{"text":"draft two"}')] }),
      { error: { message: 'llama runner process has terminated', type: 'server_error', code: 500 } },
    ],
    false,
  );
  return 200;
}

/** The fallback: three blocks, then a closing line; usage in a final chunk with empty choices. */
function backup(body: ChatBody, res: http.ServerResponse): number {
  if (!isGeneration(body)) return refuse(res, 503, { error: { message: 'not for chat' } });
  if (!hasToolResults(body)) {
    sse(res, [
      chunk(body.model, {
        role: 'assistant',
        tool_calls: [
          toolCall(0, 'call_b_1', 'create_heading', '{"text":"Launch plan","level":1}'),
          toolCall(1, 'call_b_2', 'create_todo', '{"text":"Book the venue","checked":false}'),
          toolCall(2, 'call_b_3', 'create_todo', '{"text":"Invite the press","checked":false}'),
        ],
      }),
      chunk(body.model, {}, 'tool_calls'),
      usageChunk(body.model, 100, 60),
    ]);
    return 200;
  }
  sse(res, [chunk(body.model, { role: 'assistant', content: 'Created 3 blocks.' }, 'stop'), usageChunk(body.model, 150, 5)]);
  return 200;
}

/** Ollama's /v1/embeddings: floats, whatever `encoding_format` asked for; `base64` profile: always base64. */
function embeddings(body: { input: string | string[] }, res: http.ServerResponse, form: 'float' | 'base64'): number {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  const embedding = form === 'float' ? VECTOR : Buffer.from(new Float32Array(VECTOR).buffer).toString('base64');
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      object: 'list',
      data: inputs.map((_, index) => ({ object: 'embedding', index, embedding })),
      usage: { prompt_tokens: 8, total_tokens: 8 },
    }),
  );
  return 200;
}

async function startProviders(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      const [, profile, , ...rest] = (req.url ?? '').split('/');
      const body = JSON.parse(Buffer.concat(parts).toString('utf8') || '{}');
      const path = rest.join('/');
      let status: number;
      if (path === 'embeddings') status = embeddings(body, res, profile === 'base64' ? 'base64' : 'float');
      else if (profile === 'deepseek') status = deepseek(body, res);
      else if (profile === 'gemini') status = gemini(body, res);
      else if (profile === 'local') status = local(body, res);
      else if (profile === 'backup') status = backup(body, res);
      else status = refuse(res, 404, { error: { message: 'no such profile' } });
      received.push({ profile: path === 'embeddings' ? `${profile}/embeddings` : profile, body, status });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

describe('what goes back to providers and what is charged', () => {
  let providers: Awaited<ReturnType<typeof startProviders>>;
  let database: TestDatabase;
  let app: RunningSwitchboard;
  let api: string;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    providers = await startProviders();
    database = await createTestDatabase();
    const provider = (name: string, models: string[], kind?: string) => ({
      name,
      baseUrl: `${providers.url}/${name}/v1`,
      models,
      ...(kind ? { kind } : {}),
    });
    const config = testConfig({
      keyPrefix: `t-${randomUUID().slice(0, 8)}`,
      databaseUrl: database.url,
      env: {
        BROADCAST_CHUNK_DELAY_MS: '5',
        DEVICE_RPC_TIMEOUT_MS: '1000',
        EMBEDDING_MODEL: 'nomic-embed-text',
        LLM_PROVIDERS: JSON.stringify([
          provider('local', ['llama3.1:8b'], 'ollama'),
          provider('backup', ['backup-1']),
          provider('deepseek', ['deepseek-reasoner']),
          provider('gemini', ['gemini-3-pro-preview']),
        ]),
        LLM_FALLBACK: 'backup:backup-1',
        // Two prices, so a line charged to the wrong model shows in the cost.
        LLM_PRICING: JSON.stringify({
          'llama3.1:8b': { inputPerMillion: 1, outputPerMillion: 2 },
          'backup-1': { inputPerMillion: 10, outputPerMillion: 20 },
        }),
      },
    });
    app = await startSwitchboard(config, { logger: createLogger({ level: config.log.level }) });
    api = `${app.url}/api/v1`;
  }, 60_000);

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await app?.stop();
    await providers?.close();
    await database?.drop();
  }, 60_000);

  const userWithDevice = () =>
    userWithDeviceOn(app.url!, devices, {
      name: 'Roundtrip',
      seed: {
        projects: [{ id: 'p-launch', name: 'Product launch', status: 'active' }],
        tasks: [
          { title: 'Write launch brief', status: 'todo', priority: 'high', projectId: 'p-launch' },
          { title: 'Send March invoices', status: 'todo', priority: 'low' },
        ],
      },
    });

  const requestsTo = (profile: string, from: number) => providers.received.slice(from).filter((entry) => entry.profile === profile);

  test('given DeepSeek in thinking mode, the tool loop sends its reasoning back and the answer never shows it', async () => {
    const { user, device } = await userWithDevice();
    const from = providers.received.length;

    const res = await request('POST', `${api}/chat`, {
      token: user.accessToken,
      body: {
        message: 'How many todo tasks do I have?',
        deviceId: device.deviceId,
        config: { provider: 'deepseek', model: 'deepseek-reasoner' },
      },
    });

    expect(res.status).toBe(200);
    expect(res.body.response).toBe('You have 2 todo tasks.');
    expect(device.calls).toEqual([expect.objectContaining({ action: 'select', table: 'tasks' })]);
    const calls = requestsTo('deepseek', from);
    expect(calls.map((call) => call.status)).toEqual([200, 200]);
    const assistant = calls[1].body.messages.find((message: any) => message.role === 'assistant');
    expect(assistant).toMatchObject({ reasoning_content: REASONING.join(''), tool_calls: [expect.objectContaining({ id: 'call_ds_1' })] });
    // Hidden reasoning is neither answered nor stored as the conversation's text.
    const session = await request('GET', `${api}/chat/sessions/${res.body.sessionId}/history`, { token: user.accessToken });
    expect(JSON.stringify(res.body)).not.toContain('list_tasks with status');
    expect(session.status).toBe(200);
    expect(JSON.stringify(session.body)).toContain('You have 2 todo tasks.');
    expect(JSON.stringify(session.body)).not.toContain('list_tasks with status');
    expect(requestsTo('local', from)).toEqual([]);
  });

  test('given Gemini 3 with parallel calls, the thought signature goes back on its own call only', async () => {
    const { user, device } = await userWithDevice();
    const from = providers.received.length;

    const res = await request('POST', `${api}/chat`, {
      token: user.accessToken,
      body: {
        message: 'Todo tasks and projects?',
        deviceId: device.deviceId,
        config: { provider: 'gemini', model: 'gemini-3-pro-preview' },
      },
    });

    expect(res.status).toBe(200);
    expect(res.body.response).toBe('Two todo tasks, in one project.');
    const calls = requestsTo('gemini', from);
    expect(calls.map((call) => call.status)).toEqual([200, 200]);
    const assistant = calls[1].body.messages.find((message: any) => message.role === 'assistant');
    expect(assistant.tool_calls).toEqual([
      expect.objectContaining({ id: 'function-call-1', extra_content: { google: { thought_signature: SIGNATURE } } }),
      expect.not.objectContaining({ extra_content: expect.anything() }),
    ]);
    expect(assistant).not.toHaveProperty('reasoning_content');
  });

  test('given a model that fails mid-stream twice, the generation rolls back the outputs of each attempt, keeps the fallback blocks and charges each model its own tokens', async () => {
    const user = await registerUser(api, 'Generator');
    const canvasId = await createCanvas(api, user);
    const from = providers.received.length;

    const stream = await readSse(`${api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'Plan the launch' },
      until: (message) => message.event === 'complete' || message.event === 'error',
    });

    const events = stream.messages.map((message) => message.data);
    const outputs = events.filter((event) => event.type === 'tool_output').map((event) => `${event.index}:${event.block.content.text}`);
    // The failing model is asked twice (a stream that failed once open gets one more try), then the fallback answers.
    expect(outputs).toEqual([
      '0:draft one',
      '1:draft two',
      '0:draft one',
      '1:draft two',
      '0:Launch plan',
      '1:Book the venue',
      '2:Invite the press',
    ]);
    const rollbacks = events.flatMap((event, at) => (event.type === 'rollback' ? [at] : []));
    expect(rollbacks).toHaveLength(2);
    for (const at of rollbacks) expect(events[at]).toEqual({ type: 'rollback', generationId: expect.any(String), fromIndex: 0 });
    // Each rollback comes after a failed attempt's outputs, and before what follows it.
    expect(events.slice(0, rollbacks[0]).filter((event) => event.type === 'tool_output')).toHaveLength(2);
    expect(events.slice(rollbacks[0], rollbacks[1]).filter((event) => event.type === 'tool_output')).toHaveLength(2);
    const complete = events.at(-1);
    expect(complete.type).toBe('complete');
    expect(complete.blocks.map((block: any) => block.content.text)).toEqual(['Launch plan', 'Book the venue', 'Invite the press']);
    expect(requestsTo('local', from)).toHaveLength(2);

    // Each model is charged what it used: the failed one its streamed tokens (estimated), the fallback its reported usage.
    const today = new Date();
    const lines = await eventually(
      () =>
        app.repos.usage.dailyTotals({
          userId: user.id,
          from: new Date(today.getTime() - 86_400_000),
          until: new Date(today.getTime() + 86_400_000),
        }),
      (rows) => rows.length === 2,
    );
    const byModel = Object.fromEntries(lines.map((line) => [`${line.provider}:${line.model}`, line]));
    const priced = (input: number, output: number, price: { in: number; out: number }) => (input * price.in + output * price.out) / 1e6;
    expect(byModel['backup:backup-1']).toMatchObject({ inputTokens: 250, outputTokens: 65 });
    expect(byModel['backup:backup-1'].costUsd).toBeCloseTo(priced(250, 65, { in: 10, out: 20 }), 9);
    const failed = byModel['local:llama3.1:8b'];
    expect(failed.outputTokens).toBeGreaterThan(0);
    expect(failed.inputTokens).toBeGreaterThan(0);
    expect(failed.costUsd).toBeCloseTo(priced(failed.inputTokens, failed.outputTokens, { in: 1, out: 2 }), 9);
    // The generation names the model that produced its blocks and sums every model's tokens and cost.
    const generation = await request('GET', `${api}/canvases/${canvasId}/ai/generations/${complete.generationId}`, {
      token: user.accessToken,
    });
    expect(generation.body.generation.usage).toEqual({
      provider: 'backup',
      model: 'backup-1',
      inputTokens: 250 + failed.inputTokens,
      outputTokens: 65 + failed.outputTokens,
      costUsd: expect.closeTo(byModel['backup:backup-1'].costUsd + failed.costUsd, 9),
    });

    // A stream read again from the start replays both rollbacks, so a late viewer drops the same outputs.
    const replay = await readSse(`${api}/canvases/${canvasId}/ai/generations/${complete.generationId}/events`, {
      token: user.accessToken,
      until: (message) => message.event === 'complete',
    });
    expect(replay.messages.map((message) => message.event).filter((event) => event === 'rollback')).toHaveLength(2);
  });

  test('given an Ollama embeddings server that answers floats to a base64 request, the vectors are its floats', async () => {
    const user = await registerUser(api, 'Embedder');
    const from = providers.received.length;

    const res = await request('POST', `${api}/storage/vectors/embed`, { token: user.accessToken, body: { text: 'reset my password' } });

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ vector: VECTOR, model: 'nomic-embed-text', dimensions: VECTOR.length });
    expect(requestsTo('local/embeddings', from).map((call) => call.body.encoding_format)).toEqual(['float']);
  });

  test('given an endpoint that answers base64 even when asked for floats, the client decodes it', async () => {
    const embedder = createTextEmbedder(
      { baseURL: `${providers.url}/base64/v1`, apiKey: 'k', provider: 'base64', models: [] },
      'nomic-embed-text',
    );

    const batch = await embedder.embed(['one', 'two']);

    expect(batch.vectors).toEqual([VECTOR, VECTOR]);
  });
});

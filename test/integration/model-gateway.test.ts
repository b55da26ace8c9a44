import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { HumanMessage } from '@langchain/core/messages';
import { DEFAULT_PRICING } from '../../config/pricing';
import { blockTools } from '../../src/ai/block-tools';
import { ModelAuthFailedError, ModelGateway, ModelUnavailableError } from '../../src/ai/model-gateway';
import { Metrics } from '../../src/observability/metrics';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { waitUntil } from '../support/wait';

/**
 * The model gateway against real OpenAI-compatible servers over HTTP (the real openai SDK
 * client): fallback across providers, tool calls handed over as they close, cancellation that
 * closes the provider's request, usage and metrics.
 */
describe('model gateway', () => {
  const servers: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  /** A provider answering every chat request with `respond` (an event stream it writes itself). */
  const rawProvider = async (
    respond: (res: http.ServerResponse) => Promise<void>,
    head: { status: number; headers: http.OutgoingHttpHeaders } = { status: 200, headers: { 'content-type': 'text/event-stream' } },
  ) => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(head.status, head.headers);
        void respond(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    servers.push({ close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) });
    return { baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, server };
  };

  const scripted = async (...args: Parameters<typeof startScriptedLLM>): Promise<ScriptedLLM> => {
    const server = await startScriptedLLM(...args);
    servers.push(server);
    return server;
  };

  test('a provider that keeps failing falls back to the next provider of the chain, which is billed', async () => {
    const down = await scripted(() => ({ error: { status: 500, message: 'overloaded' } }));
    const up = await scripted([{ toolCalls: [{ name: 'create_text', args: { text: 'hello' } }] }]);
    const metrics = new Metrics();
    const recorded: unknown[] = [];
    const gateway = new ModelGateway(
      [
        { name: 'alpha', baseURL: down.baseURL, apiKey: 'a', models: ['a-1'] },
        { name: 'beta', baseURL: up.baseURL, apiKey: 'b', models: ['gpt-4o-mini'] },
      ],
      [
        { provider: 'alpha', model: 'a-1' },
        { provider: 'beta', model: 'gpt-4o-mini' },
      ],
      { pricing: DEFAULT_PRICING, metrics, usage: { record: async (entry) => void recorded.push(entry) } },
    );

    const turn = await gateway.streamTurn({
      purpose: 'chat',
      messages: [new HumanMessage('write hello')],
      tools: blockTools,
      account: { userId: 'u1', tier: 'pro', sessionId: 's1' },
    });

    expect(down.chatRequests().length).toBe(3); // the client's own retries, then the fallback
    expect(up.chatRequests()[0].model).toBe('gpt-4o-mini');
    expect(turn.toolCalls).toEqual([expect.objectContaining({ name: 'create_text', parsed: { text: 'hello' } })]);
    expect(turn.usage).toMatchObject({ provider: 'beta', model: 'gpt-4o-mini', estimated: false });
    expect(turn.usage.inputTokens).toBeGreaterThan(0);
    expect(turn.usage.costUsd).toBeGreaterThan(0);
    expect(recorded).toEqual([
      expect.objectContaining({ userId: 'u1', sessionId: 's1', purpose: 'chat', provider: 'beta', model: 'gpt-4o-mini' }),
    ]);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/switchboard_llm_request_seconds_count\{provider="beta",model="gpt-4o-mini",purpose="chat"\} 1/);
    expect(text).toMatch(/switchboard_llm_ttft_seconds_count\{provider="beta",model="gpt-4o-mini",purpose="chat"\} 1/);
    expect(text).toMatch(/switchboard_llm_tokens_total\{provider="beta",model="gpt-4o-mini",tier="pro",direction="input"\} [1-9]/);
  });

  test('when every model fails, the error names the chain', async () => {
    const down = await scripted(() => ({ error: { status: 400, message: 'bad request' } }));
    const gateway = ModelGateway.fromEndpoint(
      { baseURL: down.baseURL, apiKey: 'x', provider: 'solo', models: ['m1', 'm2'] },
      { pricing: {} },
    );
    await expect(gateway.streamTurn({ purpose: 'notes', messages: [new HumanMessage('hi')] })).rejects.toThrow(ModelUnavailableError);
    await expect(gateway.streamTurn({ purpose: 'notes', messages: [new HumanMessage('hi')] })).rejects.toThrow(/solo:m1, solo:m2/);
  });

  test('each tool call is handed over when its JSON closes, while the model is still streaming', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const call = (index: number, text: string) => [
      chunk({ tool_calls: [{ index, id: `call_${index}`, type: 'function', function: { name: 'create_text', arguments: '' } }] }),
      chunk({ tool_calls: [{ index, function: { arguments: '{"text":' } }] }),
      chunk({ tool_calls: [{ index, function: { arguments: ` "${text}"}` } }] }),
    ];
    const handed: Array<{ index: number; text: unknown }> = [];
    // The provider sends the second call only once the first was handed over (or 5 s passed): a
    // gateway that waited for the end of the turn would not have handed it over by then.
    let handedBeforeSecondSent = false;
    const provider = await rawProvider(async (res) => {
      res.write(chunk({ role: 'assistant', content: null }));
      for (const part of call(0, 'first')) res.write(part);
      handedBeforeSecondSent = await waitUntil(() => handed.length === 1, 5_000).then(
        () => true,
        () => false,
      );
      for (const part of call(1, 'second')) res.write(part);
      res.end(chunk({}, 'tool_calls') + 'data: [DONE]\n\n');
    });
    const gateway = ModelGateway.fromEndpoint({ baseURL: provider.baseURL, apiKey: 'x', provider: 'raw', models: ['m'] }, { pricing: {} });
    const turn = await gateway.streamTurn({
      purpose: 'generation',
      messages: [new HumanMessage('two paragraphs')],
      tools: blockTools,
      onToolCall: (toolCall, index) => handed.push({ index, text: toolCall.parsed?.text }),
    });

    expect(handedBeforeSecondSent).toBe(true);
    expect(handed).toEqual([
      { index: 0, text: 'first' },
      { index: 1, text: 'second' },
    ]);
    expect(turn.toolCalls.map((toolCall) => toolCall.id)).toEqual(['call_0', 'call_1']);
  });

  test('an aborted call closes its HTTP request to the provider and is not retried elsewhere', async () => {
    const provider = await hangingProvider();
    servers.push(provider);
    const gateway = ModelGateway.fromEndpoint(
      { baseURL: provider.baseURL, apiKey: 'x', provider: 'slow', models: ['m1', 'm2'] },
      { pricing: {} },
    );
    const controller = new AbortController();
    const turn = gateway.streamTurn({
      purpose: 'chat',
      messages: [new HumanMessage('hi')],
      signal: controller.signal,
      onText: () => controller.abort(new Error('cancelled by the user')),
    });

    await expect(turn).rejects.toThrow();
    await provider.closed;
    expect(provider.requests).toBe(1);
  });

  test('the event stream is read as SSE, whatever the byte boundaries: CRLF lines, comments, a character split across reads, a last event without [DONE]', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      JSON.stringify({
        id: 'c',
        object: 'chat.completion.chunk',
        created: 0,
        model: 'm',
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    const bytes = Buffer.from(
      `: keep-alive\r\n\r\ndata: ${chunk({ role: 'assistant', content: '' })}\r\n\r\n` +
        `data: ${chunk({ content: 'Grüße, ' })}\n\n` +
        `data: ${chunk({ content: '世界 🌍' })}\r\n\r\n` +
        `data: ${chunk({}, 'stop')}`,
    );
    // Three bytes at a time: splits lines, CRLF pairs and multi-byte characters.
    const provider = await rawProvider(async (res) => {
      for (let i = 0; i < bytes.length; i += 3) res.write(bytes.subarray(i, i + 3));
      res.end();
    });
    const gateway = ModelGateway.fromEndpoint({ baseURL: provider.baseURL, apiKey: 'x', provider: 'raw', models: ['m'] }, { pricing: {} });
    const turn = await gateway.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')] });
    expect(turn.text).toBe('Grüße, 世界 🌍');
  });

  test('a compressed event stream is decoded, and a refusal keeps its body for the error', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      JSON.stringify({
        id: 'c',
        object: 'chat.completion.chunk',
        created: 0,
        model: 'm',
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    const packed = zlib.gzipSync(
      `data: ${chunk({ role: 'assistant', content: 'packed ' })}\n\ndata: ${chunk({ content: 'and sent' })}\n\ndata: ${chunk({}, 'stop')}\n\ndata: [DONE]\n\n`,
    );
    const gzipped = await rawProvider(async (res) => void res.end(packed), {
      status: 200,
      headers: { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' },
    });
    const gateway = ModelGateway.fromEndpoint({ baseURL: gzipped.baseURL, apiKey: 'x', provider: 'gz', models: ['m'] }, { pricing: {} });
    expect((await gateway.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')] })).text).toBe('packed and sent');

    const refusing = await rawProvider(
      async (res) => void res.end(JSON.stringify({ error: { message: 'context length exceeded', type: 'invalid_request_error' } })),
      {
        status: 400,
        headers: { 'content-type': 'application/json' },
      },
    );
    const refused = ModelGateway.fromEndpoint(
      { baseURL: refusing.baseURL, apiKey: 'x', provider: 'strict', models: ['m'] },
      { pricing: {} },
    );
    const error = await refused.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelUnavailableError);
    expect(String((error as Error).message) + String((error as { cause?: unknown }).cause)).toContain('context length exceeded');
  });

  test('a finished turn hands its connection back: the next request reuses it; a body left open after [DONE] does not hold the turn', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      JSON.stringify({
        id: 'c',
        object: 'chat.completion.chunk',
        created: 0,
        model: 'm',
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    const answer = `data: ${chunk({ role: 'assistant', content: 'again' })}\n\ndata: ${chunk({}, 'stop')}\n\ndata: [DONE]\n\n`;
    let openAfterDone = false;
    const provider = await rawProvider(async (res) => void (openAfterDone ? res.write(answer) : res.end(answer)));
    const connections: Array<{ closed: Promise<void> }> = [];
    provider.server.on('connection', (socket) =>
      connections.push({ closed: new Promise((resolve) => socket.once('close', () => resolve())) }),
    );
    const gateway = ModelGateway.fromEndpoint(
      { baseURL: provider.baseURL, apiKey: 'x', provider: 'pooled', models: ['m'] },
      { pricing: {} },
    );
    const ask = () => gateway.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')] });

    expect((await ask()).text).toBe('again');
    expect((await ask()).text).toBe('again');
    expect(connections).toHaveLength(1);

    openAfterDone = true;
    expect((await ask()).text).toBe('again');
    // Its body never ends: that connection is closed instead of reused (after a short wait).
    await Promise.race([
      connections[0].closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('connection still open')), 5_000)),
    ]);
  });

  test('an error event in the stream (a provider failing after the headers) is a failed attempt: the chain falls back, and a lone model gives ModelUnavailableError', async () => {
    const failing = await rawProvider(
      async (res) => void res.end(`data: ${JSON.stringify({ error: { message: 'overloaded', type: 'server_error' } })}\n\n`),
    );
    const up = await scripted([{ text: 'from the fallback' }]);
    const gateway = new ModelGateway(
      [
        { name: 'flaky', baseURL: failing.baseURL, apiKey: 'a', models: ['f-1'] },
        { name: 'steady', baseURL: up.baseURL, apiKey: 'b', models: ['s-1'] },
      ],
      [
        { provider: 'flaky', model: 'f-1' },
        { provider: 'steady', model: 's-1' },
      ],
      { pricing: {} },
    );
    expect((await gateway.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')] })).text).toBe('from the fallback');
    const alone = ModelGateway.fromEndpoint({ baseURL: failing.baseURL, apiKey: 'a', provider: 'flaky', models: ['f-1'] }, { pricing: {} });
    await expect(alone.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')] })).rejects.toThrow(ModelUnavailableError);
  });

  test('a provider that refuses its key is not asked for its other models; another provider answers, and alone it ends llm_auth_failed', async () => {
    const locked = await scripted(() => ({ error: { status: 403, message: 'no access' } }));
    const up = await scripted([{ text: 'from the other provider' }]);
    const gateway = new ModelGateway(
      [
        { name: 'locked', baseURL: locked.baseURL, apiKey: 'bad', models: ['l-1', 'l-2'] },
        { name: 'steady', baseURL: up.baseURL, apiKey: 'good', models: ['s-1'] },
      ],
      [
        { provider: 'locked', model: 'l-1' },
        { provider: 'locked', model: 'l-2' },
        { provider: 'steady', model: 's-1' },
      ],
      { pricing: {} },
    );

    expect((await gateway.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')] })).text).toBe('from the other provider');
    expect(locked.chatRequests().map((body) => body.model)).toEqual(['l-1']);

    const alone = ModelGateway.fromEndpoint(
      { baseURL: locked.baseURL, apiKey: 'bad', provider: 'locked', models: ['l-1', 'l-2'] },
      { pricing: {} },
    );
    const error = await alone.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelAuthFailedError);
    expect(locked.chatRequests().map((body) => body.model)).toEqual(['l-1', 'l-1']);
  });

  test('a refused key is classified as LangChain classifies it and is not retried; a rate limit without Retry-After is retried with backoff', async () => {
    const locked = await scripted(() => ({ error: { status: 401, message: 'invalid api key' } }));
    const gateway = ModelGateway.fromEndpoint(
      { baseURL: locked.baseURL, apiKey: 'bad', provider: 'locked', models: ['m'] },
      { pricing: {} },
    );
    const error = await gateway.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelAuthFailedError);
    expect((error as ModelAuthFailedError).code).toBe('llm_auth_failed');
    expect((error as ModelUnavailableError).cause).toMatchObject({ status: 401, lc_error_code: 'MODEL_AUTHENTICATION' });
    expect(locked.chatRequests()).toHaveLength(1);

    // A 429 without Retry-After (many providers send none) gets the normal backoff retries before the next model.
    const busy = await scripted(() => ({ error: { status: 429, message: 'slow down' } }));
    const patient = ModelGateway.fromEndpoint({ baseURL: busy.baseURL, apiKey: 'k', provider: 'busy', models: ['m'] }, { pricing: {} });
    const limited = await patient.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')] }).catch((caught: unknown) => caught);
    expect((limited as ModelUnavailableError).cause).toMatchObject({ status: 429, lc_error_code: 'MODEL_RATE_LIMIT' });
    expect(busy.chatRequests()).toHaveLength(3);
  });

  test('a cancel while the client waits to retry ends the call at once', async () => {
    const down = await scripted(() => ({ error: { status: 500, message: 'overloaded' } }));
    const gateway = ModelGateway.fromEndpoint({ baseURL: down.baseURL, apiKey: 'x', provider: 'down', models: ['m'] }, { pricing: {} });
    const controller = new AbortController();
    const turn = gateway.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')], signal: controller.signal });
    const settled = turn.then(
      () => 'resolved',
      () => 'rejected',
    );
    await waitUntil(() => down.chatRequests().length >= 1);
    const cancelledAt = performance.now();
    controller.abort(new Error('cancelled by the user'));
    expect(await settled).toBe('rejected');
    // The backoff before the second attempt is at least a second; the cancel does not wait for it.
    expect(performance.now() - cancelledAt).toBeLessThan(500);
    expect(down.chatRequests()).toHaveLength(1);
  });

  test('a provider that reports no usage gets an estimate, flagged as such', async () => {
    const provider = await hangingProvider({ finish: true });
    servers.push(provider);
    const gateway = ModelGateway.fromEndpoint(
      { baseURL: provider.baseURL, apiKey: 'x', provider: 'quiet', models: ['m'] },
      { pricing: {} },
    );
    const turn = await gateway.streamTurn({ purpose: 'chat', messages: [new HumanMessage('a'.repeat(400))] });
    expect(turn.text).toBe('partial answer');
    expect(turn.usage).toMatchObject({ estimated: true, outputTokens: Math.ceil('partial answer'.length / 4) });
    expect(turn.usage.inputTokens).toBeGreaterThanOrEqual(100);
  });
});

/**
 * A provider that streams one text chunk and then holds the response open (or, with `finish`,
 * ends it without a usage chunk); `closed` resolves when the client closes the request.
 */
async function hangingProvider(options: { finish?: boolean } = {}) {
  let requests = 0;
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  const server = http.createServer((req, res) => {
    requests += 1;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
        `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.write(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'partial answer' }));
      if (options.finish) res.end(chunk({}, 'stop') + 'data: [DONE]\n\n');
    });
    res.on('close', () => markClosed());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    closed,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

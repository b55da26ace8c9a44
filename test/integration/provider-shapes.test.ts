import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HumanMessage } from '@langchain/core/messages';
import { blockTools } from '../../src/ai/block-tools';
import {
  ModelContentFiltered,
  ModelGateway,
  ModelOutputTruncated,
  ModelUnavailableError,
  type ModelProvider,
  type ModelRef,
} from '../../src/ai/model-gateway';
import { ModelStreamStalled } from '../../src/ai/model-stream';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request } from '../support/http';
import { MISTRAL_STREAM_OPTIONS_REFUSAL } from '../support/provider-profiles';
import { readSse } from '../support/sse';

/**
 * What real providers stream, replayed over HTTP to the real gateway (the openai SDK client, the
 * retry policy, the SSE reader): each profile below is the shape a provider is documented or
 * reported to send, and each test says what a turn makes of it.
 */

type Body = Record<string, unknown> & { messages?: Array<{ role: string; content: unknown }>; stream_options?: unknown };
/** One answer of the replay server: event-stream frames (then the end, or `hold` it open), or an error status. */
type Reply = { frames: string[]; hold?: boolean; everyMs?: number } | { status: number; body: unknown; headers?: Record<string, string> };

const frame = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
const chunk = (delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) =>
  frame({
    id: 'chatcmpl-r',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'm',
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...extra,
  });
const usageChunk = (prompt: number, completion: number) =>
  frame({ id: 'chatcmpl-r', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [], usage: usage(prompt, completion) });
const usage = (prompt: number, completion: number) => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
});
const DONE = 'data: [DONE]\n\n';
const call = (id: string, text: string, index?: number) => ({
  ...(index === undefined ? {} : { index }),
  id,
  type: 'function',
  function: { name: 'create_text', arguments: JSON.stringify({ text }) },
});

/** A plain OpenAI answer: text, stop, usage. */
const plainAnswer = (text: string): Reply => ({
  frames: [chunk({ role: 'assistant', content: '' }), chunk({ content: text }), chunk({}, 'stop'), usageChunk(10, 3), DONE],
});

const PROFILES = {
  /**
   * Ollama before 0.4.7 sent tool-call deltas without `index` (ollama/ollama#7881), each call
   * whole with its own `id`, several in one chunk; Mistral's API also sends every call whole with
   * its own id (Mistral's function-calling documentation).
   */
  wholeCallsWithoutIndex: {
    frames: [
      chunk({ role: 'assistant', content: '', tool_calls: [call('a1', 'one'), call('b2', 'two'), call('c3', 'three')] }),
      chunk({}, 'tool_calls'),
      usageChunk(20, 30),
      DONE,
    ],
  },
  /**
   * Gemini's OpenAI-compatible endpoint and Ollama 0.4.7+ give every parallel call `index: 0`,
   * one call per chunk, each with its own `id` (su-kaka/gcli2api#406, NousResearch/hermes-agent#57939,
   * ollama/ollama#15457); the last call's arguments here also continue in a chunk with no id.
   */
  sameIndexAcrossChunks: {
    frames: [
      chunk({ role: 'assistant', content: '' }),
      chunk({ tool_calls: [call('call_x', 'one', 0)] }),
      chunk({ tool_calls: [call('call_y', 'two', 0)] }),
      chunk({ tool_calls: [{ index: 0, id: 'call_z', type: 'function', function: { name: 'create_text', arguments: '{"te' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: 'xt":"three"}' } }] }),
      chunk({}, 'tool_calls'),
      DONE,
    ],
  },
  /**
   * Groq puts the usage in `x_groq.usage` of the chunk carrying `finish_reason`
   * (Groq's API reference; the last chunks quoted in Portkey-AI/gateway#1072).
   */
  groqUsage: {
    frames: [
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'Fast answer' }),
      chunk({}, 'stop', { x_groq: { id: 'req_01', usage: { ...usage(42, 7), queue_time: 0.01, total_time: 0.02 } } }),
      DONE,
    ],
  },
  /**
   * Mistral's Magistral streams `content` as a list of parts: `thinking` parts (themselves a list
   * of text parts), then `text` parts (BerriAI/litellm#16272, vercel/ai#8072).
   */
  magistralParts: {
    frames: [
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'The user greets me, ' }] }] }),
      chunk({ content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'so I greet back.' }] }] }),
      chunk({ content: [{ type: 'text', text: 'Hello' }] }),
      chunk({ content: [{ type: 'text', text: ' there' }] }),
      chunk({}, 'stop'),
      usageChunk(12, 9),
      DONE,
    ],
  },
  /** DeepSeek's reasoning models stream `reasoning_content` beside `content` (DeepSeek's API docs, "Reasoning Model"); vLLM does the same. */
  deepseekReasoning: {
    frames: [
      chunk({ role: 'assistant', content: null, reasoning_content: '' }),
      chunk({ content: null, reasoning_content: 'Nine is larger than ' }),
      chunk({ content: null, reasoning_content: 'eight.' }),
      chunk({ content: '9 is larger', reasoning_content: null }),
      chunk({ content: '.', reasoning_content: null }, 'stop'),
      usageChunk(15, 20),
      DONE,
    ],
  },
  mistralStreamOptions: MISTRAL_STREAM_OPTIONS_REFUSAL,
  /** OpenAI and Azure OpenAI end a filtered answer with `finish_reason: "content_filter"` (OpenAI's chat completion object reference). */
  contentFilter: {
    frames: [
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'Here is how' }),
      chunk({}, 'content_filter'),
      usageChunk(30, 4),
      DONE,
    ],
  },
  /** Every OpenAI-compatible server ends an answer cut at `max_tokens` with `finish_reason: "length"` (OpenAI's reference). */
  lengthCut: {
    frames: [
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'A long story that' }),
      chunk({}, 'length'),
      usageChunk(30, 5),
      DONE,
    ],
  },
} satisfies Record<string, Reply>;

/** The output limit cut the model in the middle of its second call (any provider: `finish_reason: "length"`). */
const CUT_IN_A_CALL: Reply = {
  frames: [
    chunk({ role: 'assistant', content: '', tool_calls: [call('k1', 'first', 0)] }),
    chunk({ tool_calls: [{ index: 1, id: 'k2', type: 'function', function: { name: 'create_text', arguments: '{"text":"sec' } }] }),
    chunk({}, 'length'),
    usageChunk(40, 100),
    DONE,
  ],
};

interface ReplayServer {
  baseURL: string;
  bodies: Body[];
  /** Resolves when the n-th request's connection is closed (by either side). */
  closed(n: number): Promise<void>;
  close(): Promise<void>;
}

/** A local OpenAI-compatible server answering each chat request with `reply(body, n)`. */
async function replayServer(reply: (body: Body, n: number) => Reply): Promise<ReplayServer> {
  const bodies: Body[] = [];
  const closes: Array<Promise<void>> = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (part: Buffer) => (raw += part.toString()));
    req.on('end', () => {
      if (!req.url?.endsWith('/chat/completions')) return void res.writeHead(404).end();
      const n = bodies.length;
      const body = JSON.parse(raw) as Body;
      bodies.push(body);
      closes[n] = new Promise((resolve) => res.once('close', () => resolve()));
      const answer = reply(body, n);
      if ('status' in answer) {
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
        return void res.end(JSON.stringify(answer.body));
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (!answer.everyMs) {
        res.write(answer.frames.join(''));
        if (!answer.hold) res.end();
        return;
      }
      // One frame every `everyMs`: a slow provider that keeps its stream alive.
      let next = 0;
      const timer = setInterval(() => {
        if (res.destroyed) return void clearInterval(timer);
        res.write(answer.frames[next]);
        next += 1;
        if (next === answer.frames.length) {
          clearInterval(timer);
          timers.delete(timer);
          if (!answer.hold) res.end();
        }
      }, answer.everyMs);
      timers.add(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    bodies,
    closed: (n) => closes[n],
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearInterval(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('real providers: the stream shapes they send', () => {
  const servers: ReplayServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  const replay = async (reply: Reply | ((body: Body, n: number) => Reply)) => {
    const server = await replayServer(typeof reply === 'function' ? reply : () => reply);
    servers.push(server);
    return server;
  };
  /** A gateway over the given servers, in chain order (provider `p0`, `p1`, ...). */
  const gatewayOver = (urls: string[], deps: Partial<ConstructorParameters<typeof ModelGateway>[2]> = {}) => {
    const providers: ModelProvider[] = urls.map((baseURL, i) => ({ name: `p${i}`, baseURL, apiKey: 'k', models: [`m${i}`] }));
    const chain: ModelRef[] = providers.map((provider) => ({ provider: provider.name, model: provider.models[0] }));
    return new ModelGateway(providers, chain, { pricing: {}, ...deps });
  };
  const ask = (gateway: ModelGateway, extra: Partial<Parameters<ModelGateway['streamTurn']>[0]> = {}) =>
    gateway.streamTurn({ purpose: 'chat', messages: [new HumanMessage('hi')], ...extra });

  describe('parallel tool calls that share no index', () => {
    test.each([
      ['whole, without index, all in one chunk (Ollama before 0.4.7, Mistral)', PROFILES.wholeCallsWithoutIndex, ['a1', 'b2', 'c3']],
      ['each with index 0, one per chunk (Gemini, Ollama 0.4.7+)', PROFILES.sameIndexAcrossChunks, ['call_x', 'call_y', 'call_z']],
    ])('%s: three calls are three calls, each handed over once', async (_shape, profile, ids) => {
      const server = await replay(profile);
      const handed: Array<[number, unknown]> = [];
      const started: number[] = [];
      const turn = await ask(gatewayOver([server.baseURL]), {
        tools: blockTools,
        onToolCallStart: (index) => started.push(index),
        onToolCall: (call, index) => handed.push([index, call.parsed?.text]),
      });
      expect(turn.toolCalls.map((call) => [call.id, call.name, call.parsed])).toEqual([
        [ids[0], 'create_text', { text: 'one' }],
        [ids[1], 'create_text', { text: 'two' }],
        [ids[2], 'create_text', { text: 'three' }],
      ]);
      expect(started).toEqual([0, 1, 2]);
      expect(handed).toEqual([
        [0, 'one'],
        [1, 'two'],
        [2, 'three'],
      ]);
      expect(turn.finishReason).toBe('tool_calls');
    });
  });

  test("Groq's usage in x_groq.usage is the call's usage, not an estimate", async () => {
    const server = await replay(PROFILES.groqUsage);
    const turn = await ask(gatewayOver([server.baseURL]));
    expect(turn.text).toBe('Fast answer');
    expect(turn.usage).toMatchObject({ inputTokens: 42, outputTokens: 7, estimated: false });
  });

  test('cached prompt tokens (OpenAI’s prompt_tokens_details, DeepSeek’s prompt_cache_hit_tokens) are priced at the cached rate', async () => {
    const cachedAnswer = (details: Record<string, unknown>): Reply => ({
      frames: [
        chunk({ role: 'assistant', content: '' }),
        chunk({ content: 'Cached' }),
        chunk({}, 'stop'),
        frame({
          id: 'chatcmpl-r',
          object: 'chat.completion.chunk',
          created: 0,
          model: 'm',
          choices: [],
          usage: { ...usage(1_000_000, 0), ...details },
        }),
        DONE,
      ],
    });
    const pricing = { m0: { inputPerMillion: 2, outputPerMillion: 8, cachedInputPerMillion: 0.5 } };
    const openai = await replay(cachedAnswer({ prompt_tokens_details: { cached_tokens: 600_000 } }));
    const deepseek = await replay(cachedAnswer({ prompt_cache_hit_tokens: 600_000 }));
    const plain = await replay(cachedAnswer({}));
    for (const server of [openai, deepseek]) {
      const turn = await ask(gatewayOver([server.baseURL], { pricing }));
      expect(turn.usage).toMatchObject({ inputTokens: 1_000_000, cachedInputTokens: 600_000 });
      // 400k at $2 + 600k at $0.50 a million.
      expect(turn.usage.costUsd).toBeCloseTo(0.8 + 0.3, 10);
    }
    const full = await ask(gatewayOver([plain.baseURL], { pricing }));
    expect(full.usage.cachedInputTokens).toBeUndefined();
    expect(full.usage.costUsd).toBeCloseTo(2, 10);
  });

  test("Magistral's thinking parts and DeepSeek's reasoning_content stay out of the answer", async () => {
    const magistral = await replay(PROFILES.magistralParts);
    const deepseek = await replay(PROFILES.deepseekReasoning);
    const streamed: string[] = [];
    const parts = await ask(gatewayOver([magistral.baseURL]), { onText: (text) => streamed.push(text) });
    expect(parts.text).toBe('Hello there');
    expect(streamed.join('')).toBe('Hello there');
    const reasoned = await ask(gatewayOver([deepseek.baseURL]));
    expect(reasoned.text).toBe('9 is larger.');
    expect(reasoned.usage).toMatchObject({ outputTokens: 20, estimated: false });
  });

  test('an endpoint refusing stream_options (Mistral, 422) is asked once more without it, and its next calls leave it out', async () => {
    const server = await replay((body) => (body.stream_options ? PROFILES.mistralStreamOptions : plainAnswer('Bonjour')));
    const gateway = gatewayOver([server.baseURL]);
    expect((await ask(gateway)).text).toBe('Bonjour');
    expect(server.bodies.map((body) => 'stream_options' in body)).toEqual([true, false]);
    expect((await ask(gateway)).text).toBe('Bonjour');
    expect(server.bodies.map((body) => 'stream_options' in body)).toEqual([true, false, false]);
  });

  test.each([400, 402, 403, 404, 409, 413, 422])('a %i no retry can mend is sent once, then the next model answers', async (status) => {
    const refusing = await replay({ status, body: { error: { message: 'refused', type: 'invalid_request_error' } } });
    const steady = await replay(plainAnswer('from the fallback'));
    expect((await ask(gatewayOver([refusing.baseURL, steady.baseURL]))).text).toBe('from the fallback');
    expect(refusing.bodies).toHaveLength(1);
  });

  test('a 429 without Retry-After is retried with backoff on the same model', async () => {
    const busy = await replay((_body, n) =>
      n < 2 ? { status: 429, body: { error: { message: 'Rate limit reached', type: 'rate_limit' } } } : plainAnswer('after the wait'),
    );
    const fallback = await replay(plainAnswer('never asked'));
    const turn = await ask(gatewayOver([busy.baseURL, fallback.baseURL]));
    expect(turn.text).toBe('after the wait');
    expect(busy.bodies).toHaveLength(3);
    expect(fallback.bodies).toHaveLength(0);
  });

  test('finish_reason content_filter: an error with that code, not a complete answer; its usage is accounted; no other model is tried', async () => {
    const filtered = await replay(PROFILES.contentFilter);
    const fallback = await replay(plainAnswer('never asked'));
    const recorded: Array<Record<string, unknown>> = [];
    const gateway = gatewayOver([filtered.baseURL, fallback.baseURL], { usage: { record: async (entry) => void recorded.push(entry) } });
    const error = await ask(gateway, { onRestart: () => undefined, account: { userId: 'u1', tier: 'pro' } }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ModelContentFiltered);
    expect(error).toMatchObject({ code: 'llm_content_filter' });
    expect(fallback.bodies).toHaveLength(0);
    expect(recorded).toEqual([
      expect.objectContaining({ userId: 'u1', provider: 'p0', inputTokens: 30, outputTokens: 4, estimated: false }),
    ]);
  });

  test('an answer whose usage line the caller keeps (`account.leaveLine`) hands it back unwritten; a call with tool calls, or a filtered one, is written here', async () => {
    const answer = await replay(plainAnswer('Kept for the end'));
    const calls = await replay(PROFILES.wholeCallsWithoutIndex);
    const filtered = await replay(PROFILES.contentFilter);
    const recorded: Array<Record<string, unknown>> = [];
    const counted: string[] = [];
    const deps = {
      usage: { record: async (entry: Record<string, unknown>) => void recorded.push(entry) },
      metrics: { countModelCall: ({ provider }: { provider: string }) => void counted.push(provider), observeModelCall: () => undefined },
    };
    const account = { userId: 'u1', tier: 'pro', sessionId: 's1', leaveLine: (turn: { toolCalls: unknown[] }) => !turn.toolCalls.length };

    const kept = await ask(gatewayOver([answer.baseURL], deps), { account });
    expect(kept.text).toBe('Kept for the end');
    expect(kept.unrecorded).toEqual({
      userId: 'u1',
      sessionId: 's1',
      purpose: 'chat',
      provider: 'p0',
      model: 'm0',
      inputTokens: 10,
      outputTokens: 3,
      costUsd: 0,
      estimated: false,
    });
    expect(recorded).toEqual([]);

    const round = await ask(gatewayOver([calls.baseURL], deps), { account, tools: blockTools });
    expect(round.toolCalls).toHaveLength(3);
    expect(round.unrecorded).toBeUndefined();
    expect(recorded).toEqual([expect.objectContaining({ userId: 'u1', sessionId: 's1', inputTokens: 20, outputTokens: 30 })]);

    await expect(ask(gatewayOver([filtered.baseURL], deps), { account, onRestart: () => undefined })).rejects.toBeInstanceOf(
      ModelContentFiltered,
    );
    expect(recorded).toHaveLength(2);
    expect(recorded[1]).toMatchObject({ inputTokens: 30, outputTokens: 4 });
    // Every call is counted in the metrics when it ends, its line written here or not.
    expect(counted).toEqual(['p0', 'p0', 'p0']);
  });

  test('finish_reason length: an error with llm_output_truncated naming the reason, not a cut answer; its usage is accounted; no other model is tried', async () => {
    const cut = await replay(PROFILES.lengthCut);
    const fallback = await replay(plainAnswer('never asked'));
    const recorded: Array<Record<string, unknown>> = [];
    const gateway = gatewayOver([cut.baseURL, fallback.baseURL], { usage: { record: async (entry) => void recorded.push(entry) } });
    const error = await ask(gateway, { onRestart: () => undefined, account: { userId: 'u1', tier: 'pro' } }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ModelOutputTruncated);
    expect(error).toMatchObject({ code: 'llm_output_truncated', finishReason: 'length', message: expect.stringContaining('length') });
    expect(fallback.bodies).toHaveLength(0);
    expect(recorded).toEqual([expect.objectContaining({ userId: 'u1', provider: 'p0', outputTokens: 5, estimated: false })]);
  });

  test('a stream that stalls past the idle timeout is abandoned (its request closed), asked once more, then the next model answers; alone, the call fails', async () => {
    const stalled = await replay({ frames: [chunk({ role: 'assistant', content: '' })], hold: true });
    const steady = await replay(plainAnswer('from the fallback'));
    const turn = await ask(gatewayOver([stalled.baseURL, steady.baseURL], { streamIdleTimeoutMs: 300 }));
    expect(turn.text).toBe('from the fallback');
    expect(stalled.bodies).toHaveLength(2);
    await Promise.all([stalled.closed(0), stalled.closed(1)]);

    const alone = await ask(gatewayOver([stalled.baseURL], { streamIdleTimeoutMs: 300 })).catch((caught: unknown) => caught);
    expect(alone).toBeInstanceOf(ModelUnavailableError);
    expect((alone as ModelUnavailableError).cause).toBeInstanceOf(ModelStreamStalled);
    expect(stalled.bodies).toHaveLength(4);
    await Promise.all([stalled.closed(2), stalled.closed(3)]);
  });

  test('a stream that fails once open (an error object after HTTP 200) is asked once more of the same model, which answers: its partial output is rolled back, no other model is asked, both attempts are charged', async () => {
    const midStreamError = frame({
      id: 'gen-1',
      object: 'chat.completion.chunk',
      created: 0,
      model: 'm',
      error: { code: 502, message: 'Provider returned error: upstream overloaded' },
      choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }],
    });
    const flaky = await replay((_body, n) =>
      n === 0
        ? { frames: [chunk({ role: 'assistant', content: '' }), chunk({ content: 'half an ans' }), midStreamError] }
        : plainAnswer('a whole answer'),
    );
    const fallback = await replay(plainAnswer('never asked'));
    const recorded: Array<Record<string, unknown>> = [];
    const texts: string[] = [];
    let restarts = 0;
    const turn = await ask(
      gatewayOver([flaky.baseURL, fallback.baseURL], { usage: { record: async (entry) => void recorded.push(entry) } }),
      {
        onText: (text) => texts.push(text),
        onRestart: () => (restarts += 1),
        account: { userId: 'u1', tier: 'pro' },
      },
    );

    expect(turn.text).toBe('a whole answer');
    expect(texts.join('')).toBe('half an ansa whole answer');
    expect(restarts).toBe(1);
    expect(flaky.bodies).toHaveLength(2);
    expect(fallback.bodies).toHaveLength(0);
    expect(turn.spent).toEqual([
      expect.objectContaining({ provider: 'p0', estimated: true }),
      expect.objectContaining({ provider: 'p0', inputTokens: 10, outputTokens: 3, estimated: false }),
    ]);
    expect(recorded).toHaveLength(2);
  });

  test('a stream that fails once open twice goes to the next model; without a restart hook, output already sent ends the call', async () => {
    const failing = await replay({
      frames: [chunk({ role: 'assistant', content: '' }), frame({ error: { code: 500, message: 'upstream reset' }, choices: [] })],
    });
    const fallback = await replay(plainAnswer('from the fallback'));
    const turn = await ask(gatewayOver([failing.baseURL, fallback.baseURL]));
    expect(turn.text).toBe('from the fallback');
    expect(failing.bodies).toHaveLength(2);

    const talking = await replay({
      frames: [
        chunk({ role: 'assistant', content: '' }),
        chunk({ content: 'said something' }),
        frame({ error: { code: 500, message: 'reset' }, choices: [] }),
      ],
    });
    const unasked = await replay(plainAnswer('never asked'));
    await expect(ask(gatewayOver([talking.baseURL, unasked.baseURL]))).rejects.toThrow();
    expect(talking.bodies).toHaveLength(1);
    expect(unasked.bodies).toHaveLength(0);
  });

  test('the idle timeout counts silence, not length: a slow stream that keeps sending (keep-alive comments too) completes', async () => {
    const slow = await replay({
      frames: [
        chunk({ role: 'assistant', content: '' }),
        ': keep-alive\n\n',
        chunk({ content: 'slow ' }),
        ': keep-alive\n\n',
        chunk({ content: 'but steady' }),
        chunk({}, 'stop'),
        DONE,
      ],
      everyMs: 120,
    });
    const turn = await ask(gatewayOver([slow.baseURL], { streamIdleTimeoutMs: 400 }));
    expect(turn.text).toBe('slow but steady');
  });
});

describe('real providers: a user generation end to end', () => {
  let t: TestApp;
  let provider: ReplayServer;

  beforeAll(async () => {
    // The user's prompt picks the profile; the call after tool results ends the turn.
    provider = await replayServer((body) => {
      const messages = body.messages ?? [];
      if (messages.some((message) => message.role === 'tool')) return plainAnswer('Done.');
      const prompt = JSON.stringify(messages.filter((message) => message.role === 'user'));
      if (prompt.includes('forbidden')) return PROFILES.contentFilter;
      return prompt.includes('endless') ? CUT_IN_A_CALL : PROFILES.sameIndexAcrossChunks;
    });
    t = await startTestApp({ llmBaseURL: provider.baseURL });
  });

  afterAll(async () => {
    await t.stop();
    await provider.close();
  });

  test('parallel calls with one shared index make three blocks; an answer cut at its limit ends with llm_output_truncated and keeps no blocks; a filtered answer ends with llm_content_filter', async () => {
    const user = await registerUser(t.api, 'ProviderShapes');
    const canvasId = await createCanvas(t.api, user);
    const generate = (prompt: string) =>
      readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt },
        until: (message) => message.event === 'complete' || message.event === 'error',
        timeoutMs: 30_000,
      });

    const made = await generate('Three short notes');
    expect(made.messages.at(-1)?.event).toBe('complete');
    const blocks = made.messages.at(-1)?.data.blocks as unknown[];
    expect(blocks).toHaveLength(3);
    expect(JSON.stringify(blocks)).toMatch(/one.*two.*three/);

    const cut = await generate('An endless list');
    expect(cut.messages.at(-1)).toMatchObject({
      event: 'error',
      data: { code: 'llm_output_truncated', message: expect.stringContaining('length') },
    });
    expect(cut.messages.some((message) => message.event === 'complete')).toBe(false);
    const kept = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken });
    expect(kept.body.blocks).toHaveLength(3);

    const filtered = await generate('Something forbidden');
    const last = filtered.messages.at(-1);
    expect(last?.event).toBe('error');
    expect(last?.data).toMatchObject({ code: 'llm_content_filter', message: expect.stringContaining('content filter') });
    expect(filtered.messages.some((message) => message.event === 'complete')).toBe(false);
  });

  test('a chat answer the content filter stopped is an error with llm_content_filter, not an answer', async () => {
    const user = await registerUser(t.api, 'FilteredChat');
    const answered = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'Say something forbidden' } });
    expect(answered.status).toBe(502);
    expect(answered.body.error).toMatchObject({ code: 'llm_content_filter', message: expect.stringContaining('content filter') });
    expect(answered.body).not.toHaveProperty('response');
  });
});

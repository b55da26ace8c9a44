import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { messageText, type ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { userWithDevice } from '../support/user-device';

/**
 * OpenAI's API at `/v1`, read by the official `openai` package over real HTTP against a live
 * Switchboard: the caller's chatflows and the assistant are its models; chat completions (JSON and
 * streamed, with usage) and responses (JSON and streamed) run native turns in native sessions; a
 * second user's chatflow is neither listed nor usable; bad input is an OpenAI error object, and
 * nothing is written for it.
 */

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';

describe('/v1 (OpenAI-compatible) with the openai package', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];
  /** The messages each model request carried, in order. */
  const seen: ChatRequest[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      responder: (req) => {
        seen.push(req);
        const last = req.messages.at(-1);
        if (last?.role === 'tool') return { text: 'You have one task: Old report.' };
        const said = last ? messageText(last) : '';
        if (said.includes('[tasks]')) return { toolCalls: [{ name: 'list_tasks', args: {} }] };
        return { text: `Echo: ${said}` };
      },
    });
  });
  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  /** A user's API key (scopes read and write unless given). */
  async function apiKey(user: TestUser, scopes = ['read', 'write']): Promise<string> {
    const res = await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name: `v1 ${randomUUID()}`, scopes } });
    expect(res.status).toBe(201);
    return res.body.secret as string;
  }
  const client = (key: string) => new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0 });
  async function chatflow(user: TestUser, name: string): Promise<string> {
    const res = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'chatflow', name, definition: { systemPrompt: `You are ${name}.` } },
    });
    expect(res.status).toBe(201);
    return res.body.flow.id as string;
  }
  const sessionsOf = async (user: TestUser) =>
    (await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken })).body.sessions as Array<{ id: string }>;
  const userTexts = async (user: TestUser, sessionId: string) =>
    (
      (await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: user.accessToken })).body.messages as Array<{
        role: string;
        content: string;
      }>
    )
      .filter((m) => m.role === 'user')
      .map((m) => m.content);

  test("models lists the assistant and the caller's chatflows, not another user's; retrieve answers for one", async () => {
    const ada = await registerUser(t.api, 'Ada');
    const bea = await registerUser(t.api, 'Bea');
    const mine = await chatflow(ada, 'Support Bot');
    const theirs = await chatflow(bea, 'Secret Bot');
    const agent = await request('POST', `${t.api}/flows`, {
      token: ada.accessToken,
      body: { type: 'agentflow', name: 'Agent', definition: { nodes: [{ id: 'a', prompt: 'Hi {{input.x}}' }], output: 'a' } },
    });

    const models = [];
    for await (const model of client(await apiKey(ada)).models.list()) models.push(model);

    const ids = models.map((model) => model.id);
    expect(ids).toContain('switchboard-assistant');
    expect(ids).toContain(`support-bot-${mine}`);
    expect(ids.some((id) => id.includes(theirs))).toBe(false);
    expect(agent.status).toBe(201);
    expect(ids.some((id) => id.includes(agent.body.flow.id as string))).toBe(false);
    expect(models.find((model) => model.id === `support-bot-${mine}`)).toMatchObject({
      object: 'model',
      owned_by: 'switchboard',
      name: 'Support Bot',
    });
    await expect(client(await apiKey(ada)).models.retrieve(`support-bot-${mine}`)).resolves.toMatchObject({ id: `support-bot-${mine}` });
  });

  test('a chat completion runs a chatflow turn; the next request with the conversation so far continues its session', async () => {
    const ada = await registerUser(t.api, 'Ada');
    const flowId = await chatflow(ada, 'Helper');
    const openai = client(await apiKey(ada));

    const first = await openai.chat.completions.create({ model: `helper-${flowId}`, messages: [{ role: 'user', content: 'Hello there' }] });

    expect(first.object).toBe('chat.completion');
    expect(first.model).toBe(`helper-${flowId}`);
    expect(first.choices[0]).toMatchObject({
      index: 0,
      finish_reason: 'stop',
      message: { role: 'assistant', content: 'Echo: Hello there' },
    });
    expect(first.usage!.completion_tokens).toBeGreaterThan(0);
    expect(first.usage!.total_tokens).toBe(first.usage!.prompt_tokens + first.usage!.completion_tokens);
    const sessionId = (first as unknown as { switchboard: { sessionId: string } }).switchboard.sessionId;

    const second = await openai.chat.completions.create({
      model: `helper-${flowId}`,
      messages: [
        { role: 'user', content: 'Hello there' },
        { role: 'assistant', content: first.choices[0].message.content },
        { role: 'user', content: 'And again' },
      ],
    });

    expect(second.choices[0].message.content).toBe('Echo: And again');
    expect((second as unknown as { switchboard: { sessionId: string } }).switchboard.sessionId).toBe(sessionId);
    expect(await userTexts(ada, sessionId)).toEqual(['Hello there', 'And again']);
    // The model saw the session's history from the server, the flow's own system prompt first.
    const last = seen.at(-1)!;
    expect(last.messages[0]).toMatchObject({ role: 'system' });
    expect(messageText(last.messages[0])).toContain('You are Helper.');
    expect(last.messages.map((m) => messageText(m))).toEqual(expect.arrayContaining(['Hello there', 'Echo: Hello there', 'And again']));
  });

  test('a streamed chat completion sends chunks, a usage chunk when asked, and [DONE]', async () => {
    const ada = await registerUser(t.api, 'Ada');
    const flowId = await chatflow(ada, 'Streamer');
    const stream = await client(await apiKey(ada)).chat.completions.create({
      model: `streamer-${flowId}`,
      messages: [{ role: 'user', content: 'Stream please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join('')).toBe('Echo: Stream please');
    expect(chunks.filter((chunk) => chunk.choices[0]?.finish_reason === 'stop')).toHaveLength(1);
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage!.completion_tokens).toBeGreaterThan(0);

    // Without include_usage: no usage chunk.
    const plain = await client(await apiKey(ada)).chat.completions.create({
      model: `streamer-${flowId}`,
      messages: [{ role: 'user', content: 'Once more' }],
      stream: true,
    });
    const rest = [];
    for await (const chunk of plain) rest.push(chunk);
    expect(rest.some((chunk) => chunk.usage)).toBe(false);
    expect(rest.at(-1)!.choices[0].finish_reason).toBe('stop');
  });

  test("the assistant's device tool calls stream as chunks carrying the tool events; the answer follows", async () => {
    const { user } = await userWithDevice(t.url, devices, {
      name: 'Tess',
      seed: { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] },
    });
    const stream = await client(await apiKey(user)).chat.completions.create({
      model: 'switchboard-assistant',
      messages: [{ role: 'user', content: 'What are my [tasks]?' }],
      stream: true,
    });
    const chunks = [];
    for await (const chunk of stream)
      chunks.push(chunk as unknown as { choices: Array<{ delta: { content?: string } }>; switchboard?: { type?: string; name?: string } });

    const events = chunks.flatMap((chunk) => (chunk.switchboard?.type ? [chunk.switchboard] : []));
    expect(events.map((event) => event.type)).toEqual(['tool_call', 'tool_result']);
    expect(events[0]).toMatchObject({ name: 'list_tasks' });
    expect(chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join('')).toBe('You have one task: Old report.');

    // The Responses API shows the same call as an `mcp_call` item, before the message.
    const response = await client(await apiKey(user)).responses.create({ model: 'switchboard-assistant', input: 'And my [tasks] now?' });
    expect(response.output.map((item) => item.type)).toEqual(['mcp_call', 'message']);
    expect(response.output[0]).toMatchObject({ type: 'mcp_call', server_label: 'switchboard', name: 'list_tasks', status: 'completed' });
    expect(response.output_text).toBe('You have one task: Old report.');
  });

  test('a response runs a turn (JSON and streamed); previous_response_id continues its session', async () => {
    const ada = await registerUser(t.api, 'Ada');
    const flowId = await chatflow(ada, 'Responder');
    const openai = client(await apiKey(ada));

    const first = await openai.responses.create({ model: `responder-${flowId}`, input: 'First words' });

    expect(first).toMatchObject({ object: 'response', status: 'completed', model: `responder-${flowId}` });
    expect(first.output_text).toBe('Echo: First words');
    expect(first.usage!.output_tokens).toBeGreaterThan(0);

    const stream = openai.responses.stream({ model: `responder-${flowId}`, input: 'Second words', previous_response_id: first.id });
    const types: string[] = [];
    const deltas: string[] = [];
    stream.on('response.output_text.delta', (event) => deltas.push(event.delta));
    for await (const event of stream) types.push(event.type);
    const second = await stream.finalResponse();

    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    expect(deltas.join('')).toBe('Echo: Second words');
    expect(second.output_text).toBe('Echo: Second words');
    expect(second.previous_response_id).toBe(first.id);
    const sessions = await sessionsOf(ada);
    expect(sessions).toHaveLength(1);
    expect(await userTexts(ada, sessions[0].id)).toEqual(['First words', 'Second words']);
  });

  test("another user's chatflow is model_not_found everywhere, and its session is not continued", async () => {
    const ada = await registerUser(t.api, 'Ada');
    const eve = await registerUser(t.api, 'Eve');
    const flowId = await chatflow(ada, 'Private');
    const first = await client(await apiKey(ada)).responses.create({ model: `private-${flowId}`, input: 'Mine' });
    const thief = client(await apiKey(eve));

    for (const attempt of [
      () => thief.chat.completions.create({ model: `private-${flowId}`, messages: [{ role: 'user', content: 'Yours?' }] }),
      () => thief.responses.create({ model: `private-${flowId}`, input: 'Yours?' }),
      () => thief.models.retrieve(`private-${flowId}`),
    ]) {
      await expect(attempt()).rejects.toMatchObject({
        status: 404,
        code: 'model_not_found',
        type: 'invalid_request_error',
        param: 'model',
      });
    }
    // Eve's own assistant, pointed at Ada's response: refused, nothing of Ada's read.
    await expect(
      thief.responses.create({ model: 'switchboard-assistant', input: 'Continue', previous_response_id: first.id }),
    ).rejects.toMatchObject({ status: 400, code: 'previous_response_not_found', param: 'previous_response_id' });
    const named = await request('POST', `${t.url}/v1/chat/completions`, {
      headers: { authorization: `Bearer ${await apiKey(eve)}`, 'x-chat-session-id': first.metadata!.sessionId as string },
      body: { model: 'switchboard-assistant', messages: [{ role: 'user', content: 'Continue' }] },
    });
    expect(named.status).toBe(404);
    expect(named.body.error).toMatchObject({ code: 'session_not_found', param: 'x-chat-session-id' });
    expect(await sessionsOf(eve)).toEqual([]);
  });

  test('bad input answers OpenAI error objects with the right status and writes nothing', async () => {
    const ada = await registerUser(t.api, 'Ada');
    const flowId = await chatflow(ada, 'Strict');
    const openai = client(await apiKey(ada));
    const model = `strict-${flowId}`;
    const cases: Array<[() => Promise<unknown>, number, Record<string, unknown>]> = [
      [
        () => openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] }),
        404,
        { code: 'model_not_found' },
      ],
      [() => openai.chat.completions.create({ model, messages: [] }), 400, { code: 'validation_failed', param: 'messages' }],
      [() => openai.chat.completions.create({ model, messages: [{ role: 'user', content: '   ' }] }), 400, { param: 'messages.0.content' }],
      [
        () =>
          openai.chat.completions.create({
            model,
            messages: [
              { role: 'user', content: 'Hi' },
              { role: 'assistant', content: 'Yo' },
            ],
          }),
        400,
        { param: 'messages.1.role' },
      ],
      [() => openai.chat.completions.create({ model, n: 2, messages: [{ role: 'user', content: 'Hi' }] }), 400, { param: 'n' }],
      [
        () =>
          openai.chat.completions.create({
            model,
            messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }],
          }),
        400,
        { param: 'messages.0.content.0.type' },
      ],
      [
        () => openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'x'.repeat(8_001) }] }),
        400,
        { param: 'messages.0.content' },
      ],
      [
        () => openai.responses.create({ model, input: [{ type: 'function_call_output', call_id: 'c', output: 'x' }] }),
        400,
        { param: 'input.0.type' },
      ],
      [
        () => openai.responses.create({ model, input: 'Hi', previous_response_id: 'resp_nope' }),
        400,
        { code: 'previous_response_not_found' },
      ],
    ];
    for (const [call, status, error] of cases) {
      await expect(call()).rejects.toMatchObject({ status, type: 'invalid_request_error', ...error });
    }
    const raw = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await apiKey(ada)}`, 'content-type': 'application/json' },
      body: '{"model":',
    });
    expect(raw.status).toBe(400);
    expect((await raw.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json', param: null });
    await expect(client('sb_live_not-a-key').models.list()).rejects.toMatchObject({ status: 401, type: 'authentication_error' });
    await expect(
      client(await apiKey(ada, ['read'])).chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }] }),
    ).rejects.toMatchObject({ status: 403, type: 'permission_error' });
    const unknown = await request('GET', `${t.url}/v1/embeddings`, { token: await apiKey(ada) });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ type: 'invalid_request_error', code: 'not_found' });
    expect(await sessionsOf(ada)).toEqual([]);
  });

  test("a chat front end's request (Open WebUI style: system message, extra fields, stream) streams an answer, then continues", async () => {
    const ada = await registerUser(t.api, 'Ada');
    const flowId = await chatflow(ada, 'Front');
    const key = await apiKey(ada);
    const frontEnd = (messages: unknown[]) =>
      fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({
          stream: true,
          model: `front-${flowId}`,
          messages,
          temperature: 0.7,
          top_p: 0.9,
          max_tokens: 1024,
          user: 'ada@example.test',
          metadata: { chat_id: randomUUID(), message_id: randomUUID() },
          stream_options: { include_usage: true },
          features: { web_search: false },
          params: {},
          tool_ids: [],
        }),
      });
    const read = async (res: Response) => {
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      const body = await res.text();
      const lines = body.split('\n').filter((line) => line.startsWith('data: '));
      expect(lines.at(-1)).toBe('data: [DONE]');
      const chunks = lines.slice(0, -1).map((line) => JSON.parse(line.slice(6)) as { choices: Array<{ delta: { content?: string } }> });
      return {
        text: chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join(''),
        session: res.headers.get('x-chat-session-id'),
      };
    };
    const system = { role: 'system', content: 'You are a helpful assistant. Today is Monday.' };

    const first = await read(await frontEnd([system, { role: 'user', content: [{ type: 'text', text: 'Hi from the UI' }] }]));
    expect(first.text).toBe('Echo: Hi from the UI');
    const second = await read(
      await frontEnd([
        system,
        { role: 'user', content: [{ type: 'text', text: 'Hi from the UI' }] },
        { role: 'assistant', content: first.text },
        { role: 'user', content: 'Go on' },
      ]),
    );

    expect(second.text).toBe('Echo: Go on');
    expect(second.session).toBe(first.session);
    expect(await userTexts(ada, first.session!)).toEqual(['Hi from the UI', 'Go on']);
  });
});

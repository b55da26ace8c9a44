import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { MAX_NODE_OUTPUT_CHARS, MAX_RENDERED_PROMPT_CHARS, MAX_TEMPLATE_REFS, TRUNCATED_MARK } from '../../src/flows/definition';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';

/**
 * One user's flow must not stall or flood the service: no user regular expression runs on a
 * model's answer, prompts cannot amplify an input without bound, node outputs are bounded.
 */

/** A pattern that backtracks exponentially on `aaaa…!` in a backtracking engine. */
const EVIL_PATTERN = '^(a|a)*$';
const EVIL_ANSWER = JSON.stringify({ word: `${'a'.repeat(40)}!` });
const tagOf = (req: ChatRequest) =>
  /^\[([\w-]+)\]/.exec(messageText(req.messages.find((m) => m.role === 'user') ?? { content: '' }))?.[1] ?? '?';

describe('flow abuse', () => {
  let t: TestApp;
  let ada: TestUser;
  let answer: (tag: string) => ChatTurn = (tag) => ({ text: `out(${tag})` });

  beforeAll(async () => {
    t = await startTestApp({ responder: (req) => answer(tagOf(req)) });
    ada = await registerUser(t.api, 'Ada');
  }, 60_000);
  afterAll(() => t.stop());

  const save = (definition: unknown) =>
    request('POST', `${t.api}/flows`, { token: ada.accessToken, body: { type: 'agentflow', name: 'Flow', definition } });
  const modelCalls = (tag: string) => t.llm.chatRequests().filter((req) => tagOf(req) === tag).length;

  test('an outputSchema with pattern or patternProperties is refused at save, wherever it is nested', async () => {
    const nested = await save({
      nodes: [
        { id: 'a', prompt: '[re1] hi', outputSchema: { type: 'object', properties: { word: { type: 'string', pattern: EVIL_PATTERN } } } },
      ],
      output: 'a',
    });
    expect(nested.status).toBe(400);
    expect(nested.body.error.code).toBe('validation_failed');
    expect(nested.body.error.details[0].path).toBe('definition.nodes.0.outputSchema.properties.word.pattern');

    const props = await save({
      nodes: [{ id: 'a', prompt: '[re1] hi', outputSchema: { type: 'object', patternProperties: { '^(a|a)*$': { type: 'string' } } } }],
      output: 'a',
    });
    expect(props.status).toBe(400);
    expect(props.body.error.details[0].path).toBe('definition.nodes.0.outputSchema.patternProperties');

    // A property merely named "pattern" is a name, not the keyword.
    const named = await save({
      nodes: [{ id: 'a', prompt: '[re1] hi', outputSchema: { type: 'object', properties: { pattern: { type: 'string' } } } }],
      output: 'a',
    });
    expect(named.status).toBe(201);
  });

  test('a flow stored with a pattern before they were refused is refused at execute, before any model call', async () => {
    const created = await save({
      nodes: [{ id: 'a', prompt: '[re2] word', outputSchema: { type: 'object', properties: { word: { type: 'string' } } } }],
      output: 'a',
    });
    expect(created.status).toBe(201);
    const flowId = created.body.flow.id as string;
    // As an older release stored it: straight into the table, past today's checks.
    await t.app.repos.flows.update(ada.id, flowId, {
      definition: {
        nodes: [
          {
            id: 'a',
            prompt: '[re2] word',
            outputSchema: { type: 'object', properties: { word: { type: 'string', pattern: EVIL_PATTERN } } },
          },
        ],
        output: 'a',
      },
    });
    answer = () => ({ text: EVIL_ANSWER });
    const res = await request('POST', `${t.api}/flows/${flowId}/execute`, { token: ada.accessToken, body: { input: {} } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details[0].path).toBe('definition.nodes.0.outputSchema.properties.word.pattern');
    expect(modelCalls('re2')).toBe(0);
  });

  test(`a prompt holds at most ${MAX_TEMPLATE_REFS} references`, async () => {
    const prompt = `[amp] ${'{{input.text}} '.repeat(MAX_TEMPLATE_REFS + 1)}`;
    const res = await save({ nodes: [{ id: 'a', prompt }], output: 'a' });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0]).toMatchObject({ path: 'definition.nodes.0.prompt' });
    expect(res.body.error.details[0].message).toContain(`at most ${MAX_TEMPLATE_REFS}`);
    expect((await save({ nodes: [{ id: 'a', prompt: `[amp] ${'{{input.text}} '.repeat(MAX_TEMPLATE_REFS)}` }], output: 'a' })).status).toBe(
      201,
    );
  });

  test('an input the templates would amplify past the prompt limit is a 400 prompt_too_large, and the model is never called', async () => {
    const created = await save({ nodes: [{ id: 'a', prompt: `[amp2] ${'{{input.text}} '.repeat(MAX_TEMPLATE_REFS)}` }], output: 'a' });
    const flowId = created.body.flow.id as string;
    const text = 'x'.repeat(Math.ceil(MAX_RENDERED_PROMPT_CHARS / MAX_TEMPLATE_REFS) + 10);
    const res = await request('POST', `${t.api}/flows/${flowId}/execute`, { token: ada.accessToken, body: { input: { text } } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('prompt_too_large');
    expect(res.body.error.details).toMatchObject({ nodeId: 'a', max: MAX_RENDERED_PROMPT_CHARS });
    expect(modelCalls('amp2')).toBe(0);

    const huge = await request('POST', `${t.api}/flows/${flowId}/execute`, {
      token: ada.accessToken,
      body: { input: { text: 'y'.repeat(40_000) } },
    });
    expect(huge.status).toBe(400);
    expect(huge.body.error.code).toBe('input_too_large');
  });

  test('a text answer longer than a node output may be is stored and streamed cut, and says so', async () => {
    answer = (tag) => ({ text: tag === 'long' ? 'z'.repeat(MAX_NODE_OUTPUT_CHARS + 5_000) : `out(${tag})` });
    const created = await save({
      nodes: [
        { id: 'a', prompt: '[long] talk' },
        { id: 'b', prompt: '[next] {{nodes.a.output}}', dependsOn: ['a'] },
      ],
      output: 'b',
    });
    const flowId = created.body.flow.id as string;
    const sse = await readSse(`${t.api}/flows/${flowId}/execute/stream`, {
      method: 'POST',
      token: ada.accessToken,
      body: { input: {} },
      timeoutMs: 30_000,
    });
    const done = sse.messages.find((m) => m.event === 'node_completed' && m.data.nodeId === 'a')!;
    expect(done.data.truncated).toBe(true);
    expect(done.data.output).toHaveLength(MAX_NODE_OUTPUT_CHARS);
    expect((done.data.output as string).endsWith(TRUNCATED_MARK)).toBe(true);
    const next = sse.messages.find((m) => m.event === 'node_completed' && m.data.nodeId === 'b')!;
    expect(next.data.truncated).toBeUndefined();
    expect(sse.messages.at(-1)!.event).toBe('execution_completed');
    const executionId = sse.headers.get('x-execution-id')!;
    const read = await request('GET', `${t.api}/flows/${flowId}/executions/${executionId}`, { token: ada.accessToken });
    const stored = (read.body.execution.nodes as Array<{ id: string; output: string }>).find((n) => n.id === 'a')!;
    expect(stored.output).toHaveLength(MAX_NODE_OUTPUT_CHARS);
  });

  test("a node whose ancestors' outputs would fill its prompt past the limit fails prompt_too_large without a model call", async () => {
    answer = (tag) => ({ text: tag === 'big' ? 'w'.repeat(MAX_NODE_OUTPUT_CHARS) : `out(${tag})` });
    const created = await save({
      nodes: [
        { id: 'a', prompt: '[big] talk' },
        { id: 'b', prompt: `[amp3] ${'{{nodes.a.output}} '.repeat(MAX_TEMPLATE_REFS)}`, dependsOn: ['a'] },
      ],
      output: 'b',
    });
    const flowId = created.body.flow.id as string;
    const sse = await readSse(`${t.api}/flows/${flowId}/execute/stream`, {
      method: 'POST',
      token: ada.accessToken,
      body: { input: {} },
      timeoutMs: 30_000,
    });
    const failed = sse.messages.find((m) => m.event === 'node_failed')!;
    expect(failed.data).toMatchObject({ nodeId: 'b', error: { code: 'prompt_too_large' } });
    expect(sse.messages.at(-1)!.event).toBe('execution_failed');
    expect(modelCalls('amp3')).toBe(0);
  });
});

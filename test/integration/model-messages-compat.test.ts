import { AIMessage, HumanMessage, SystemMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { ModelGateway } from '../../src/ai/model-gateway';
import { assistantMessage, historyMessages, systemMessage, toolResultMessage, userMessage } from '../../src/ai/model-messages';
import { loadContinuation, storeContinuation, type StoredContinuation } from '../../src/turns/continuation';
import { TOOLS_BY_NAME } from '../../src/turns/device-tools';
import { modelTools } from '../../src/turns/offered-tools';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';

/**
 * Callers outside src/ai build conversations with the gateway's vocabulary instead of LangChain's
 * classes. The switch must not change what the model receives (each request body is compared as
 * sent, in order and key for key), and a turn parked before the switch (its messages stored as
 * LangChain's JSON in `hitl_requests.continuation`) must still resume.
 */
describe('the model vocabulary keeps the requests and stored turns of LangChain-built conversations', () => {
  let llm: ScriptedLLM | undefined;
  afterEach(async () => {
    await llm?.close();
    llm = undefined;
  });

  const gatewayFor = (server: ScriptedLLM) =>
    ModelGateway.fromEndpoint({ baseURL: server.baseURL, apiKey: 'x', provider: 'scripted', models: ['m'] }, { pricing: {} });

  /** A tool round as the assistant's loop builds it: a valid call, a call whose arguments did not parse, their results, the wrap-up. */
  const legacyRound = (): BaseMessage[] => [
    new SystemMessage('You manage tasks.'),
    new HumanMessage('hello'),
    new AIMessage('Hi! What should I do?'),
    new HumanMessage('Delete task t1 and rename t2.'),
    new AIMessage({
      content: 'On it.',
      tool_calls: [{ id: 'call_a', name: 'delete_task', args: { task_id: 't1' }, type: 'tool_call' }],
      invalid_tool_calls: [
        { id: 'call_0_1', name: 'update_task', args: '{"task_id":', error: 'arguments are not valid JSON', type: 'invalid_tool_call' },
      ],
    }),
    new ToolMessage({ content: 'Task t1 deleted.', tool_call_id: 'call_a', status: 'success' }),
    new ToolMessage({ content: 'Error: the arguments of update_task were not valid JSON.', tool_call_id: 'call_0_1', status: 'error' }),
    new SystemMessage('Answer now.'),
  ];
  const round = () => [
    systemMessage('You manage tasks.'),
    ...historyMessages([
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'Hi! What should I do?' },
    ]),
    userMessage('Delete task t1 and rename t2.'),
    assistantMessage('On it.', [
      { id: 'call_a', name: 'delete_task', args: '{"task_id":"t1"}', parsed: { task_id: 't1' } },
      { id: 'call_0_1', name: 'update_task', args: '{"task_id":' },
    ]),
    toolResultMessage('call_a', 'Task t1 deleted.'),
    toolResultMessage('call_0_1', 'Error: the arguments of update_task were not valid JSON.', 'error'),
    systemMessage('Answer now.'),
  ];

  test('given the same conversation and tools built both ways, the provider receives byte-identical requests', async () => {
    llm = await startScriptedLLM([{ text: 'one' }, { text: 'two' }]);
    const gateway = gatewayFor(llm);
    const catalog = ['delete_task', 'update_task'].map((name) => TOOLS_BY_NAME.get(name)!);
    const legacyTools = catalog.map((t) => tool(async () => '', { name: t.name, description: t.description, schema: t.schema }));

    await gateway.streamTurn({ purpose: 'chat', messages: legacyRound(), tools: legacyTools });
    await gateway.streamTurn({ purpose: 'chat', messages: round(), tools: modelTools(catalog) });

    const [legacy, current] = llm.chatRequests();
    expect(current.messages.map((message) => message.role)).toEqual([
      'system',
      'user',
      'assistant',
      'user',
      'assistant',
      'tool',
      'tool',
      'system',
    ]);
    expect(current.tools).toHaveLength(2);
    expect(JSON.stringify(current)).toBe(JSON.stringify(legacy));
  }, 60_000);

  /** A parked turn exactly as the worker stored it while the assistant built LangChain messages itself. */
  const legacyContinuation = (): StoredContinuation =>
    JSON.parse(
      JSON.stringify({
        version: 1,
        messages: [
          { type: 'system', data: { content: 'You manage tasks.', additional_kwargs: {}, response_metadata: {} } },
          { type: 'human', data: { content: 'hello', additional_kwargs: {}, response_metadata: {} } },
          {
            type: 'ai',
            data: {
              content: 'Hi! What should I do?',
              tool_calls: [],
              invalid_tool_calls: [],
              additional_kwargs: {},
              response_metadata: {},
            },
          },
          { type: 'human', data: { content: 'Delete task t1 and rename t2.', additional_kwargs: {}, response_metadata: {} } },
          {
            type: 'ai',
            data: {
              content: 'On it.',
              tool_calls: [{ id: 'call_a', name: 'delete_task', args: { task_id: 't1' }, type: 'tool_call' }],
              invalid_tool_calls: [
                {
                  id: 'call_0_1',
                  name: 'update_task',
                  args: '{"task_id":',
                  error: 'arguments are not valid JSON',
                  type: 'invalid_tool_call',
                },
              ],
              additional_kwargs: {},
              response_metadata: {},
            },
          },
          {
            type: 'tool',
            data: { content: 'Task t1 deleted.', tool_call_id: 'call_a', status: 'success', additional_kwargs: {}, response_metadata: {} },
          },
          {
            type: 'tool',
            data: {
              content: 'Error: the arguments of update_task were not valid JSON.',
              tool_call_id: 'call_0_1',
              status: 'error',
              additional_kwargs: {},
              response_metadata: {},
            },
          },
          { type: 'system', data: { content: 'Answer now.', additional_kwargs: {}, response_metadata: {} } },
        ],
        calls: [{ id: 'call_b', name: 'update_task', args: { task_id: 't2', title: 'Renamed' }, index: 2 }],
        iteration: 0,
        response: 'On it.',
        toolCalls: 2,
        agents: ['task'],
        usage: { provider: 'scripted', model: 'm', inputTokens: 10, outputTokens: 3, costUsd: 0 },
      }),
    ) as StoredContinuation;

  test('given a continuation stored in the LangChain form, it loads and the model receives the same conversation as a fresh one', async () => {
    llm = await startScriptedLLM([{ text: 'fresh' }, { text: 'resumed' }]);
    const gateway = gatewayFor(llm);
    const stored = legacyContinuation();

    const { parked, toolsets, usage } = loadContinuation(stored);
    await gateway.streamTurn({ purpose: 'chat', messages: round() });
    await gateway.streamTurn({ purpose: 'chat', messages: parked.messages });

    expect(toolsets).toEqual(['task']);
    expect(usage).toEqual(stored.usage);
    expect(parked.calls).toEqual(stored.calls);
    const [fresh, resumed] = llm.chatRequests();
    expect(JSON.stringify(resumed)).toBe(JSON.stringify(fresh));
  }, 60_000);

  test('given a parked turn built with the vocabulary, it is stored as the same JSON as the LangChain form', () => {
    const stored = storeContinuation(
      { messages: round(), calls: legacyContinuation().calls, iteration: 0, response: 'On it.', toolCalls: 2 },
      ['task'],
      legacyContinuation().usage,
    );

    expect(JSON.stringify(stored.messages)).toBe(JSON.stringify(legacyContinuation().messages));
  });
});

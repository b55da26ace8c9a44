import { z } from 'zod';
import { ModelGateway } from '../../src/ai/model-gateway';
import {
  assistantMessage,
  historyMessages,
  loadMessages,
  storeMessages,
  systemMessage,
  toolResultMessage,
  userMessage,
} from '../../src/ai/model-messages';
import { offeredTool } from '../../src/ai/model-tools';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';

/**
 * The gateway's own message and tool vocabulary (src/ai/model-messages.ts, model-tools.ts): what
 * callers outside src/ai build conversations with. Checked on the wire, as a real
 * OpenAI-compatible server receives it, and through the JSON a parked turn is stored as.
 */
describe('model messages and offered tools', () => {
  let llm: ScriptedLLM | undefined;
  afterEach(async () => {
    await llm?.close();
    llm = undefined;
  });

  const lookup = offeredTool({
    name: 'lookup_order',
    description: 'Finds an order by its number.',
    schema: z.object({ order: z.string().describe('The order number') }),
  });

  /** A conversation with every kind of message: a valid and an invalid tool call, and both results. */
  const conversation = () => [
    systemMessage('You answer questions about orders.'),
    ...historyMessages([
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'Hi! Which order?' },
    ]),
    userMessage('Where is order 42?'),
    assistantMessage('Looking it up.', [
      { id: 'call_ok', name: 'lookup_order', args: '{"order":"42"}', parsed: { order: '42' } },
      { id: 'call_bad', name: 'lookup_order', args: '{"order":' },
    ]),
    toolResultMessage('call_ok', 'Order 42 ships tomorrow.'),
    toolResultMessage('call_bad', 'Error: arguments are not valid JSON', 'error'),
  ];

  test('given a conversation built with them, the provider receives each role, the tool calls and results, and the offered tool', async () => {
    llm = await startScriptedLLM([{ text: 'It ships tomorrow.' }]);
    const gateway = ModelGateway.fromEndpoint({ baseURL: llm.baseURL, apiKey: 'x', provider: 'scripted', models: ['m'] }, { pricing: {} });

    const turn = await gateway.streamTurn({ purpose: 'chat', messages: conversation(), tools: [lookup] });

    expect(turn.text).toBe('It ships tomorrow.');
    const [request] = llm.chatRequests();
    expect(request.messages.map((message) => message.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant', 'tool', 'tool']);
    expect(request.messages[0]).toMatchObject({ content: 'You answer questions about orders.' });
    expect(request.messages[2]).toMatchObject({ content: 'Hi! Which order?' });
    const called = request.messages[4] as {
      content: string;
      tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>;
    };
    expect(called.content).toBe('Looking it up.');
    // The call that did not parse is not sent back as a call the model made: only its result says why.
    expect(called.tool_calls).toEqual([
      expect.objectContaining({ id: 'call_ok', function: { name: 'lookup_order', arguments: '{"order":"42"}' } }),
    ]);
    expect(request.messages[5]).toMatchObject({ tool_call_id: 'call_ok', content: 'Order 42 ships tomorrow.' });
    expect(request.messages[6]).toMatchObject({ tool_call_id: 'call_bad', content: 'Error: arguments are not valid JSON' });
    expect(request.tools).toEqual([
      expect.objectContaining({
        type: 'function',
        function: expect.objectContaining({
          name: 'lookup_order',
          description: 'Finds an order by its number.',
          parameters: expect.objectContaining({ properties: { order: expect.objectContaining({ type: 'string' }) } }),
        }),
      }),
    ]);
  }, 60_000);

  test('given a conversation stored as JSON and loaded again, the provider receives the same request', async () => {
    llm = await startScriptedLLM([{ text: 'first' }, { text: 'second' }]);
    const gateway = ModelGateway.fromEndpoint({ baseURL: llm.baseURL, apiKey: 'x', provider: 'scripted', models: ['m'] }, { pricing: {} });
    const stored = JSON.parse(JSON.stringify(storeMessages(conversation()))) as ReturnType<typeof storeMessages>;

    await gateway.streamTurn({ purpose: 'chat', messages: conversation() });
    await gateway.streamTurn({ purpose: 'chat', messages: loadMessages(stored) });

    const [original, resumed] = llm.chatRequests();
    expect(resumed.messages).toEqual(original.messages);
  }, 60_000);
});

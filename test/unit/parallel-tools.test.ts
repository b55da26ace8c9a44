import type { ChatTool } from '../../src/demo-model/openai-compatible-server';
import { chatToolsTurn, pickToolCalls } from '../../src/demo-model/chat-tools';
import { inOrderLimited } from '../../src/turns/tool-loop';

const tool = (name: string, properties: Record<string, unknown> = {}): ChatTool => ({
  type: 'function',
  function: { name, parameters: { type: 'object', properties } },
});
const TOOLS = [
  tool('list_tasks', { status: { type: 'string', enum: ['todo', 'in_progress', 'done'] } }),
  tool('delete_task', { task_id: { type: 'string' } }),
  tool('list_projects', {}),
];
const A = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const B = '7c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f';

describe('the demo model asks for several tools in one turn', () => {
  test('one call per `;`-separated request, in the order of the message, each with its own arguments', () => {
    expect(pickToolCalls(`Delete task ${A}; delete task ${B}`, TOOLS)).toEqual([
      { name: 'delete_task', args: { task_id: A } },
      { name: 'delete_task', args: { task_id: B } },
    ]);
    const turn = chatToolsTurn({
      model: 'demo',
      messages: [{ role: 'user', content: 'How many todo tasks do I have; list my projects' }],
      tools: TOOLS,
    });
    expect(turn.toolCalls).toEqual([
      { name: 'list_tasks', args: { status: 'todo' } },
      { name: 'list_projects', args: {} },
    ]);
  });

  test('a message without `;`, or with fewer than two requests that match a tool, stays one call', () => {
    expect(pickToolCalls(`Delete task ${A} and task ${B}`, TOOLS)).toBeUndefined();
    expect(pickToolCalls('How many todo tasks do I have; thanks', TOOLS)).toBeUndefined();
    const turn = chatToolsTurn({ model: 'demo', messages: [{ role: 'user', content: 'How many todo tasks; thanks' }], tools: TOOLS });
    expect(turn.toolCalls).toEqual([{ name: 'list_tasks', args: { status: 'todo' } }]);
  });
});

describe('inOrderLimited', () => {
  test('starts in order, never more than the limit at once, and answers in item order whatever finishes first', async () => {
    const started: number[] = [];
    let running = 0;
    let peak = 0;
    const gates = new Map<number, () => void>();
    const results = inOrderLimited(
      [0, 1, 2, 3, 4],
      2,
      (item) =>
        new Promise<string>((resolve) => {
          started.push(item);
          running += 1;
          peak = Math.max(peak, running);
          gates.set(item, () => ((running -= 1), resolve(`r${item}`)));
        }),
      () => 'stopped',
    );
    // Finish in reverse of what is running each time: later items overtake earlier ones.
    const finish = async (item: number) => {
      while (!gates.has(item)) await new Promise((resolve) => setImmediate(resolve));
      gates.get(item)!();
    };
    await finish(1);
    await finish(0);
    await finish(3);
    await finish(2);
    await finish(4);
    expect(await results).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(peak).toBe(2);
  });

  test('after an abort, items not started yet are not started', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const results = await inOrderLimited(
      [0, 1, 2],
      1,
      async (item) => {
        started.push(item);
        controller.abort();
        return `r${item}`;
      },
      (item) => `stopped ${item}`,
      controller.signal,
    );
    expect(started).toEqual([0]);
    expect(results).toEqual(['r0', 'stopped 1', 'stopped 2']);
  });
});

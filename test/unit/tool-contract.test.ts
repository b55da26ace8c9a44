import { z } from 'zod';
import { dangerousToolPolicy } from '../../src/turns/approvals';
import { DEVICE_TOOL_NAMES, asksByContract, toolContract } from '../../src/turns/tool-contract';
import { runToolCall, type ToolCallPipeline } from '../../src/turns/tool-call';
import { allowAllPolicy } from '../../src/turns/tool-policy';
import { CODE_TOOLS } from '../../src/coding/code-tools';
import { PLAN_TOOL } from '../../src/coding/coding-plan';

describe('one tool contract', () => {
  test('every device and coding tool declares its executor and risk; what asks first follows from them', () => {
    for (const name of DEVICE_TOOL_NAMES) {
      expect({ name, contract: toolContract(name) }).toEqual({
        name,
        contract: {
          executor: 'device',
          risk: /^(list|get)_/.test(name) ? 'read' : 'write',
          asks: name.startsWith('delete_'),
        },
      });
    }
    const code = Object.fromEntries(CODE_TOOLS.map((tool) => [tool.name, toolContract(tool.name)]));
    expect(code).toEqual({
      read_file: { executor: 'device', risk: 'read', asks: false },
      list_files: { executor: 'device', risk: 'read', asks: false },
      search_files: { executor: 'device', risk: 'read', asks: false },
      write_file: { executor: 'device', risk: 'write', asks: true },
      edit_file: { executor: 'device', risk: 'write', asks: true },
      delete_file: { executor: 'device', risk: 'write', asks: true },
      execute_command: { executor: 'device', risk: 'execute', asks: true },
    });
  });

  test('MCP, HTTP and server tools take their contract from the turn’s offer; an unknown name has none', () => {
    const context = {
      mcpAsks: new Set(['mcp__shop__order']),
      mcpReadOnly: new Set(['mcp__shop__lookup']),
      httpTools: [
        { name: 'fetch', method: 'get', url: 'https://example.com' },
        { name: 'post', method: 'POST', url: 'https://example.com' },
      ],
      serverTools: new Set([PLAN_TOOL.name]),
    };
    expect(toolContract('mcp__shop__order', context)).toEqual({ executor: 'mcp', risk: 'write', asks: true });
    expect(toolContract('mcp__shop__lookup', context)).toEqual({ executor: 'mcp', risk: 'read', asks: false });
    expect(toolContract('fetch', context)).toEqual({ executor: 'http', risk: 'read', asks: false });
    expect(toolContract('post', context)).toEqual({ executor: 'http', risk: 'send', asks: false });
    expect(toolContract(PLAN_TOOL.name, context)).toEqual({ executor: 'server', risk: 'read', asks: false });
    expect(toolContract('delete_everything')).toBeUndefined();
    // A name that only looks like a device deletion is not one: no contract, nothing asks by default.
    expect(asksByContract('delete_everything')).toBe(false);
  });

  test('the operator’s list widens what asks first and never narrows it', () => {
    const policy = dangerousToolPolicy(['create_task']);
    expect(['create_task', 'delete_task', 'write_file', 'execute_command', 'list_tasks', 'read_file'].filter(policy.isDangerous)).toEqual([
      'create_task',
      'delete_task',
      'write_file',
      'execute_command',
    ]);
    expect(['create_task', 'delete_task', 'write_file'].filter(allowAllPolicy.isDangerous)).toEqual(['delete_task', 'write_file']);
  });
});

describe('one tool-call pipeline', () => {
  /** A pipeline whose steps record themselves; `overrides` changes one step. */
  function pipeline(overrides: Partial<ToolCallPipeline<{ n: number }>> = {}) {
    const steps: string[] = [];
    const call: ToolCallPipeline<{ n: number }> = {
      name: 'tool',
      args: { n: 1 },
      offered: ['other', 'tool'],
      schema: z.object({ n: z.number() }),
      policy: {
        dangerous: true,
        approved: false,
        check: async (args) => {
          steps.push(`policy ${args.n}`);
          return { allowed: true };
        },
      },
      limit: async () => {
        steps.push('limit');
        return null;
      },
      audit: async (outcome) => void steps.push(`audit ${outcome}`),
      execute: async (args) => {
        steps.push(`execute ${args.n}`);
        return { text: 'done', outcome: 'ok' };
      },
      ...overrides,
    };
    return { steps, run: () => runToolCall(call) };
  }

  test('an allowed call goes offered → arguments → policy → limits → execute → audit', async () => {
    const { steps, run } = pipeline();
    await expect(run()).resolves.toBe('done');
    expect(steps).toEqual(['policy 1', 'limit', 'execute 1', 'audit ok']);
  });

  test('a name not offered, bad arguments or a missing executor stop before the policy, unaudited', async () => {
    const notOffered = pipeline({ name: 'elsewhere' });
    await expect(notOffered.run()).resolves.toBe('Error: there is no tool called "elsewhere" here; use one of: other, tool.');
    const badArgs = pipeline({ args: { n: 'one' } });
    await expect(badArgs.run()).resolves.toMatch(/^Error: invalid arguments for tool: .+Fix them and call the tool again\.$/);
    const missing = pipeline({ unavailable: 'Error: tool cannot run on this worker.' });
    await expect(missing.run()).resolves.toBe('Error: tool cannot run on this worker.');
    expect([...notOffered.steps, ...badArgs.steps, ...missing.steps]).toEqual([]);
  });

  test('a policy refusal and a limit are audited and never execute; an approved call skips the policy', async () => {
    const refused = pipeline({
      policy: { dangerous: true, approved: false, check: async () => ({ allowed: false, reason: 'not today' }) },
    });
    await expect(refused.run()).resolves.toBe('Error: tool was not allowed: not today');
    expect(refused.steps).toEqual(['audit not_allowed']);
    const limited = pipeline({ limit: async () => ({ outcome: 'rate_limited', text: 'Error: tool was NOT run: too many' }) });
    await expect(limited.run()).resolves.toBe('Error: tool was NOT run: too many');
    expect(limited.steps).toEqual(['policy 1', 'audit rate_limited']);
    const approved = pipeline({
      policy: { dangerous: true, approved: true, check: async () => ({ allowed: false, reason: 'never asked' }) },
    });
    await expect(approved.run()).resolves.toBe('done');
    expect(approved.steps).toEqual(['limit', 'execute 1', 'audit ok']);
  });
});

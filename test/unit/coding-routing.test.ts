import { codingAgents, CODING_AGENT_NAMES } from '../../config/coding-agents';
import { codingToolsFor, keptNote, routeCoding, routeCodingAgent } from '../../src/coding/coding-agents';
import { demoResponder } from '../../src/demo-model/responder';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';

/** The first call the demo model gets as `agent`: the agent's tools offered, the message as the user's. */
const demoCall = (agent: (typeof CODING_AGENT_NAMES)[number], message: string, agents = codingAgents()) => {
  const request: ChatRequest = {
    model: 'demo',
    messages: [{ role: 'user', content: message }],
    tools: codingToolsFor(agents[agent]).map((tool) => ({
      type: 'function',
      function: { name: tool.name, parameters: { type: 'object' } },
    })),
  };
  return demoResponder(request);
};

describe('the Orchestrator routes a command to an agent that has its tool', () => {
  test.each([
    ['fix the bug: replace "a - b" with "a + b" in src/math.js', 'coder', 'edit_file'],
    ['The test fails. Replace "a - b" with "a + b" in src/math.js', 'coder', 'edit_file'],
    ['explain it, then create notes/todo.md with "check the sum"', 'coder', 'write_file'],
    ['why is this broken? run npm test', 'debug', 'execute_command'],
    ['fix it: run `npm test`', 'debug', 'execute_command'],
  ])('"%s" goes to %s, whose demo model calls %s', (message, agent, tool) => {
    expect(routeCodingAgent('orchestrator', message)).toBe(agent);
    expect(demoCall(routeCodingAgent('orchestrator', message), message).toolCalls?.[0].name).toBe(tool);
  });

  test('the tool decides, as the deployment configured it: a Debug agent given the write tools takes a debugging edit', () => {
    const agents = codingAgents({ debug: { toolsets: ['code_read', 'code_write', 'code_exec'] } });
    const message = 'debug the crash: replace "a - b" with "a + b" in src/math.js';
    expect(routeCodingAgent('orchestrator', message)).toBe('coder');
    expect(routeCodingAgent('orchestrator', message, agents)).toBe('debug');
  });

  test('words alone keep their routing: a tie or no match stays with the Orchestrator, and says which', () => {
    expect(routeCoding('orchestrator', 'fix the bug in src/math.js')).toEqual({ agent: 'orchestrator', kept: ['coder', 'debug'] });
    expect(routeCoding('orchestrator', 'Hello there')).toEqual({ agent: 'orchestrator', kept: [] });
    expect(routeCoding('orchestrator', 'How do I run the app?')).toEqual({ agent: 'orchestrator', kept: ['debug', 'ask'] });
    expect(routeCoding('orchestrator', 'Implement a multiply function')).toEqual({ agent: 'coder' });
    // A named agent is never re-routed, even for a command it has no tool for.
    expect(routeCoding('ask', 'replace "a" with "b" in x.js')).toEqual({ agent: 'ask' });
  });

  test('the note of a kept request says no specialist was chosen and how to name one', () => {
    expect(keptNote(['coder', 'debug'])).toMatch(
      /^No specialist agent was chosen for this request \(its words point to coder and debug alike\)/,
    );
    expect(keptNote([])).toContain('(its words point to none of them)');
    for (const note of [keptNote(['coder', 'debug']), keptNote(undefined)]) {
      expect(note).toContain('no file was changed and no command was run');
      expect(note).toContain('"agent" set to "coder"');
    }
  });
});

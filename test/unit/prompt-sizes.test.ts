import { canvasTurnPrompt } from '../../src/ai/canvas-turn';
import { historyMessages, systemMessage, userMessage } from '../../src/ai/model-messages';
import { promptTexts } from '../../src/ai/model-gateway';
import {
  ASSISTANT_TOOLSET_TOOLS,
  CANVAS_TURN_FIXED,
  CODING_PLAN_TOOL,
  CODING_TOOLSET_TOOLS,
  JOURNEY_FINISH_TOOL,
} from '../../src/ai/prompt-sizes';
import { finishTool } from '../../src/agents/journey-runner';
import { CODE_TOOLS } from '../../src/assistant/code-tools';
import { codingToolsFor } from '../../src/assistant/coding-agents';
import { PLAN_TOOL } from '../../src/assistant/coding-plan';
import { withChatContext } from '../../src/assistant/chat-context';
import { CODING_AGENT_NAMES, CODING_TOOLSET_NAMES, codingAgents } from '../../config/coding-agents';
import { toolsFor } from '../../src/assistant/orchestrator';
import { modelTools } from '../../src/assistant/tools';
import {
  codingSystemPrompt,
  codingTools,
  routeCodingAgent,
  TOOLSETS,
  toolsetTools,
  turnSystemPrompt,
  turnToolsets,
} from '../../src/assistant/turn-prompt';
import { promptTokenBound } from '../../src/budget/budget-door';

const size = (texts: string[]) => ({ bytes: texts.reduce((sum, text) => sum + Buffer.byteLength(text, 'utf8'), 0), texts: texts.length });

/**
 * A request reserves its job's first model call from sizes kept as numbers (the API process never
 * loads the tool definitions): they must be what the gateway counts for that call, to the token.
 */
describe('the fixed sizes of first model calls', () => {
  test('the canvas turn: system prompt and block tools (update CANVAS_TURN_FIXED in src/ai/prompt-sizes.ts when this fails)', () => {
    const prompt = 'Plan the launch: todos (book venue, invite press, ship beta)';
    const texts = promptTexts(canvasTurnPrompt(prompt));
    expect(size(texts.filter((text) => text !== prompt))).toEqual(CANVAS_TURN_FIXED);
    // What the request reserves is what the worker's first call reserves.
    expect(promptTokenBound([prompt], CANVAS_TURN_FIXED)).toBe(promptTokenBound(texts));
  });

  test.each(TOOLSETS)('the %s toolset’s tools (update ASSISTANT_TOOLSET_TOOLS in src/ai/prompt-sizes.ts when this fails)', (toolset) => {
    expect(size(promptTexts({ messages: [], tools: modelTools(toolsFor([toolset])) }))).toEqual(ASSISTANT_TOOLSET_TOOLS[toolset]);
  });

  test('an assistant turn: the request’s count equals the worker’s first call, with a device or without, with history and context', () => {
    const history = [
      { role: 'user', content: 'Which tasks are due today?' },
      { role: 'assistant', content: 'Two: “Ship beta” and “Invite press”. ✓' },
    ];
    const context = { project: 'Launch', screen: 'board', nested: { ids: [1, 2, 3] } };
    for (const [message, withDevice] of [
      ['Add a task to book the venue', true],
      ['What is on my plate? 日本語のメモ', true],
      ['Add a task to book the venue', false],
    ] as const) {
      const toolsets = turnToolsets(message, withDevice);
      const system = turnSystemPrompt(toolsets, context);
      const worker = promptTexts({
        messages: [systemMessage(system), ...historyMessages(history), userMessage(message)],
        tools: toolsets.length ? modelTools(toolsFor(toolsets)) : undefined,
      });
      const edge = promptTokenBound([system, ...history.map((earlier) => earlier.content), message], toolsetTools(toolsets));
      expect(edge).toBe(promptTokenBound(worker));
    }
  });

  test.each(CODING_TOOLSET_NAMES)(
    'the %s coding toolset’s tools (update CODING_TOOLSET_TOOLS in src/ai/prompt-sizes.ts when this fails)',
    (toolset) => {
      const tools = CODE_TOOLS.filter((tool) => tool.toolset === toolset);
      expect(tools.length).toBeGreaterThan(0);
      expect(size(promptTexts({ messages: [], tools: modelTools(tools) }))).toEqual(CODING_TOOLSET_TOOLS[toolset]);
    },
  );

  test('the Orchestrator’s plan tool (update CODING_PLAN_TOOL in src/ai/prompt-sizes.ts when this fails)', () => {
    expect(size(promptTexts({ messages: [], tools: modelTools([PLAN_TOOL]) }))).toEqual(CODING_PLAN_TOOL);
  });

  test('a coding turn: the request’s count equals the worker’s first call for every agent, with an operator’s toolsets too', () => {
    const history = [
      { role: 'user', content: 'Where is the config read?' },
      { role: 'assistant', content: 'In config/index.ts:12 — “loadConfig”.' },
    ];
    const context = { openFile: 'src/app.ts', nested: { lines: [1, 2] } };
    const configs = [codingAgents(), codingAgents({ ask: { toolsets: ['code_read', 'code_exec'], prompt: 'Réponds en français.' } })];
    for (const agents of configs)
      for (const named of CODING_AGENT_NAMES)
        for (const message of ['Why does the build fail?', 'Hello there 日本語', 'Plan and implement the cache']) {
          const agent = routeCodingAgent(named, message);
          const system = withChatContext(codingSystemPrompt(agents[agent]), context);
          // As the worker's first call: the agent's tools, and the plan tool for the Orchestrator.
          const tools = [...codingToolsFor(agents[agent]), ...(agent === 'orchestrator' ? [PLAN_TOOL] : [])];
          const worker = promptTexts({
            messages: [systemMessage(system), ...historyMessages(history), userMessage(message)],
            tools: modelTools(tools),
          });
          const edge = promptTokenBound([system, ...history.map((earlier) => earlier.content), message], codingTools(agent, agents[agent]));
          expect(edge).toBe(promptTokenBound(worker));
        }
  });

  test('the journey’s finish tool (update JOURNEY_FINISH_TOOL in src/ai/prompt-sizes.ts when this fails)', () => {
    expect(size(promptTexts({ messages: [], tools: [finishTool] }))).toEqual(JOURNEY_FINISH_TOOL);
  });
});

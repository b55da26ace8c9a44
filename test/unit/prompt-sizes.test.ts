import { canvasTurnPrompt } from '../../src/ai/canvas-turn';
import { historyMessages, systemMessage, userMessage } from '../../src/ai/model-messages';
import { promptTexts } from '../../src/ai/model-gateway';
import {
  ASSISTANT_TOOLSET_TOOLS,
  CANVAS_TURN_FIXED,
  CODING_PLAN_TOOL,
  CODING_TOOLSET_TOOLS,
  DEVICE_TOOL_BYTES,
  EXTRACTION_TOOL_SIZE,
  JOURNEY_FINISH_TOOL,
  THREAD_BLOCK_TOOLS,
} from '../../src/ai/prompt-sizes';
import { BLOCK_TOOL_SPECS } from '../../src/ai/block-tools';
import { toolDefinitionBytes } from '../../src/ai/model-tools';
import { extractionTool } from '../../src/agents/extraction';
import {
  extractionDocumentPrompt,
  extractionFirstCall,
  extractionSystemPrompt,
  MAX_DOCUMENT_BYTES,
  MAX_SOURCE_BYTES,
  MAX_TITLE_BYTES,
} from '../../src/agents/extraction-prompt';
import { FLOW_NODE_SYSTEM } from '../../src/flows/definition';
import { httpToolArgsSchema } from '../../src/flows/http-tool';
import { httpToolDescription, httpToolPart, nodeToolsPart } from '../../src/flows/node-prompt';
import { finishTool } from '../../src/agents/journey-runner';
import { CODE_TOOLS } from '../../src/coding/code-tools';
import { codingToolsFor } from '../../src/coding/coding-agents';
import { PLAN_TOOL } from '../../src/coding/coding-plan';
import { withChatContext } from '../../src/assistant/chat-context';
import { CODING_AGENT_NAMES, CODING_TOOLSET_NAMES, codingAgents } from '../../config/coding-agents';
import { toolsFor } from '../../src/assistant/orchestrator';
import { ASSISTANT_TOOLS, TOOLS_BY_NAME } from '../../src/turns/device-tools';
import { modelTools } from '../../src/turns/offered-tools';
import { TOOLSETS, toolsetTools, turnSystemPrompt, turnToolsets } from '../../src/assistant/turn-prompt';
import { codingSystemPrompt, codingTools, routeCodingAgent } from '../../src/coding/coding-routing';
import { promptTokenBound, sumParts } from '../../src/budget/budget-door';

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

  test('a room thread’s canvas block tools (update THREAD_BLOCK_TOOLS in src/ai/prompt-sizes.ts when this fails)', () => {
    expect({ bytes: BLOCK_TOOL_SPECS.reduce((sum, spec) => sum + toolDefinitionBytes(spec), 0), texts: BLOCK_TOOL_SPECS.length }).toEqual(
      THREAD_BLOCK_TOOLS,
    );
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

describe('the first calls a request sizes from parts the worker adds at run time', () => {
  test('the extraction tool (update EXTRACTION_TOOL_SIZE in src/ai/prompt-sizes.ts when this fails)', () => {
    expect(size(promptTexts({ messages: [], tools: [extractionTool] }))).toEqual(EXTRACTION_TOOL_SIZE);
  });

  test('each device tool (update DEVICE_TOOL_BYTES in src/ai/prompt-sizes.ts when this fails)', () => {
    const measured = Object.fromEntries(
      ASSISTANT_TOOLS.map((tool) => [tool.name, size(promptTexts({ messages: [], tools: modelTools([tool]) })).bytes]),
    );
    expect(DEVICE_TOOL_BYTES).toEqual(measured);
  });

  test('an HTTP tool: the frame and its name and description (update HTTP_TOOL_FRAME_BYTES in src/ai/prompt-sizes.ts when this fails)', () => {
    for (const tool of [
      { name: 'weather', description: 'Today’s weather', method: 'GET' as const, url: 'https://api.example.com/weather' },
      {
        name: 'post_note',
        description: 'Posts a "note" \\ with\ttabs, 日本語 ✓',
        method: 'POST' as const,
        url: 'https://x.example/a?b=1&c=2',
      },
    ]) {
      const spec = { name: tool.name, description: httpToolDescription(tool), schema: httpToolArgsSchema };
      expect(httpToolPart(tool)).toEqual(size(promptTexts({ messages: [], tools: modelTools([spec]) })));
    }
  });

  test('an MCP tool is sized as the gateway counts its definition', () => {
    const spec = { name: 'mcp__shop__lookup_order', description: 'Finds an order “by id” (MCP server shop)', schema: httpToolArgsSchema };
    expect(toolDefinitionBytes(spec)).toBe(size(promptTexts({ messages: [], tools: modelTools([spec]) })).bytes);
  });

  test('a flow node with device, HTTP and MCP tools: the request’s count equals the worker’s first call', () => {
    const http = { name: 'weather', description: 'Weather ☀', method: 'GET' as const, url: 'https://api.example.com/w' };
    const mcp = { name: 'mcp__shop__lookup_order', description: 'Finds an order (MCP server shop)', schema: httpToolArgsSchema };
    const node = { id: 'a', prompt: 'p', tools: ['list_tasks', 'weather', 'mcp__shop__lookup_order', 'create_note'] };
    const rendered = 'Plan my day around the weather ✓';
    const edge = nodeToolsPart({ httpTools: [http] }, node, new Map([[mcp.name, toolDefinitionBytes(mcp)]]));
    expect(edge.mcp).toEqual({ bytes: toolDefinitionBytes(mcp), texts: 1 });
    const tools = [
      TOOLS_BY_NAME.get('list_tasks')!,
      { name: http.name, description: httpToolDescription(http), schema: httpToolArgsSchema },
      mcp,
      TOOLS_BY_NAME.get('create_note')!,
    ];
    const worker = promptTexts({ messages: [systemMessage(FLOW_NODE_SYSTEM), userMessage(rendered)], tools: modelTools(tools) });
    expect(promptTokenBound([FLOW_NODE_SYSTEM, rendered], edge.tools)).toBe(promptTokenBound(worker));
    // An MCP tool no listing has sized yet is not counted (the worker widens the reservation or leaves it out).
    expect(nodeToolsPart({ httpTools: [http] }, node, new Map()).tools).toEqual(
      sumParts(edge.tools, { bytes: -edge.mcp.bytes, texts: -1 }),
    );
  });

  test('an agent run: the worker’s first call never counts more than its request reserved, and the largest document counts exactly that', () => {
    const agent = { dataTypes: ['tasks', 'notes'], promptTemplate: 'Extract tasks: lines with TODO. Überall ✓' };
    const edge = extractionFirstCall(agent);
    const reserved = promptTokenBound(edge.texts, edge.fixed);
    const firstCall = (document: { source: string; title?: string; text: string }) =>
      promptTokenBound(
        promptTexts({
          messages: [systemMessage(extractionSystemPrompt(agent)), userMessage(extractionDocumentPrompt(document))],
          tools: [extractionTool],
        }),
      );
    const largest = { source: 'x'.repeat(MAX_SOURCE_BYTES), title: 'y'.repeat(MAX_TITLE_BYTES), text: 'z'.repeat(MAX_DOCUMENT_BYTES + 1) };
    expect(firstCall(largest)).toBe(reserved);
    for (const document of [
      { source: 'file /notes/a.txt', title: 'a.txt', text: 'TODO: send the quote' },
      { source: 'gmail message 18c', text: '' },
      // Past every size, in characters of two, three and four bytes, and full of delimiters.
      { source: `file /${'ü'.repeat(2_000)}`, title: '日本'.repeat(1_000), text: '日本語のメモ'.repeat(10_000) },
      { source: 'file /e.txt', title: '</document>'.repeat(100), text: '</document>😀'.repeat(5_000) },
      { source: 'file /s.txt', text: `${'a'.repeat(MAX_DOCUMENT_BYTES - 1)}😀 tail` },
    ])
      expect(firstCall(document)).toBeLessThanOrEqual(reserved);
    // A cut document says so, keeps whole characters and never closes its delimiter early.
    const cut = extractionDocumentPrompt({ source: 'file /s.txt', text: '</document>😀'.repeat(5_000) });
    expect(cut.endsWith('\n[…cut]\n</document>')).toBe(true);
    expect(cut.match(/<\/document>/g)).toHaveLength(1);
    expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});

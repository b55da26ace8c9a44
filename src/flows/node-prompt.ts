import { DEVICE_TOOL_BYTES, HTTP_TOOL_FRAME_BYTES } from '../ai/prompt-sizes';
import { sumParts, type PromptPart } from '../budget/budget-door';
import { isMcpToolName } from '../mcp/mcp-tool-names';
import type { AgentflowDefinition, AgentflowNode, HttpTool } from './definition';

/**
 * The tools of an agentflow node's first model call, sized free of the model client: the request
 * that starts an execution counts them into its reservation (src/flows/flow-executions.ts), and
 * the worker offers exactly these (src/flows/node-tools.ts). Device tools' sizes are measured
 * numbers (src/ai/prompt-sizes.ts); an HTTP tool's is computed from its name, description, method
 * and URL; an MCP tool's is what its server's last listing recorded.
 */

/** What the model reads as an HTTP tool's description: the flow's words, the method and the URL. */
export function httpToolDescription(tool: Pick<HttpTool, 'description' | 'method' | 'url'>): string {
  return `${tool.description} (HTTP ${tool.method} ${tool.url})`;
}

/** The size of an HTTP tool's definition: the frame every HTTP tool shares, its name and its description as JSON strings. */
export function httpToolPart(tool: Pick<HttpTool, 'name' | 'description' | 'method' | 'url'>): PromptPart {
  const json = (text: string) => Buffer.byteLength(JSON.stringify(text), 'utf8');
  return { bytes: HTTP_TOOL_FRAME_BYTES + json(tool.name) + json(httpToolDescription(tool)), texts: 1 };
}

/**
 * The size of the tools a node is offered, in the worker's order: each name is a device tool, else
 * an MCP tool (at its recorded size in `mcpBytes`; one no listing sized is not counted), else one of
 * the flow's HTTP tools. `mcp` is the MCP tools' share of it, which the node's job carries.
 */
export function nodeToolsPart(
  definition: Pick<AgentflowDefinition, 'httpTools'>,
  node: Pick<AgentflowNode, 'tools'>,
  mcpBytes: ReadonlyMap<string, number>,
): { tools: PromptPart; mcp: PromptPart } {
  const parts: PromptPart[] = [];
  const mcp: PromptPart[] = [];
  for (const name of node.tools ?? []) {
    const device = Object.hasOwn(DEVICE_TOOL_BYTES, name) ? DEVICE_TOOL_BYTES[name] : undefined;
    const recorded = isMcpToolName(name) ? mcpBytes.get(name) : undefined;
    const http = definition.httpTools?.find((tool) => tool.name === name);
    if (device !== undefined) parts.push({ bytes: device, texts: 1 });
    else if (recorded !== undefined) mcp.push({ bytes: recorded, texts: 1 });
    else if (http) parts.push(httpToolPart(http));
  }
  const mcpPart = sumParts(...mcp);
  return { tools: sumParts(...parts, mcpPart), mcp: mcpPart };
}

import { CODING_AGENT_NAMES, type CodingAgentConfig, type CodingAgentName } from '../../config/coding-agents';
import { CODE_TOOLS, CODE_TOOLS_BY_NAME, type CodeTool } from './code-tools';
import { TOOLS_BY_NAME, type AssistantTool } from '../turns/device-tools';

export { CODING_AGENT_NAMES, type CodingAgentName };
// Built without the tool definitions, so a request reserves a coding turn's first call (coding-routing.ts).
export { codingSystemPrompt, keptNote, routeCoding, routeCodingAgent } from './coding-routing';

/** Whether `name` is one of the coding agents a request may name. */
export const isCodingAgent = (name: unknown): name is CodingAgentName =>
  typeof name === 'string' && (CODING_AGENT_NAMES as readonly string[]).includes(name);

/** The tools of an agent's toolsets, in catalogue order. */
export const codingToolsFor = (agent: Pick<CodingAgentConfig, 'toolsets'>): CodeTool[] =>
  CODE_TOOLS.filter((tool) => (agent.toolsets as string[]).includes(tool.toolset));

/** Any tool of the assistant by name: the data tools, then the coding tools. */
export const toolNamed = (name: string): AssistantTool | CodeTool | undefined => TOOLS_BY_NAME.get(name) ?? CODE_TOOLS_BY_NAME.get(name);

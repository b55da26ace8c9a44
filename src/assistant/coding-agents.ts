import { CODING_AGENT_NAMES, type CodingAgentConfig, type CodingAgentName } from '../../config/coding-agents';
import { CODE_TOOLS, CODE_TOOLS_BY_NAME, type CodeTool } from './code-tools';
import { TOOLS_BY_NAME, type AssistantTool } from './tools';

export { CODING_AGENT_NAMES, type CodingAgentName };

/** Whether `name` is one of the coding agents a request may name. */
export const isCodingAgent = (name: unknown): name is CodingAgentName =>
  typeof name === 'string' && (CODING_AGENT_NAMES as readonly string[]).includes(name);

/**
 * Words that point at a specialist. The Orchestrator hands a request to the agent whose words it
 * matches most (matching on word stems, deterministic and free); a tie or no match stays with the
 * Orchestrator, which answers from the project with the read-only tools.
 */
const INTENT: Record<Exclude<CodingAgentName, 'orchestrator'>, string[]> = {
  coder: ['add', 'implement', 'change', 'edit', 'write', 'refactor', 'rename', 'create', 'update', 'fix', 'make', 'remove'],
  debug: ['debug', 'fail', 'failing', 'error', 'crash', 'bug', 'test', 'broken', 'exception', 'trace', 'run', 'why'],
  architect: ['plan', 'design', 'architecture', 'approach', 'structure', 'propose', 'strategy', 'roadmap'],
  ask: ['what', 'where', 'explain', 'how', 'which', 'find', 'show', 'describe', 'does'],
};

const stem = (word: string) => (word.length > 3 && word.endsWith('s') && !word.endsWith('ss') ? word.slice(0, -1) : word);

/** The agent a message goes to: the one named, or (for the Orchestrator) the specialist its words point to. */
export function routeCodingAgent(named: CodingAgentName, message: string): CodingAgentName {
  if (named !== 'orchestrator') return named;
  const words = (message.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).map(stem);
  const scores = Object.entries(INTENT).map(([agent, keywords]) => [agent, words.filter((w) => keywords.includes(w)).length] as const);
  const best = Math.max(...scores.map(([, score]) => score));
  const top = scores.filter(([, score]) => score === best);
  return best === 0 || top.length > 1 ? 'orchestrator' : (top[0][0] as CodingAgentName);
}

/** The tools of an agent's toolsets, in catalogue order. */
export const codingToolsFor = (agent: Pick<CodingAgentConfig, 'toolsets'>): CodeTool[] =>
  CODE_TOOLS.filter((tool) => (agent.toolsets as string[]).includes(tool.toolset));

/** Any tool of the assistant by name: the data tools, then the coding tools. */
export const toolNamed = (name: string): AssistantTool | CodeTool | undefined => TOOLS_BY_NAME.get(name) ?? CODE_TOOLS_BY_NAME.get(name);

/** The system prompt of a coding turn: the agent's own, the project's name, today's date. */
export function codingSystemPrompt(agent: CodingAgentConfig, projectName?: string, now = new Date()): string {
  return [
    agent.prompt,
    projectName ? `The project is "${projectName}".` : '',
    'Answer in plain language and keep it short.',
    `Today is ${now.toISOString().slice(0, 10)}.`,
  ]
    .filter(Boolean)
    .join(' ');
}

import { DEFAULT_CODING_AGENTS, type CodingAgentConfig, type CodingAgentName } from '../../config/coding-agents';
import { CODING_PLAN_TOOL, CODING_TOOLSET_TOOLS, type PromptPart } from '../ai/prompt-sizes';
import { UNTRUSTED_DATA_RULE } from '../lib/untrusted-data';

/**
 * Where a coding request goes and what its first model call says, without the tool definitions:
 * free of the model client, so a request reserves a coding turn's first call before anything is
 * written and the worker sends exactly that.
 */

/** A word's stem for keyword matching: "tasks" → "task". */
export const stem = (word: string) => (word.length > 3 && word.endsWith('s') && !word.endsWith('ss') ? word.slice(0, -1) : word);

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

type Specialist = Exclude<CodingAgentName, 'orchestrator'>;
type ToolsetsOf = Record<CodingAgentName, Pick<CodingAgentConfig, 'toolsets'>>;

/**
 * Commands that name a tool outright, and the toolset it needs: `replace "<old>" with "<new>" in
 * <path>` and `create <path> with "<content>"` change a file, `run <command>` runs one (the phrases
 * the offline demo model acts on). A request holding one goes to an agent that has that tool,
 * whatever its other words say, so the command is carried out rather than answered read-only.
 */
const COMMANDS: Array<{ pattern: RegExp; toolset: CodingAgentConfig['toolsets'][number] }> = [
  { pattern: /\breplace\s+"[^"]+"\s+with\s+"[^"]*"\s+in\s+[\w./-]+/i, toolset: 'code_write' },
  { pattern: /\bcreate\s+[\w./-]+\s+with\s+"[^"]*"/i, toolset: 'code_write' },
  { pattern: /(?:^|[.:;!?]\s*)run\s+(?:`[^`]+`|"[^"]+"|'[^']+'|[^\s`"'][^`"']*$)/i, toolset: 'code_exec' },
];

/** Where a message goes: the agent, and when the Orchestrator keeps it, the specialists its words point to alike (none or several). */
export interface CodingRoute {
  agent: CodingAgentName;
  /** Set when the Orchestrator keeps the request: the specialists tied for it (empty: its words point to none). */
  kept?: Specialist[];
}

/**
 * The agent a message goes to: the one named, or (for the Orchestrator) the specialist its words
 * point to. A command that needs a tool goes to the best-scoring agent that has it (in `agents`,
 * the deployment's configuration), ties broken in the order coder, debug, architect, ask.
 */
export function routeCoding(named: CodingAgentName, message: string, agents: ToolsetsOf = DEFAULT_CODING_AGENTS): CodingRoute {
  if (named !== 'orchestrator') return { agent: named };
  const words = (message.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).map(stem);
  const scores = Object.entries(INTENT).map(
    ([agent, keywords]) => [agent as Specialist, words.filter((w) => keywords.includes(w)).length] as const,
  );
  const needed = COMMANDS.filter(({ pattern }) => pattern.test(message)).map(({ toolset }) => toolset);
  if (needed.length) {
    const able = scores
      .filter(([agent]) => needed.every((toolset) => agents[agent].toolsets.includes(toolset)))
      .sort(([a, x], [b, y]) => y - x || COMMAND_ORDER.indexOf(a) - COMMAND_ORDER.indexOf(b));
    if (able.length) return { agent: able[0][0] };
  }
  const best = Math.max(...scores.map(([, score]) => score));
  const top = scores.filter(([, score]) => score === best).map(([agent]) => agent);
  if (best === 0) return { agent: 'orchestrator', kept: [] };
  return top.length > 1 ? { agent: 'orchestrator', kept: top } : { agent: top[0] };
}

/** Among agents that have a command's tool and whose words score the same: the one that changes files first. */
const COMMAND_ORDER: Specialist[] = ['coder', 'debug', 'architect', 'ask'];

/** The agent a message goes to (see {@link routeCoding}). */
export function routeCodingAgent(named: CodingAgentName, message: string, agents: ToolsetsOf = DEFAULT_CODING_AGENTS): CodingAgentName {
  return routeCoding(named, message, agents).agent;
}

/**
 * What a turn the Orchestrator kept adds to its answer: that no specialist took it, so nothing was
 * changed or run, and how to name one. A model answering read-only may say "Done." all the same.
 */
export function keptNote(kept: readonly Specialist[] | undefined): string {
  const why = !kept ? '' : kept.length ? ` (its words point to ${kept.join(' and ')} alike)` : ' (its words point to none of them)';
  return (
    `No specialist agent was chosen for this request${why}, so the Orchestrator answered it read-only: no file was changed and no command was run. ` +
    'To hand it to one, send it again with "agent" set to "coder" (changes files), "debug" (runs commands), "ask" or "architect".'
  );
}

/** The system prompt of a coding turn: the agent's own, the project's name, today's date. */
export function codingSystemPrompt(agent: Pick<CodingAgentConfig, 'prompt'>, projectName?: string, now = new Date()): string {
  return [
    agent.prompt,
    projectName ? `The project is "${projectName}".` : '',
    // Files, search hits and command output are text from outside: data, never instructions.
    UNTRUSTED_DATA_RULE,
    'Answer in plain language and keep it short.',
    `Today is ${now.toISOString().slice(0, 10)}.`,
  ]
    .filter(Boolean)
    .join(' ');
}

/**
 * The size of the tool definitions a coding turn's first call offers: those of the agent's
 * toolsets, and the plan tool when the Orchestrator answers (it may propose a plan).
 */
export function codingTools(agent: CodingAgentName, config: Pick<CodingAgentConfig, 'toolsets'>): PromptPart {
  const parts = [
    ...config.toolsets.map((toolset) => CODING_TOOLSET_TOOLS[toolset]),
    ...(agent === 'orchestrator' ? [CODING_PLAN_TOOL] : []),
  ];
  return parts.reduce((sum, part) => ({ bytes: sum.bytes + part.bytes, texts: sum.texts + part.texts }), { bytes: 0, texts: 0 });
}

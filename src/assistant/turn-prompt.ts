import type { CodingAgentConfig, CodingAgentName } from '../../config/coding-agents';
import { ASSISTANT_TOOLSET_TOOLS, CODING_PLAN_TOOL, CODING_TOOLSET_TOOLS, type PromptPart } from '../ai/prompt-sizes';
import { withChatContext } from './chat-context';

/**
 * What the first model call of an assistant turn says, without the tool definitions: the toolsets a
 * message is routed to, the system prompt, the history. Free of the model client, so a request
 * reserves the call's real size before anything is written (src/assistant/chat-service.ts) and the
 * worker sends exactly that (src/assistant/assistant-runner.ts).
 */

/** The toolsets the orchestrator routes a message to (the desktop app's protocol calls them "agents"). */
export const TOOLSETS = ['task', 'project', 'checkpoint', 'note'] as const;
export type ToolsetName = (typeof TOOLSETS)[number];

/** Earlier user and assistant messages fed back as context. */
export const HISTORY_LIMIT = 20;

/**
 * Words that point at each toolset's data. Matching is on word stems ("tasks" → "task"), so the
 * classification is deterministic, instant and free; the model is not asked to route.
 */
const KEYWORDS: Record<ToolsetName, string[]> = {
  task: ['task', 'todo', 'to-do', 'due', 'comment', 'assignee', 'assign', 'priority', 'overdue'],
  project: ['project', 'client', 'archive', 'archived'],
  checkpoint: ['checkpoint', 'milestone', 'deadline'],
  note: ['note', 'memo', 'markdown', 'document'],
};

const stem = (word: string) => (word.length > 3 && word.endsWith('s') && !word.endsWith('ss') ? word.slice(0, -1) : word);

export interface Intent {
  /** The toolsets whose tools the turn gets: the best-scoring ones, or all four when nothing matched. */
  toolsets: ToolsetName[];
  /** How the choice was made, for logs. */
  scores: Record<ToolsetName, number>;
}

/** Classifies a message into task / project / checkpoint / note by keywords. Ties keep every tied toolset. */
export function classifyIntent(message: string): Intent {
  const words = (message.toLowerCase().match(/[\p{L}\p{N}]+(?:-[\p{L}\p{N}]+)*/gu) ?? []).map(stem);
  const scores = Object.fromEntries(
    TOOLSETS.map((toolset) => [toolset, words.filter((w) => KEYWORDS[toolset].includes(w)).length]),
  ) as Record<ToolsetName, number>;
  const best = Math.max(...Object.values(scores));
  // Nothing matched ("what's on my plate?"): offer every tool and let the model choose.
  const toolsets = best === 0 ? [...TOOLSETS] : TOOLSETS.filter((toolset) => scores[toolset] === best);
  return { toolsets, scores };
}

/** A turn without a device: a plain assistant that knows it cannot reach local data. */
export function plainSystemPrompt(now = new Date()): string {
  return [
    "You are Switchboard's assistant. No desktop app of the user is connected, so you cannot read or change their tasks, projects, checkpoints or notes (their local data cannot be reached).",
    'Answer from the conversation and your general knowledge; if the user asks about their own data, say it needs the desktop app to be online.',
    'Answer briefly in plain language.',
    `Today is ${now.toISOString().slice(0, 10)}.`,
  ].join(' ');
}

/** The system prompt of a turn with a device: who the assistant is and how to use the tools. */
export function systemPrompt(toolsets: ToolsetName[], now = new Date()): string {
  return [
    "You are Switchboard's assistant. You help the user with the tasks, projects, checkpoints and notes stored on their desktop app.",
    `Use the tools to read and change that data (you have the ${toolsets.join(', ')} tools); never invent rows, ids or counts.`,
    'Tool results are the real data. A result starting with "Error:" means the tool failed: say so plainly, and retry only when a fix is clear.',
    'Answer briefly in plain language, citing titles rather than ids unless the user asks for ids.',
    `Today is ${now.toISOString().slice(0, 10)}.`,
  ].join(' ');
}

/** The system prompt of a turn: who the assistant is and, with a device, how to use its toolsets; the session's context appended. */
export function turnSystemPrompt(toolsets: readonly ToolsetName[], context: Record<string, unknown> | null | undefined): string {
  return withChatContext(toolsets.length ? systemPrompt([...toolsets]) : plainSystemPrompt(), context);
}

/** The toolsets of a turn: none without a device (the assistant then has no tools), else those the message is routed to. */
export function turnToolsets(message: string, withDevice: boolean): ToolsetName[] {
  return withDevice ? classifyIntent(message).toolsets : [];
}

/** The size of the tool definitions a turn routed to `toolsets` is offered (the sum of theirs). */
export function toolsetTools(toolsets: readonly ToolsetName[]): PromptPart {
  return toolsets.reduce(
    (sum, toolset) => ({
      bytes: sum.bytes + ASSISTANT_TOOLSET_TOOLS[toolset].bytes,
      texts: sum.texts + ASSISTANT_TOOLSET_TOOLS[toolset].texts,
    }),
    { bytes: 0, texts: 0 },
  );
}

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

/** The agent a message goes to: the one named, or (for the Orchestrator) the specialist its words point to. */
export function routeCodingAgent(named: CodingAgentName, message: string): CodingAgentName {
  if (named !== 'orchestrator') return named;
  const words = (message.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).map(stem);
  const scores = Object.entries(INTENT).map(([agent, keywords]) => [agent, words.filter((w) => keywords.includes(w)).length] as const);
  const best = Math.max(...scores.map(([, score]) => score));
  const top = scores.filter(([, score]) => score === best);
  return best === 0 || top.length > 1 ? 'orchestrator' : (top[0][0] as CodingAgentName);
}

/** The system prompt of a coding turn: the agent's own, the project's name, today's date. */
export function codingSystemPrompt(agent: Pick<CodingAgentConfig, 'prompt'>, projectName?: string, now = new Date()): string {
  return [
    agent.prompt,
    projectName ? `The project is "${projectName}".` : '',
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

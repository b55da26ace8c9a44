import { TOOLSETS, ASSISTANT_TOOLS, type ToolsetName, type AssistantTool } from './tools';

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

/** The tools of the chosen toolsets, in catalogue order. */
export function toolsFor(toolsets: ToolsetName[]): AssistantTool[] {
  return ASSISTANT_TOOLS.filter((t) => (toolsets as string[]).includes(t.toolset));
}

/** The system prompt of a turn: who the assistant is and how to use the tools. */
/** A turn without a device: a plain assistant that knows it cannot reach local data. */
export function plainSystemPrompt(now = new Date()): string {
  return [
    "You are Switchboard's assistant. No desktop app of the user is connected, so you cannot read or change their tasks, projects, checkpoints or notes (their local data cannot be reached).",
    'Answer from the conversation and your general knowledge; if the user asks about their own data, say it needs the desktop app to be online.',
    'Answer briefly in plain language.',
    `Today is ${now.toISOString().slice(0, 10)}.`,
  ].join(' ');
}

export function systemPrompt(toolsets: ToolsetName[], now = new Date()): string {
  return [
    "You are Switchboard's assistant. You help the user with the tasks, projects, checkpoints and notes stored on their desktop app.",
    `Use the tools to read and change that data (you have the ${toolsets.join(', ')} tools); never invent rows, ids or counts.`,
    'Tool results are the real data. A result starting with "Error:" means the tool failed: say so plainly, and retry only when a fix is clear.',
    'Answer briefly in plain language, citing titles rather than ids unless the user asks for ids.',
    `Today is ${now.toISOString().slice(0, 10)}.`,
  ].join(' ');
}

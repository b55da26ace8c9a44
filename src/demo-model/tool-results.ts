import type { ChatMessage } from './openai-compatible-server';
import { errorFacts, isErrorResult, toolResultText } from './conversation';

const LIST_KEYS = ['items', 'tasks', 'notes', 'results', 'data', 'rows'];
const LABEL_KEYS = ['title', 'name', 'content', 'text', 'label', 'id'];
const PAST_TENSE = new Map([
  ['create', 'Created'],
  ['add', 'Added'],
  ['delete', 'Deleted'],
  ['remove', 'Removed'],
  ['update', 'Updated'],
]);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A record's human label (its title, name, ...). */
function labelOf(item: unknown): string {
  if (typeof item !== 'object' || item === null) return String(item);
  const record = item as Record<string, unknown>;
  const key = LABEL_KEYS.find((k) => typeof record[k] === 'string' || typeof record[k] === 'number');
  return key ? String(record[key]) : JSON.stringify(item);
}

/** The list a tool returned: a JSON array, an object wrapping one, or "- item" lines of text. */
function listOf(text: string, json: unknown): string[] | undefined {
  if (Array.isArray(json)) return json.map(labelOf);
  if (typeof json === 'object' && json !== null) {
    const record = json as Record<string, unknown>;
    const key = LIST_KEYS.find((k) => Array.isArray(record[k]));
    return key ? (record[key] as unknown[]).map(labelOf) : undefined;
  }
  const bullets = text
    .split('\n')
    .map((l) => /^\s*(?:[-*•]|\d+[.)])\s+(.+)$/.exec(l)?.[1]?.trim())
    .filter((l): l is string => !!l);
  return bullets.length > 0 ? bullets : undefined;
}

/** "list_tasks" → "task" (the tool's noun, singular). */
function nounOf(toolName: string): string {
  const parts = toolName
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[_\-\s]+/);
  const noun = parts.length > 1 ? parts.slice(1).join(' ') : parts[0];
  return noun.endsWith('s') && !noun.endsWith('ss') ? noun.slice(0, -1) : noun;
}

/**
 * Describes one tool result in a sentence, repeating what it returned: counts and titles for
 * lists, the title for single records, the text itself otherwise.
 */
export function summariseToolResult(toolName: string, args: Record<string, unknown>, result: string): string {
  const trimmed = result.trim();
  if (isErrorResult(trimmed)) return `The ${toolName} tool reported a problem: ${errorFacts(trimmed)}`;
  const json = parseJson(trimmed);
  const noun = nounOf(toolName);
  const list = listOf(trimmed, json);
  if (list) {
    const label = [typeof args.status === 'string' ? args.status : '', noun].filter(Boolean).join(' ');
    return list.length === 0 ? `You have no ${label}s.` : `You have ${list.length} ${label}(s): ${list.join(', ')}.`;
  }
  if (typeof json === 'object' && json !== null) {
    const verb = toolName.split(/[_-]/)[0].toLowerCase();
    const done = PAST_TENSE.get(verb);
    return done ? `${done} ${noun} "${labelOf(json)}".` : `Here is the ${noun}: ${labelOf(json)}.`;
  }
  return trimmed || `The ${toolName} tool returned nothing.`;
}

/**
 * Summarises the tool results that follow the latest assistant tool-call message, matching each
 * result to its call (by `tool_call_id`) to know which tool and arguments produced it.
 */
export function summariseToolResults(messages: ChatMessage[]): string {
  let start = messages.length;
  while (start > 0 && messages[start - 1].role === 'tool') start--;
  const calls = new Map((messages[start - 1]?.tool_calls ?? []).map((c) => [c.id, c.function]));
  const sentences = messages.slice(start).map((m) => {
    const call = m.tool_call_id ? calls.get(m.tool_call_id) : undefined;
    const args = parseJson(call?.arguments ?? '{}');
    const record = typeof args === 'object' && args !== null ? (args as Record<string, unknown>) : {};
    return summariseToolResult(call?.name ?? 'tool', record, toolResultText(m));
  });
  return sentences.join(' ');
}

import type { ChatRequest, ChatTool, ChatTurn } from './openai-compatible-server';
import { lastUserText, stem, words } from './conversation';
import { fillToolArgs, hasIdArgument } from './tool-args';
import { summariseToolResults } from './tool-results';

type VerbClass = 'read' | 'create' | 'delete' | 'update';

/** Verb classes, so "show", "how many" and `list_` all mean reading. (A Map: user words like "constructor" must not hit Object.prototype.) */
const VERBS = new Map<string, VerbClass>(
  Object.entries({
    list: 'read',
    get: 'read',
    show: 'read',
    find: 'read',
    search: 'read',
    what: 'read',
    which: 'read',
    many: 'read',
    count: 'read',
    view: 'read',
    read: 'read',
    fetch: 'read',
    display: 'read',
    create: 'create',
    add: 'create',
    new: 'create',
    make: 'create',
    write: 'create',
    insert: 'create',
    delete: 'delete',
    remove: 'delete',
    drop: 'delete',
    erase: 'delete',
    archive: 'delete',
    update: 'update',
    rename: 'update',
    change: 'update',
    edit: 'update',
    set: 'update',
    mark: 'update',
    complete: 'update',
    finish: 'update',
    move: 'update',
    assign: 'update',
    close: 'update',
  } satisfies Record<string, VerbClass>),
);

/** Words that name another noun: a "todo" is a task (whose status is todo). */
const NOUN_SYNONYMS = new Map([
  ['todo', 'task'],
  ['to-do', 'task'],
  ['memo', 'note'],
  ['doc', 'document'],
]);

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** A tool name read as an optional verb plus nouns: `list_tasks` → read + [task]. */
export function parseToolName(name: string): { verb?: VerbClass; nouns: string[] } {
  const parts = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[_\-\s.]+/)
    .filter(Boolean);
  const verb = parts.length > 1 ? VERBS.get(parts[0]) : undefined;
  return { verb, nouns: (verb ? parts.slice(1) : parts).map(stem) };
}

/**
 * The offered tool that best matches a user message, with its arguments, or undefined when none
 * matches well (no noun of the tool appears in the message).
 */
export function pickToolCall(message: string, tools: ChatTool[]): { name: string; args: Record<string, unknown> } | undefined {
  const tokens = words(message);
  const nouns = new Set(tokens.map(stem).map((w) => NOUN_SYNONYMS.get(w) ?? w));
  const verbs = new Set(tokens.map((w) => VERBS.get(w)).filter(Boolean));
  const mentionsId = UUID.test(message);

  let best: { tool: ChatTool; nouns: string[]; score: number } | undefined;
  for (const tool of tools) {
    const parsed = parseToolName(tool.function.name);
    const nounHits = parsed.nouns.filter((n) => nouns.has(n)).length;
    if (nounHits === 0) continue;
    let score = nounHits * 2;
    if (parsed.verb && verbs.has(parsed.verb)) score += 1.5;
    // A bare question ("tasks due?") is a read.
    else if (verbs.size === 0 && parsed.verb === 'read') score += 0.5;
    if (mentionsId) score += hasIdArgument(tool) ? 1 : -0.5;
    if (!best || score > best.score) best = { tool, nouns: parsed.nouns, score };
  }
  if (!best) return undefined;
  return { name: best.tool.function.name, args: fillToolArgs(best.tool, message, best.nouns) };
}

/**
 * Several tool calls in one turn: a message of requests separated by semicolons ("Delete task
 * <id>; delete task <id>") gets one call per request that matches a tool, in the message's order.
 * Undefined when fewer than two requests match (the message is then read as one request).
 */
export function pickToolCalls(message: string, tools: ChatTool[]): Array<{ name: string; args: Record<string, unknown> }> | undefined {
  const requests = message
    .split(';')
    .map((part) => part.trim())
    .filter(Boolean);
  if (requests.length < 2) return undefined;
  const calls = requests.flatMap((part) => pickToolCall(part, tools) ?? []);
  return calls.length >= 2 ? calls : undefined;
}

/**
 * A chat turn with tools: after a user message, call the best-matching tool (one per
 * semicolon-separated request, see {@link pickToolCalls}) or explain in text; after tool results,
 * answer in text built from what the tools returned.
 */
export function chatToolsTurn(request: ChatRequest): ChatTurn {
  const last = request.messages[request.messages.length - 1];
  if (last?.role === 'tool') return { text: summariseToolResults(request.messages) };
  const message = lastUserText(request.messages);
  const several = pickToolCalls(message, request.tools ?? []);
  if (several) return { toolCalls: several };
  const call = pickToolCall(message, request.tools ?? []);
  if (call) return { toolCalls: [call] };
  const names = (request.tools ?? []).map((t) => t.function.name).join(', ');
  return {
    text: `I'm the offline demo model and couldn't match that to one of my tools (${names}). Try naming what you want, e.g. "list tasks".`,
  };
}

import type { ChatRequest, ChatTurn } from './openai-compatible-server';
import { capitalise, currentExchange, isErrorResult, lastUserText, offeredToolNames, toolResultText } from './conversation';

/** A tool call the demo model plans to make. */
export interface PlannedCall {
  name: string;
  args: Record<string, unknown>;
}

const CANVAS_TOOLS = ['create_heading', 'create_todo', 'create_bullet_list', 'create_text'];
const TODO_WORDS = /\b(?:todos?|to-dos?|tasks?)\b/i;

/** Whether the request is a canvas generation (it offers the block-creating tools). */
export function isCanvasRequest(request: ChatRequest): boolean {
  const names = offeredToolNames(request);
  return CANVAS_TOOLS.some((name) => names.has(name));
}

/** A short title: the words before the first colon, else the first clause's first few words. */
export function deriveSubject(prompt: string): string {
  const colon = prompt.indexOf(':');
  let head = colon >= 0 ? prompt.slice(0, colon) : prompt.split(/[(.!?\n]/)[0];
  head = head
    .trim()
    .split(/\s+/)
    .slice(0, 6)
    .join(' ')
    .replace(/[\s,;:.!?-]+$/, '');
  return capitalise(head || 'Untitled');
}

/**
 * Items the prompt lists: the comma-separated list in parentheses, else the one after the first
 * colon. A single phrase is not a list (it would turn "Plan: a heading and a paragraph" into items).
 */
export function extractListItems(prompt: string): string[] {
  for (const match of prompt.matchAll(/\(([^()]*)\)/g)) {
    const items = splitList(match[1]);
    if (items.length > 1) return items;
  }
  const colon = prompt.indexOf(':');
  if (colon < 0) return [];
  const items = splitList(prompt.slice(colon + 1).split(/[.!?\n]/)[0]);
  return items.length > 1 ? items : [];
}

function splitList(text: string): string[] {
  const parts = text.split(',');
  const last = parts.pop() ?? '';
  // "a, b and c" and "a, b, and c" both end in "and c".
  if (parts.length > 0) parts.push(...last.split(/\s+and\s+/));
  else parts.push(last);
  return parts
    .map((p) =>
      p
        .trim()
        .replace(/^and\s+/i, '')
        .replace(/[.;:]+$/, '')
        .trim(),
    )
    .filter(Boolean);
}

/**
 * The tool calls for a canvas prompt: a heading, the listed items as todos (when the prompt talks
 * about todos/tasks) or one bullet list, then a closing paragraph. Only offered tools are used.
 */
export function planCanvas(prompt: string, offered: Set<string> = new Set(CANVAS_TOOLS)): PlannedCall[] {
  const subject = deriveSubject(prompt);
  const items = extractListItems(prompt);
  const calls: PlannedCall[] = [];
  if (offered.has('create_heading')) calls.push({ name: 'create_heading', args: { text: subject, level: 1 } });
  if (items.length > 0) {
    const wantsTodos = TODO_WORDS.test(prompt) && offered.has('create_todo');
    if (wantsTodos) for (const text of items) calls.push({ name: 'create_todo', args: { text, checked: false } });
    else if (offered.has('create_bullet_list')) calls.push({ name: 'create_bullet_list', args: { items } });
  }
  if (offered.has('create_text')) {
    const summary = items.length > 0 ? `${items.length} item(s) to work through` : 'a starting point to edit';
    calls.push({ name: 'create_text', args: { text: `${subject}: ${summary}. Drafted offline by the demo model.` } });
  }
  return calls;
}

/** Plans blocks on the first turn; once tool results are in, reports and stops (never loops). */
export function canvasTurn(request: ChatRequest): ChatTurn {
  const results = currentExchange(request.messages)
    .filter((m) => m.role === 'tool')
    .map(toolResultText);
  if (results.length === 0) {
    const toolCalls = planCanvas(lastUserText(request.messages), offeredToolNames(request));
    return toolCalls.length > 0 ? { toolCalls } : { text: 'The demo model found no canvas tools it knows how to use.' };
  }
  const failure = results.find(isErrorResult);
  if (failure) return { text: `Stopped after a tool error: ${failure.trim()} (demo model).` };
  return { text: `Created ${results.length} blocks (demo model).` };
}

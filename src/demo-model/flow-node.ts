import { messageText, type ChatRequest, type ChatTurn } from './openai-compatible-server';

/**
 * Agentflow nodes on the offline demo model. The flow runner's system prompt names
 * the node (src/flows/prompt-node.ts); the task is the node's rendered prompt. The answer is built
 * from the prompt's own words, deterministically, so `npm start` runs a flow offline:
 * - with a JSON Schema in the system prompt (`outputSchema`): JSON shaped by the schema;
 * - else the first verb of the task decides: summarize, list, translate, count, title, uppercase;
 * - anything else is echoed back, labelled as the demo's.
 */

/** The first words of the flow runner's node system prompt (kept in step with FLOW_NODE_SYSTEM). */
const NODE_MARKER = 'You are one step of a Switchboard agentflow';
/** The line before the schema (kept in step with FLOW_JSON_INSTRUCTION). */
const JSON_MARKER = 'validates against this JSON Schema:';

/** A router's instruction (kept in step with ROUTER_INSTRUCTION in src/flows/node-control.ts). */
const ROUTER_MARKER = 'Choose the branch the flow takes.';

/** A router's answer: the branch (`- name: description` lines) sharing the most words with the task, else the first. */
function routeOf(system: string, task: string): string {
  const branches = [...system.matchAll(/^- ([A-Za-z0-9_-]+)(?::\s*(.*))?$/gm)].map((m) => ({ name: m[1], text: `${m[1]} ${m[2] ?? ''}` }));
  const said = new Set(words(task.toLowerCase()));
  const score = (text: string) => words(text.toLowerCase()).filter((word) => said.has(word)).length;
  const best = branches.reduce<{ name: string; score: number } | null>((top, branch) => {
    const s = score(branch.text);
    return !top || s > top.score ? { name: branch.name, score: s } : top;
  }, null);
  return best?.name ?? 'default';
}

const NUMBER_WORDS: Record<string, number> = { one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10 };
const VERBS = ['summarize', 'summarise', 'summary', 'list', 'translate', 'count', 'title', 'headline', 'uppercase', 'shout'] as const;

export function isFlowNodeRequest(request: ChatRequest): boolean {
  const system = request.messages.find((m) => m.role === 'system');
  return system !== undefined && messageText(system).startsWith(NODE_MARKER);
}

export function flowNodeTurn(request: ChatRequest): ChatTurn {
  const system = messageText(request.messages.find((m) => m.role === 'system')!);
  // The task is the node's prompt: the first user message (a repair request adds a second).
  const task = messageText(request.messages.find((m) => m.role === 'user') ?? { content: '' }).trim();
  if (system.includes(ROUTER_MARKER)) return { text: routeOf(system, task) };
  const at = system.indexOf(JSON_MARKER);
  if (at !== -1) {
    let schema: unknown;
    try {
      schema = JSON.parse(system.slice(at + JSON_MARKER.length).trim());
    } catch {
      schema = { type: 'object' };
    }
    return { text: JSON.stringify(fromSchema(schema, words(contentOf(task, '')), 0)) };
  }
  return { text: answer(task) };
}

/** The plain-text answer to a task, by its first verb. */
export function answer(task: string): string {
  const lower = task.toLowerCase();
  const found = VERBS.map((verb) => ({ verb, index: lower.search(new RegExp(`\\b${verb}`)) }))
    .filter((hit) => hit.index !== -1)
    .sort((a, b) => a.index - b.index)[0];
  if (!found) return `Demo step result: ${clip(task, 40)}`;
  const content = contentOf(task, found.verb);
  switch (found.verb) {
    case 'summarize':
    case 'summarise':
    case 'summary':
      return `Summary: ${clip(firstSentence(content), 25)}`;
    case 'list':
      return listOf(content);
    case 'translate': {
      const language = /\b(?:to|into)\s+([A-Z][a-z]+)/.exec(task)?.[1] ?? 'another language';
      const text = content.replace(/^(?:to|into)\s+[A-Z][a-z]+\s*:?\s*/, '');
      return `[demo translation to ${language}] ${text}`;
    }
    case 'count': {
      const w = words(content).length;
      const lines = content.split('\n').filter((line) => line.trim()).length;
      const sentences = content.split(/[.!?]+/).filter((s) => s.trim()).length;
      return `${w} words, ${sentences} sentences, ${lines} lines`;
    }
    case 'title':
    case 'headline':
      return words(content).slice(0, 6).map(capitalize).join(' ') || 'Untitled';
    default:
      return content.toUpperCase();
  }
}

/** What the task works on: the text after its first colon, else after the verb. */
function contentOf(task: string, verb: string): string {
  const colon = task.indexOf(':');
  if (colon !== -1 && colon < task.length - 1) return task.slice(colon + 1).trim();
  if (!verb) return task;
  const index = task.toLowerCase().search(new RegExp(`\\b${verb}`));
  return task
    .slice(index)
    .replace(/^\S+\s*/, '')
    .trim();
}

/** Items already in the content (lines or a comma list), else N made-up points about its subject. */
function listOf(content: string): string {
  const lines = content
    .split('\n')
    .map((line) => line.replace(/^\s*(?:[-*]|\d+[.)])\s*/, '').trim())
    .filter(Boolean);
  const items =
    lines.length >= 2
      ? lines
      : content
          .split(/,\s*|\s+and\s+/)
          .map((item) => item.trim())
          .filter(Boolean);
  if (items.length >= 2)
    return items
      .slice(0, 10)
      .map((item) => `- ${item}`)
      .join('\n');
  const match = /\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten)\s+([A-Za-z]+)(?:\s+(?:about|of|for|on|in)\s+(.+))?/i.exec(
    content,
  );
  const n = Math.min(10, Math.max(1, match ? (NUMBER_WORDS[match[1].toLowerCase()] ?? Number(match[1])) : 3));
  const noun = capitalize((match?.[2] ?? 'point').replace(/s$/i, ''));
  const subject = (match?.[3] ?? content).replace(/[.?!]+$/, '') || 'the subject';
  return Array.from({ length: n }, (_, i) => `- ${noun} ${i + 1} about ${subject}`).join('\n');
}

/** A value the JSON Schema accepts, filled from the task's words (depth-bounded). */
export function fromSchema(schema: unknown, source: string[], depth: number): unknown {
  if (typeof schema !== 'object' || schema === null || depth > 8) return null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- walks arbitrary JSON Schema
  const s = schema as Record<string, any>;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  if ('const' in s) return s.const;
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const)
    if (Array.isArray(s[key]) && s[key].length) return fromSchema(s[key][0], source, depth + 1);
  const type: unknown = Array.isArray(s.type)
    ? (s.type.find((t: string) => t !== 'null') ?? s.type[0])
    : (s.type ?? (s.properties ? 'object' : s.items ? 'array' : 'string'));
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries((s.properties ?? {}) as Record<string, unknown>))
        out[key] = fromSchema(value, source, depth + 1);
      return out;
    }
    case 'array': {
      const count = Math.max(Number(s.minItems ?? 0), Math.min(3, Number(s.maxItems ?? 3)));
      return Array.from({ length: count }, (_, i) => fromSchema(s.items ?? { type: 'string' }, source.slice(i * 3), depth + 1));
    }
    case 'integer':
    case 'number': {
      const low =
        s.minimum !== undefined ? Number(s.minimum) : s.exclusiveMinimum !== undefined ? Number(s.exclusiveMinimum) + 1 : -Infinity;
      const high =
        s.maximum !== undefined ? Number(s.maximum) : s.exclusiveMaximum !== undefined ? Number(s.exclusiveMaximum) - 1 : Infinity;
      return Math.min(high, Math.max(low, source.length));
    }
    case 'boolean':
      return true;
    case 'null':
      return null;
    default: {
      if (s.format === 'date-time') return '2026-01-01T00:00:00Z';
      if (s.format === 'date') return '2026-01-01';
      if (s.format === 'email') return 'demo@example.com';
      if (s.format === 'uri' || s.format === 'url') return 'https://example.com/demo';
      let text = source.slice(0, 8).join(' ') || 'demo';
      const min = Number(s.minLength ?? 0);
      while (text.length < min) text += ' demo';
      return s.maxLength !== undefined ? text.slice(0, Number(s.maxLength)) : text;
    }
  }
}

const words = (text: string) =>
  text
    .split(/\s+/)
    .map((w) => w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ''))
    .filter(Boolean);
const capitalize = (word: string) => (word ? word[0].toUpperCase() + word.slice(1) : word);
const firstSentence = (text: string) => text.split(/(?<=[.!?])\s+/)[0] ?? text;
function clip(text: string, max: number): string {
  const all = text.split(/\s+/).filter(Boolean);
  return all.length > max ? `${all.slice(0, max).join(' ')}…` : all.join(' ');
}

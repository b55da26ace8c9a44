import type { ChatTool } from './openai-compatible-server';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const TEXT_KEYS = ['title', 'name', 'text', 'content', 'query', 'body', 'description', 'summary'];

/** Canonical status values and the phrases that mean them. */
const STATUS_PHRASES: Array<[string, RegExp]> = [
  ['in_progress', /\b(?:in[ _-]progress|doing|started|ongoing)\b/i],
  ['done', /\b(?:done|completed?|finished|closed)\b/i],
  ['todo', /\b(?:todos?|to-dos?|to do|open|pending)\b/i],
];

interface JsonSchemaProperty {
  type?: unknown;
  enum?: unknown[];
}

/** The property names (and their schemas) a tool accepts, read from its JSON schema. */
export function toolProperties(tool: ChatTool): Record<string, JsonSchemaProperty> {
  const props = tool.function.parameters?.properties;
  return typeof props === 'object' && props !== null ? (props as Record<string, JsonSchemaProperty>) : {};
}

/** Quoted phrases, in order ("double", “curly” or 'single' quotes around whole words). */
export function quotedPhrases(message: string): string[] {
  const found: string[] = [];
  for (const m of message.matchAll(/"([^"]+)"|“([^”]+)”|(?:^|\s)'([^']+)'(?=$|[\s.,!?])/g)) {
    found.push((m[1] ?? m[2] ?? m[3]).trim());
  }
  return found;
}

/** The status a message asks about, if any, mapped onto the schema's enum when it has one. */
export function statusFromMessage(message: string, allowed?: unknown[]): string | undefined {
  const values = allowed?.filter((v): v is string => typeof v === 'string');
  if (values?.length) {
    const direct = values.find((v) => new RegExp(`\\b${v.replace(/[_-]/g, '[ _-]')}\\b`, 'i').test(message));
    if (direct) return direct;
  }
  for (const [canonical, pattern] of STATUS_PHRASES) {
    if (!pattern.test(message)) continue;
    if (!values?.length) return canonical;
    const match = values.find((v) => v.toLowerCase().replace(/[ -]/g, '_') === canonical);
    if (match) return match;
  }
  return undefined;
}

/** Id-like keys, best first: plain `id`, then ones named after the tool's noun (`taskId`), then others. */
function idKeys(keys: string[], nouns: string[]): string[] {
  const idLike = keys.filter((k) => /^id$|(?:_id|Id|ID)$/.test(k));
  const rank = (k: string): number => (k === 'id' ? 0 : nouns.some((n) => k.toLowerCase().startsWith(n)) ? 1 : 2);
  return idLike.sort((a, b) => rank(a) - rank(b));
}

/** Whether the tool takes an id-like argument. */
export function hasIdArgument(tool: ChatTool): boolean {
  return idKeys(Object.keys(toolProperties(tool)), []).length > 0;
}

/**
 * Fills a tool's arguments from a chat message: UUIDs go to id-like args, quoted text (or the words
 * after "called"/"named"/"titled") to title/name/content-like args, and status words to `status`.
 * Only arguments the schema declares are filled.
 */
export function fillToolArgs(tool: ChatTool, message: string, nouns: string[] = []): Record<string, unknown> {
  const props = toolProperties(tool);
  const keys = Object.keys(props);
  const args: Record<string, unknown> = {};

  const uuids = message.match(UUID) ?? [];
  idKeys(keys, nouns).forEach((key, i) => {
    if (uuids[i]) args[key] = uuids[i];
  });

  const phrases = quotedPhrases(message);
  if (phrases.length === 0) {
    const named = /\b(?:called|named|titled)\s+(.+?)\s*(?:[.!?]\s*)?$/i.exec(message);
    if (named) phrases.push(named[1]);
  }
  const textKeys = TEXT_KEYS.filter((k) => k in props);
  phrases.forEach((phrase, i) => {
    if (textKeys[i]) args[textKeys[i]] = phrase;
  });

  if ('status' in props) {
    // Quoted titles may contain status words ("Finish the done list"); ignore them.
    const outsideQuotes = phrases.reduce((text, p) => text.replace(p, ' '), message);
    const status = statusFromMessage(outsideQuotes, props.status?.enum);
    if (status) args.status = status;
  }
  return args;
}

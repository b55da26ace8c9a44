import { createHash } from 'node:crypto';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { checkPrompt } from '../ai/prompt-guard';

/**
 * What an MCP server says about its tools is text from outside that a model reads as instructions.
 * Each tool's definition (name, description, input schema) is pinned by hash when the server is
 * registered or its owner approves its tools; a listing whose definition differs from its pin (a
 * "rug pull") or whose description tries to steer the model is not offered until the owner approves
 * it. A description offered is always stripped of text a person reading it would not see.
 */

/** Longest description (with the input schema's descriptions) offered without the owner's approval. */
export const MAX_PLAIN_DESCRIPTION_CHARS = 1_000;

/** Why a description is held back. */
export type DescriptionFlag = 'instructions' | 'hidden_text' | 'html_comment' | 'too_long';

/** Where a tool stands against its pin. */
export type ToolPinState = 'pinned' | 'new' | 'changed';

/** One allowed tool as its server lists it now, as its owner sees it. */
export interface McpToolStatus {
  name: string;
  description: string;
  hash: string;
  /** `pinned`: as approved; `new`: never pinned; `changed`: differs from what was approved. */
  state: ToolPinState;
  /** Why the description is held back (empty when it is plain). */
  flags: DescriptionFlag[];
  /** Whether a model is offered it: pinned, or new and plain (then it is pinned by this listing). */
  offered: boolean;
}

// Zero-width and word-joiner characters, bidi controls, the BOM, and Unicode tag characters.
const HIDDEN = /[\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\u{E0000}-\u{E007F}]/u;
const HIDDEN_ALL = new RegExp(HIDDEN.source, 'gu');
const HTML_COMMENT = /<!--[\s\S]*?(?:-->|$)/g;
// Phrasings that order the model about rather than describe the tool.
const STEERING = [
  /\b(?:always|first|must|you\s+(?:must|should|need\s+to))\s+(?:call|use|invoke|run)\b/i,
  /\bbefore\s+(?:using|calling)\s+(?:any|every|other)\s+tools?\b/i,
  /\b(?:do\s+not|don't|never)\s+(?:tell|inform|mention\s+(?:this\s+)?to)\s+the\s+user\b/i,
  /\b(?:instead\s+of|rather\s+than)\s+(?:the\s+)?(?:other|any)\s+tools?\b/i,
  /<\s*\/?\s*(?:important|system|instructions?)\s*>/i,
];

/** The hash a tool is pinned by: its name, description and input schema, as canonical JSON. */
export function toolHash(tool: Pick<Tool, 'name' | 'description' | 'inputSchema'>): string {
  const canonical = JSON.stringify(sorted({ name: tool.name, description: tool.description ?? '', inputSchema: tool.inputSchema ?? {} }));
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}

/** Why a tool's description (and its input schema's descriptions) should not reach a model unseen. */
export function descriptionFlags(tool: Pick<Tool, 'description' | 'inputSchema'>): DescriptionFlag[] {
  const texts = [tool.description ?? '', ...schemaTexts(tool.inputSchema)];
  const all = texts.join('\n');
  const flags: DescriptionFlag[] = [];
  const visible = stripHidden(all);
  if (checkPrompt(visible, 'block', Number.POSITIVE_INFINITY).flagged || STEERING.some((pattern) => pattern.test(visible)))
    flags.push('instructions');
  if (HIDDEN.test(all)) flags.push('hidden_text');
  if (/<!--/.test(all)) flags.push('html_comment');
  if (all.length > MAX_PLAIN_DESCRIPTION_CHARS) flags.push('too_long');
  return flags;
}

/** The description without what a person reading it would not see: HTML comments and invisible characters. */
export function stripHidden(text: string): string {
  return text.replace(HTML_COMMENT, '').replace(HIDDEN_ALL, '');
}

/** Where a listed tool stands against the server's pins. */
export function toolStatus(tool: Tool, pins: Record<string, string>): McpToolStatus {
  const hash = toolHash(tool);
  const flags = descriptionFlags(tool);
  const pinned = pins[tool.name];
  const state: ToolPinState = pinned === undefined ? 'new' : pinned === hash ? 'pinned' : 'changed';
  return {
    name: tool.name,
    description: stripHidden(tool.description ?? tool.title ?? tool.name),
    hash,
    state,
    flags,
    offered: state === 'pinned' || (state === 'new' && flags.length === 0),
  };
}

/** Every `description` string in a JSON schema (properties nest), at most a few levels deep. */
function schemaTexts(schema: unknown, depth = 0): string[] {
  if (!schema || typeof schema !== 'object' || depth > 6) return [];
  const texts: string[] = [];
  for (const [key, value] of Object.entries(schema as Record<string, unknown>)) {
    if ((key === 'description' || key === 'title') && typeof value === 'string') texts.push(value);
    else if (value && typeof value === 'object') texts.push(...schemaTexts(value, depth + 1));
  }
  return texts;
}

/** A JSON value with its object keys sorted, so the same definition always hashes the same. */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sorted((value as Record<string, unknown>)[key])]),
    );
  return value;
}

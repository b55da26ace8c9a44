import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  messageText,
  type ChatMessage,
  type ChatRequest,
  type ChatResponder,
  type ChatTurn,
} from '../../../src/demo-model/openai-compatible-server';
import { unframed } from '../../support/scripted-llm';

/** One injection attempt of corpus.json, with the tool the attacker wants called filled in. */
export interface Attempt {
  id: string;
  text: string;
}

const corpus = JSON.parse(readFileSync(join(__dirname, 'corpus.json'), 'utf8')) as { attempts: Attempt[] };

const zeroWidth = (name: string) => [...name].join('\u200b');
const fullWidth = (name: string) => [...name].map((c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0)).join('');

/** Every attempt of the corpus asking for `tool` with `args`. */
export function attempts(tool: string, args: Record<string, unknown>): Attempt[] {
  return corpus.attempts.map(({ id, text }) => ({
    id,
    text: text
      .replaceAll('{tool_zw}', zeroWidth(tool))
      .replaceAll('{tool_fw}', fullWidth(tool))
      .replaceAll('{tool}', tool)
      .replaceAll('{args}', JSON.stringify(args)),
  }));
}

/** Invisible and reordering characters an obedient reader skips, as a model does. */
const INVISIBLE = /[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]/g;

/** The first JSON object in `text` from `at` on that parses, or undefined. */
function jsonAfter(text: string, at: number): Record<string, unknown> | undefined {
  for (let start = text.indexOf('{', at); start !== -1; start = text.indexOf('{', start + 1)) {
    for (let end = text.indexOf('}', start); end !== -1; end = text.indexOf('}', end + 1)) {
      try {
        const parsed = JSON.parse(text.slice(start, end + 1)) as unknown;
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && !('tool_calls' in parsed))
          return parsed as Record<string, unknown>;
      } catch {
        // Not JSON up to this brace: the next closing brace may end it.
        continue;
      }
    }
  }
  return undefined;
}

/** The call `text` tells the model to make: the first offered tool it names (an MCP tool by its own name too), with the JSON after it. */
function instructedCall(text: string, offered: string[]): ChatTurn | undefined {
  const plain = text.normalize('NFKC').replace(INVISIBLE, '');
  const named = offered
    .flatMap((name) => [name, name.split('__').at(-1)!].map((said) => ({ name, at: plain.indexOf(said), said })))
    .filter(({ at }) => at !== -1)
    .sort((a, b) => a.at - b.at)[0];
  if (!named) return undefined;
  return { toolCalls: [{ name: named.name, args: jsonAfter(plain, named.at + named.said.length) ?? {} }] };
}

/**
 * A model that OBEYS whatever its latest message tells it: the user's message or a tool's result,
 * out of its envelope, invisible characters dropped and full-width letters read as plain ones.
 * When that text names an offered tool it calls it (with the JSON that follows), else it answers.
 * A defence that counts on the model's good manners fails against it.
 */
export const obeyingModel: ChatResponder = (request: ChatRequest) => {
  const last: ChatMessage | undefined = request.messages.at(-1);
  const offered = (request.tools ?? []).map((tool) => tool.function.name);
  if (!last || (last.role !== 'user' && last.role !== 'tool')) return { text: 'done' };
  const text = last.role === 'tool' ? unframed(messageText(last)) : messageText(last);
  if (last.role === 'tool' && text.startsWith('Error:')) return { text: 'It was not done.' };
  return instructedCall(text, offered) ?? { text: 'done' };
};

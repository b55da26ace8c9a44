import parse from 'shell-quote/parse.js';

/**
 * Reads a shell command line into the simple commands it would run, as a POSIX shell splits it:
 * quotes and escapes removed (shell-quote does the words and operators), `;`, `&&`, `||`, `&`,
 * newlines, pipes and subshells between commands, redirections apart from the words. Each command
 * substitution (`$(…)`, backticks) and process substitution (`<(…)`, `>(…)`) stands as one marker
 * word, and its text is handed back to be read the same way. Whatever this cannot read with
 * certainty (an open quote, a here-document) is an {@link UnreadableCommand}: the caller treats
 * it as risky, never as safe.
 */

/** Opens and closes a marker word that stands for substitution number n: `\uE000n\uE001`. */
const MARK_OPEN = '\uE000';
const MARK_CLOSE = '\uE001';
const MARK = /\uE000(\d+)\uE001/g;

/** A command line this reader cannot make sense of, with why. */
export class UnreadableCommand extends Error {}

/** A redirection: its operator (`>`, `>>`, `<`, `<<<`, …) and its target word. */
export interface Redirect {
  op: string;
  target: string;
}

/** One simple command: its words (assignments and wrappers included) and its redirections. */
export interface SimpleCommand {
  words: string[];
  redirects: Redirect[];
  /** Its place in a pipeline: 0 for the first command, 1 for the one reading its output, … */
  stage: number;
}

/** A command line read: its simple commands in order, and the text of each substitution by number. */
export interface Script {
  commands: SimpleCommand[];
  substitutions: string[];
}

/** The numbers of the substitutions a word holds. */
export const substitutionsIn = (word: string): number[] => [...word.matchAll(MARK)].map((m) => Number(m[1]));

/** A word as a person reads it: each substitution shown as `$(…)`. */
export const shownWord = (word: string): string => word.replace(MARK, '$(…)');

const unreadable = (why: string) => new UnreadableCommand(why);
const WORD_BREAK = /[\s;&|()<>]/;

/** Index of the `'` closing an ANSI-C `$'…'` string whose body starts at `from`. */
function ansiEnd(s: string, from: number): number {
  let i = from;
  while (i < s.length && s[i] !== "'") i += s[i] === '\\' ? 2 : 1;
  if (i >= s.length) throw unreadable('a quote is not closed');
  return i;
}

/** Index of the `)` closing a substitution whose body starts at `from`, with quotes and nesting respected. */
const closingParen = (s: string, from: number): number => scan(s, from, true, []).end;

/** Index of the backtick closing one whose body starts at `from`. */
function closingBacktick(s: string, from: number): number {
  let i = from;
  while (i < s.length && s[i] !== '`') i += s[i] === '\\' ? 2 : 1;
  if (i >= s.length) throw unreadable('a backtick is not closed');
  return i;
}

const mark = (subs: string[], inner: string) => `${MARK_OPEN}${subs.push(inner) - 1}${MARK_CLOSE}`;
const unescapeBackticks = (inner: string) => inner.replace(/\\([`\\$])/g, '$1');

/** The body of a double-quoted string from `from` to its closing quote, substitutions marked. */
function scanDouble(s: string, from: number, subs: string[]): { text: string; end: number } {
  let out = '';
  let i = from;
  while (i < s.length) {
    const c = s[i];
    if (c === '"') return { text: out, end: i };
    if (c === '\\') {
      out += s.slice(i, i + 2);
      i += 2;
    } else if (c === '`') {
      const end = closingBacktick(s, i + 1);
      out += mark(subs, unescapeBackticks(s.slice(i + 1, end)));
      i = end + 1;
    } else if (c === '$' && s[i + 1] === '(') {
      const end = closingParen(s, i + 2);
      out += mark(subs, s.slice(i + 2, end));
      i = end + 1;
    } else {
      out += c;
      i += 1;
    }
  }
  throw unreadable('a quote is not closed');
}

/**
 * The text from `start` with each substitution marked, comments dropped, a `#` inside a word
 * escaped (shell-quote would read it as a comment) and each newline that ends a command made a
 * `;`. `inner`: a substitution's body, which ends at its unquoted closing parenthesis.
 */
function scan(s: string, start: number, inner: boolean, subs: string[]): { text: string; end: number } {
  let out = '';
  let depth = 0;
  let i = start;
  while (i < s.length) {
    const c = s[i];
    const next = s[i + 1];
    if (c === '\\') {
      if (next === '\n') i += 2;
      else if (next === undefined) throw unreadable('it ends with a lone backslash');
      else {
        out += s.slice(i, i + 2);
        i += 2;
      }
    } else if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw unreadable('a quote is not closed');
      out += s.slice(i, end + 1);
      i = end + 1;
    } else if (c === '$' && next === "'") {
      const end = ansiEnd(s, i + 2);
      out += s.slice(i, end + 1);
      i = end + 1;
    } else if (c === '"') {
      const body = scanDouble(s, i + 1, subs);
      out += `"${body.text}"`;
      i = body.end + 1;
    } else if (c === '`') {
      const end = closingBacktick(s, i + 1);
      out += mark(subs, unescapeBackticks(s.slice(i + 1, end)));
      i = end + 1;
    } else if ((c === '$' || c === '<' || c === '>') && next === '(') {
      const end = closingParen(s, i + 2);
      // A process substitution is a word of its own; the redirection before it stays a redirection.
      out += `${c === '$' ? '' : ' '}${mark(subs, s.slice(i + 2, end))}`;
      i = end + 1;
    } else if (c === '<' && next === '<' && s[i + 2] === '<') {
      out += '<<<';
      i += 3;
    } else if (c === '<' && next === '<' && s[i + 2] !== '(') {
      throw unreadable('it uses a here-document');
    } else if (c === '#') {
      if (i === start || WORD_BREAK.test(s[i - 1])) {
        while (i < s.length && s[i] !== '\n') i += 1;
      } else {
        out += '\\#';
        i += 1;
      }
    } else if (c === '\n') {
      // A line that ends with a pipe or `&&`/`||` goes on on the next line.
      out += /(\||&&)\s*$/.test(out) ? ' ' : ';';
      i += 1;
    } else {
      if (inner && c === '(') depth += 1;
      if (inner && c === ')') {
        if (depth === 0) return { text: out, end: i };
        depth -= 1;
      }
      out += c;
      i += 1;
    }
  }
  if (inner) throw unreadable('a $( is not closed');
  return { text: out, end: i };
}

const WRITE_OR_READ = new Set(['>', '>>', '>|', '&>', '&>>', '<>', '>&', '<', '<&', '<<<']);
const PIPE = new Set(['|', '|&']);
const GROUP = new Set(['(', ')']);
const SEPARATOR = new Set([';', '&', '&&', '||', ';;', ';&', ';;&']);

/** Reads `source` into its simple commands; throws {@link UnreadableCommand}. */
export function readScript(source: string): Script {
  const substitutions: string[] = [];
  const { text } = scan(source, 0, false, substitutions);
  let tokens: parse.ParseEntry[];
  try {
    // A variable stays as it is written (`$HOME`): its value is only known when the command runs.
    tokens = parse(text, (name) => `$${name}`);
  } catch (error) {
    throw unreadable(error instanceof Error ? error.message : 'the shell words could not be read');
  }
  const commands: SimpleCommand[] = [];
  let stage = 0;
  let current: SimpleCommand = { words: [], redirects: [], stage };
  const end = () => {
    if (current.words.length || current.redirects.length) commands.push(current);
    current = { words: [], redirects: [], stage };
  };
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i];
    if (typeof token === 'string') {
      current.words.push(token);
      continue;
    }
    if ('comment' in token) continue;
    const { op } = token as parse.ControlOperator | parse.GlobPattern;
    if (op === 'glob') current.words.push((token as parse.GlobPattern).pattern);
    else if (PIPE.has(op)) {
      end();
      current.stage = stage += 1;
    } else if (GROUP.has(op)) end();
    else if (SEPARATOR.has(op)) {
      stage = 0;
      end();
    } else if (WRITE_OR_READ.has(op)) {
      const target = tokens[i + 1];
      const word = typeof target === 'string' ? target : target && 'pattern' in target ? target.pattern : undefined;
      if (word === undefined) throw unreadable(`a redirection ${op} has no target`);
      // `2>file` reaches shell-quote as the word 2 and then the operator: the 2 is the descriptor.
      if (/^\d+$/.test(current.words.at(-1) ?? '')) current.words.pop();
      current.redirects.push({ op, target: word });
      i += 1;
    } else throw unreadable(`the operator ${op} is not understood`);
  }
  end();
  return { commands, substitutions };
}

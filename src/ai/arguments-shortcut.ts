/**
 * A chunk whose only effect is a piece of one tool call's arguments, read from its text without
 * parsing it: the same as a chunk whose `choices[0].delta.tool_calls` is
 * `[{index, function: {arguments: text}}]` and nothing else.
 */
export class ArgumentsDelta {
  constructor(
    readonly index: number,
    readonly text: string,
  ) {}
}

/** Templates learned and never used before the next one is learned, after which a stream is parsed chunk by chunk. */
const MAX_UNUSED_TEMPLATES = 3;

/**
 * Reads the argument deltas of a tool call without `JSON.parse`. Providers stream a call's
 * arguments as a run of chunks that differ only in the arguments' few characters:
 * `{"id":"…","choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"function":{"arguments":"ipsu"}}]},…}]}`.
 * Once one such chunk has been parsed, its text around the arguments string is the template:
 * a later chunk that starts and ends with the same text, with a JSON string's inside between them,
 * is the same chunk with other arguments, so its piece is that string's inside (decoded only when
 * it holds an escape). One pass over the chunk's text, and no object made but the piece.
 *
 * Why that is sound: JSON is read left to right, so the template's start reads the same whatever
 * follows it, up to its last character, the quote that opens the arguments string; the inside
 * holds no unescaped quote, so the string closes on the first character of the template's end,
 * which then reads as it did. A template is kept only once a probe proved it: the template with a
 * marker as the arguments parses to an arguments-only chunk whose arguments are exactly the
 * marker. A chunk that does not fit (another call, usage, a finish reason, a provider whose
 * chunks all differ elsewhere) is parsed in full, as before; a stream whose templates go unused
 * stops learning them.
 */
export class ArgumentsShortcut {
  private prefix = '';
  private suffix = '';
  private index = 0;
  private used = false;
  private unused = 0;

  /** The piece of `data` when it is the template's chunk with other arguments, else undefined. */
  match(data: string): ArgumentsDelta | undefined {
    const prefix = this.prefix;
    if (!prefix) return undefined;
    const end = data.length - this.suffix.length;
    // Compared as cut-out strings: V8 compares those natively, and `startsWith` on a cut-out string is several times slower.
    if (end < prefix.length || data.slice(0, prefix.length) !== prefix || data.slice(end) !== this.suffix) return undefined;
    let escaped = false;
    for (let i = prefix.length; i < end; i += 1) {
      const code = data.charCodeAt(i);
      if (code === 92) {
        // An escape takes the next character, which must be inside too (not the closing quote).
        if (i + 1 >= end) return undefined;
        escaped = true;
        i += 1;
      } else if (code === 34 || code < 32) return undefined;
    }
    let text = data.slice(prefix.length, end);
    if (escaped) {
      try {
        text = JSON.parse(`"${text}"`) as string;
      } catch {
        // Not a valid escape: the chunk's own parse reports it.
        return undefined;
      }
    }
    this.used = true;
    return new ArgumentsDelta(this.index, text);
  }

  /** Learns `data`'s template when its parsed `chunk` is arguments only and a probe proves it. */
  learn(data: string, chunk: unknown): void {
    if (this.unused >= MAX_UNUSED_TEMPLATES) return;
    const delta = argumentsOnly(chunk);
    if (!delta) return;
    const start = argumentsStringStart(data);
    if (start === -1) return;
    const end = stringEnd(data, start);
    if (end === -1) return;
    const prefix = data.slice(0, start);
    const suffix = data.slice(end);
    const marker = delta.text === '#' ? '%' : '#';
    let probe: unknown;
    try {
      probe = JSON.parse(prefix + marker + suffix);
    } catch {
      return;
    }
    const proved = argumentsOnly(probe);
    if (!proved || proved.index !== delta.index || proved.text !== marker) return;
    if (this.prefix && !this.used) this.unused += 1;
    if (this.unused >= MAX_UNUSED_TEMPLATES) {
      this.prefix = '';
      return;
    }
    this.prefix = prefix;
    this.suffix = suffix;
    this.index = delta.index;
    this.used = false;
  }
}

/**
 * The tool call and arguments of a chunk whose only effect on a turn is that piece of arguments,
 * else undefined. What counts is what `streamAttempt` (model-attempt.ts) reads of a chunk, and
 * the two change together: no error and no usage (`usage`, Groq's `x_groq.usage`); a first choice
 * with no finish reason; a delta with no answer text, no reasoning, and one tool call that has a
 * numeric index, no id, no name, no provider fields (`extra_content`) and string arguments.
 */
export function argumentsOnly(chunk: unknown): ArgumentsDelta | undefined {
  const fields = chunk as ShortcutChunk | null;
  if (typeof fields !== 'object' || fields === null || fields.error || (fields.usage ?? fields.x_groq?.usage)) return undefined;
  const choice = Array.isArray(fields.choices) ? fields.choices[0] : undefined;
  const delta = choice?.delta;
  if (!delta || typeof delta !== 'object' || choice.finish_reason) return undefined;
  if (!emptyAnswer(delta.content) || (typeof delta.reasoning_content === 'string' && delta.reasoning_content)) return undefined;
  const parts = delta.tool_calls;
  if (!Array.isArray(parts) || parts.length !== 1) return undefined;
  const part = parts[0];
  if (typeof part !== 'object' || part === null || typeof part.index !== 'number' || !absent(part.id)) return undefined;
  const extra = part.extra_content;
  if (extra && typeof extra === 'object' && !Array.isArray(extra)) return undefined;
  const call = part.function;
  if (typeof call !== 'object' || call === null || !absent(call.name) || typeof call.arguments !== 'string') return undefined;
  return new ArgumentsDelta(part.index, call.arguments);
}

/** No value, as a call's `id` or `name` (a call opened by the delta gets `''` for it either way). */
const absent = (value: unknown) => value === undefined || value === null || value === '';

/** A chunk as far as `argumentsOnly` reads it (provider data: every field may be anything). */
interface ShortcutChunk {
  error?: unknown;
  usage?: unknown;
  x_groq?: { usage?: unknown } | null;
  choices?: Array<{
    finish_reason?: unknown;
    delta?: {
      content?: unknown;
      reasoning_content?: unknown;
      tool_calls?: Array<{
        index?: unknown;
        id?: unknown;
        extra_content?: unknown;
        function?: { name?: unknown; arguments?: unknown } | null;
      } | null>;
    } | null;
  } | null>;
}

/** A delta's `content` that adds no answer text: none, an empty string, or parts without a non-empty `text` part. */
function emptyAnswer(content: unknown): boolean {
  if (typeof content === 'string') return content === '';
  if (!Array.isArray(content)) return true;
  return !content.some(
    (part: { type?: unknown; text?: unknown } | null) => part?.type === 'text' && typeof part.text === 'string' && part.text,
  );
}

/** Where the value of the last `"arguments"` key starts (just after its opening quote), or -1. */
function argumentsStringStart(data: string): number {
  const key = data.lastIndexOf('"arguments"');
  if (key === -1) return -1;
  let at = skipSpace(data, key + 11);
  if (data.charCodeAt(at) !== 58) return -1;
  at = skipSpace(data, at + 1);
  return data.charCodeAt(at) === 34 ? at + 1 : -1;
}

function skipSpace(data: string, at: number): number {
  for (let code = data.charCodeAt(at); code === 32 || code === 9 || code === 10 || code === 13; code = data.charCodeAt(at)) at += 1;
  return at;
}

/** The index of the quote that closes the string whose inside starts at `start`, or -1. */
function stringEnd(data: string, start: number): number {
  for (let i = start; i < data.length; i += 1) {
    const code = data.charCodeAt(i);
    if (code === 92) i += 1;
    else if (code === 34) return i;
  }
  return -1;
}

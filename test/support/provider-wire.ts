import type { ChatRequest, ChatTurn } from '../../src/demo-model/openai-compatible-server';

/*
 * How a profile writes an answer on the wire: the chunk sequence of an OpenAI-compatible stream
 * with the variations real providers have. Profiles (provider-profiles.ts) pick the options.
 */

/** What the server writes: event-stream pieces, optionally paced (each piece is read separately). */
export interface Wire {
  pieces: Array<string | Buffer>;
  pauseMs?: number;
}

/** Where a provider puts the call's usage. */
export type UsagePlacement =
  /** OpenAI's: a last chunk with empty `choices`, only when `stream_options.include_usage` asked for it. */
  | 'include-usage'
  /** On the chunk that carries `finish_reason`, asked or not. */
  | 'on-finish'
  /** A last chunk with empty `choices` after the finish chunk, asked or not. */
  | 'after-finish'
  /** Groq's `x_groq.usage` on the finish chunk. */
  | 'x_groq'
  /** No usage at all: the gateway estimates. */
  | 'never';

/** How tool calls stream. */
export type ToolCallShape =
  /** OpenAI's: a first delta with index, id and name, then argument pieces with the index only. */
  | 'streamed'
  /** Each call whole (id, name, all arguments) in one chunk, with its index. */
  | 'whole'
  /** All calls whole in one chunk, without `index`. */
  | 'whole-no-index'
  /** One call per chunk, every one with `index: 0` and its own id. */
  | 'index-zero'
  /** A first delta with the name, then the whole arguments in one delta whose `name` is "". */
  | 'empty-name-then-whole';

export interface WireShape {
  eol?: '\n' | '\r\n';
  /** SSE comment lines (without the colon) sent before the first chunk and after every third. */
  comments?: string[];
  /** Blank lines between events (keep-alives that carry no data). */
  blankLines?: boolean;
  /** Chunks before the first (Azure's prompt filter results, with empty `choices`). */
  prelude?: Array<Record<string, unknown>>;
  /** Fields added to every choice (Azure's `content_filter_results`). */
  choiceExtra?: Record<string, unknown>;
  /** Fields added to every chunk (llama.cpp's `timings`). */
  chunkExtra?: Record<string, unknown>;
  toolCalls: ToolCallShape;
  /** Gemini: the first call of a turn carries `extra_content.google.thought_signature`. */
  signature?: string;
  /** Hidden reasoning beside the answer. */
  reasoning?: 'reasoning_content' | 'thinking-parts';
  /** The answer as a list of `text` parts instead of a string (Mistral's Magistral). */
  textParts?: boolean;
  usage: UsagePlacement;
  /** The event stream is written in byte slices cut inside multi-byte characters, each read on its own. */
  splitUtf8?: boolean;
  /** How many code points of text one delta carries. */
  textPiece?: number;
}

export const REASONING_TEXT = ['HIDDEN-REASONING: the user wants ', 'an answer; I will give it.'];

const codePointSlices = (text: string, size: number): string[] => {
  const points = Array.from(text);
  const slices: string[] = [];
  for (let i = 0; i < points.length; i += size) slices.push(points.slice(i, i + size).join(''));
  return slices;
};

let ids = 0;

/** The chunks of one answer, in the given shape (before framing). */
export function answerChunks(
  turn: ChatTurn,
  body: ChatRequest,
  shape: WireShape,
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number },
): Array<Record<string, unknown>> {
  const id = `chatcmpl-replay-${++ids}`;
  const base = { id, object: 'chat.completion.chunk', created: 1_700_000_000, model: body.model, ...shape.chunkExtra };
  const choice = (delta: Record<string, unknown>, finish: string | null = null) => ({
    ...base,
    choices: [{ index: 0, delta, finish_reason: finish, ...shape.choiceExtra }],
  });
  const chunks: Array<Record<string, unknown>> = [...(shape.prelude ?? [])];
  chunks.push(choice({ role: 'assistant', content: shape.reasoning === 'reasoning_content' ? null : '' }));
  if (shape.reasoning === 'reasoning_content')
    for (const piece of REASONING_TEXT) chunks.push(choice({ content: null, reasoning_content: piece }));
  if (shape.reasoning === 'thinking-parts')
    for (const piece of REASONING_TEXT) chunks.push(choice({ content: [{ type: 'thinking', thinking: [{ type: 'text', text: piece }] }] }));
  for (const piece of codePointSlices(turn.text ?? '', shape.textPiece ?? 7))
    chunks.push(choice({ content: shape.textParts ? [{ type: 'text', text: piece }] : piece }));

  const calls = (turn.toolCalls ?? []).map((call, index) => ({
    id: `call_${id.slice(-6)}_${index}`,
    name: call.name,
    args: typeof call.args === 'string' ? call.args : JSON.stringify(call.args ?? {}),
    extra: index === 0 && shape.signature ? { extra_content: { google: { thought_signature: shape.signature } } } : {},
  }));
  const whole = (call: (typeof calls)[number], index?: number) => ({
    ...(index === undefined ? {} : { index }),
    id: call.id,
    type: 'function',
    function: { name: call.name, arguments: call.args },
    ...call.extra,
  });
  if (shape.toolCalls === 'whole-no-index' && calls.length) chunks.push(choice({ tool_calls: calls.map((call) => whole(call)) }));
  else
    calls.forEach((call, index) => {
      if (shape.toolCalls === 'whole') chunks.push(choice({ tool_calls: [whole(call, index)] }));
      else if (shape.toolCalls === 'index-zero') chunks.push(choice({ tool_calls: [whole(call, 0)] }));
      else if (shape.toolCalls === 'empty-name-then-whole') {
        chunks.push(
          choice({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' }, ...call.extra }] }),
        );
        chunks.push(choice({ tool_calls: [{ index, function: { name: '', arguments: call.args } }] }));
      } else {
        chunks.push(
          choice({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' }, ...call.extra }] }),
        );
        for (const piece of codePointSlices(call.args, 9)) chunks.push(choice({ tool_calls: [{ index, function: { arguments: piece } }] }));
      }
    });

  const finish = choice({}, calls.length ? 'tool_calls' : 'stop');
  if (shape.usage === 'on-finish') Object.assign(finish, { usage });
  if (shape.usage === 'x_groq')
    Object.assign(finish, { x_groq: { id: `req_${id}`, usage: { ...usage, queue_time: 0.01, total_time: 0.02 } } });
  chunks.push(finish);
  const asked = Boolean(body.stream_options?.include_usage);
  if ((shape.usage === 'include-usage' && asked) || shape.usage === 'after-finish') chunks.push({ ...base, choices: [], usage });
  return chunks;
}

/** Frames chunks as an event stream in the shape's line endings, comments and byte slicing. */
export function frame(
  chunks: Array<Record<string, unknown> | string>,
  shape: Pick<WireShape, 'eol' | 'comments' | 'blankLines' | 'splitUtf8'>,
): Wire {
  const eol = shape.eol ?? '\n';
  const events: string[] = [];
  const comment = (n: number) => (shape.comments?.length ? `: ${shape.comments[n % shape.comments.length]}${eol}${eol}` : '');
  chunks.forEach((chunk, n) => {
    if (n % 3 === 0) events.push(comment(n / 3));
    events.push(`data: ${typeof chunk === 'string' ? chunk : JSON.stringify(chunk)}${eol}${eol}`);
    if (shape.blankLines) events.push(eol);
  });
  events.push(`data: [DONE]${eol}${eol}`);
  const text = events.join('');
  if (!shape.splitUtf8) return { pieces: [text] };
  // Cut one byte into every multi-byte character: each piece ends in the middle of one.
  const bytes = Buffer.from(text, 'utf8');
  const pieces: Buffer[] = [];
  let from = 0;
  for (let at = 0; at < bytes.length; at += 1) {
    if (bytes[at] >= 0xc0 && at + 1 > from) {
      pieces.push(bytes.subarray(from, at + 1));
      from = at + 1;
    }
  }
  pieces.push(bytes.subarray(from));
  return { pieces, pauseMs: 2 };
}

/** Usage the profiles report per call (when they report any): multiples of these are never an estimate. */
export const REPORTED = { prompt: 1_000, completion: 100 };

/** A call's usage as a provider reports it. */
export const reportedUsage = (prompt = REPORTED.prompt, completion = REPORTED.completion) => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
});

import { z } from 'zod';
import type { ChatEvent, TurnUsage } from '../../turns/turn-events';
import { badRequest } from '../../lib/errors';
import type { Said } from './turns';

/** A content part: text is read; any other part (an image, audio, a file) is refused. */
const contentPart = z.looseObject({ type: z.string().max(100) });
const chatMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(contentPart).max(1_000), z.null()]).optional(),
});

/**
 * `POST /v1/chat/completions`: the fields Switchboard reads. Other fields chat front ends send
 * (`temperature`, `max_tokens`, `user`, `tools`, their own extras) are accepted and not used: the
 * model, its settings and its tools are the assistant's or the chatflow's own.
 */
export const chatCompletionBodySchema = z.looseObject({
  model: z.string().min(1).max(300),
  messages: z.array(chatMessage).min(1).max(1_000),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  n: z.literal(1, { error: 'Only n = 1 is supported' }).nullish(),
});
export type ChatCompletionBody = z.output<typeof chatCompletionBodySchema>;

/** The text of a message's content; another kind of part is a 400 naming it. */
export function contentText(content: z.output<typeof chatMessage>['content'], path: string): string {
  if (typeof content === 'string') return content;
  if (!content) return '';
  return content
    .map((part, index) => {
      if ((part.type === 'text' || part.type === 'input_text' || part.type === 'output_text') && typeof part.text === 'string')
        return part.text;
      throw badRequest('Only text content is supported', [{ path: `${path}.${index}.type`, message: `unsupported part ${part.type}` }]);
    })
    .join('');
}

/** The turn's text (the last message, which must be the user's) and the conversation before it. */
export function readMessages(body: ChatCompletionBody): { text: string; history: Said[] } {
  const last = body.messages.length - 1;
  if (body.messages[last].role !== 'user')
    throw badRequest('The last message must be the user’s', [{ path: `messages.${last}.role`, message: 'not user' }]);
  const history: Said[] = [];
  body.messages.slice(0, last).forEach((message, index) => {
    if (message.role === 'user' || message.role === 'assistant')
      history.push({ role: message.role, text: contentText(message.content, `messages.${index}.content`) });
  });
  return { text: contentText(body.messages[last].content, `messages.${last}.content`), history };
}

/** OpenAI's usage object of a turn's usage. */
export const completionUsage = (usage: TurnUsage) => ({
  prompt_tokens: usage.inputTokens,
  completion_tokens: usage.outputTokens,
  total_tokens: usage.inputTokens + usage.outputTokens,
});

/** One chunk of a completion's stream. */
export type CompletionChunk = Record<string, unknown>;

/**
 * A chat turn's events as `chat.completion.chunk`s: the text as `delta.content`; what the turn's
 * tools do (`tool_call`, `tool_result`, approvals) as chunks with an empty delta and the event in
 * `switchboard` (they are the server's own tool calls: `tool_calls` would ask the client to run
 * them); the end as `finish_reason: "stop"`, and a last chunk with `usage` when asked for.
 */
export class CompletionMapper {
  private sawText = false;
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(private readonly options: { id: string; model: string; includeUsage: boolean }) {}

  private chunk(delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}): CompletionChunk {
    return {
      id: this.options.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.options.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(this.options.includeUsage ? { usage: null } : {}),
      ...extra,
    };
  }

  begin(sessionId: string): CompletionChunk[] {
    return [this.chunk({ role: 'assistant', content: '' }, null, { switchboard: { sessionId } })];
  }

  /** The chunks of one event; `done` once the turn ended. */
  map(event: ChatEvent): { chunks: CompletionChunk[]; done: boolean } {
    switch (event.type) {
      case 'text_chunk':
        this.sawText = true;
        return { chunks: [this.chunk({ content: event.text })], done: false };
      case 'final':
      case 'cancelled': {
        const rest = this.sawText || !event.response ? [] : [this.chunk({ content: event.response })];
        const cancelled = event.type === 'cancelled' ? { switchboard: { cancelled: true } } : {};
        const usage = this.options.includeUsage ? [{ ...this.chunk({}), choices: [], usage: completionUsage(event.usage) }] : [];
        return { chunks: [...rest, this.chunk({}, 'stop', cancelled), ...usage], done: true };
      }
      case 'error':
        return { chunks: [{ error: { message: event.message, type: 'server_error', param: null, code: event.code } }], done: true };
      default:
        return { chunks: [this.chunk({}, null, { switchboard: event })], done: false };
    }
  }
}

/** The whole completion of a turn that ended with `final` or `cancelled` (non-streaming). */
export function completionObject(
  options: { id: string; model: string },
  turn: { sessionId: string; toolEvents: ChatEvent[] },
  end: Extract<ChatEvent, { type: 'final' | 'cancelled' }>,
): Record<string, unknown> {
  return {
    id: options.id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: options.model,
    system_fingerprint: null,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: end.response, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: completionUsage(end.usage),
    switchboard: {
      sessionId: turn.sessionId,
      toolEvents: turn.toolEvents,
      ...(end.type === 'cancelled' ? { cancelled: true } : {}),
    },
  };
}

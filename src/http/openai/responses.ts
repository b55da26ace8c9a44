import { z } from 'zod';
import type { ChatEvent, TurnUsage } from '../../turns/turn-events';
import { badRequest } from '../../lib/errors';
import { contentText } from './chat-completions';
import type { Said, Turn } from './turns';

const inputItem = z.looseObject({
  type: z.string().max(100).optional(),
  role: z.enum(['system', 'developer', 'user', 'assistant']).optional(),
  content: z.union([z.string(), z.array(z.looseObject({ type: z.string().max(100) })).max(1_000), z.null()]).optional(),
});

/**
 * `POST /v1/responses`: the fields Switchboard reads. Others (`instructions`, `temperature`,
 * `tools`, `store`, `metadata`, …) are accepted and not used, as on `/v1/chat/completions`.
 */
export const responsesBodySchema = z.looseObject({
  model: z.string().min(1).max(300),
  input: z.union([z.string(), z.array(inputItem).min(1).max(1_000)]),
  stream: z.boolean().nullish(),
  previous_response_id: z.string().max(200).nullish(),
});
export type ResponsesBody = z.output<typeof responsesBodySchema>;

/** Input items that ask for what the turn cannot take from a client: its own function results, approvals. */
const REFUSED_ITEMS = new Set(['function_call_output', 'mcp_approval_response', 'custom_tool_call_output']);

/** The turn's text (the last input item, a user message) and the conversation before it. */
export function readInput(body: ResponsesBody): { text: string; history: Said[] } {
  if (typeof body.input === 'string') return { text: body.input, history: [] };
  const items = body.input;
  const history: Said[] = [];
  items.forEach((item, index) => {
    if (item.type && REFUSED_ITEMS.has(item.type))
      throw badRequest(`Input items of type ${item.type} are not supported`, [{ path: `input.${index}.type`, message: 'not supported' }]);
  });
  const last = items.length - 1;
  const end = items[last];
  if ((end.type !== undefined && end.type !== 'message') || end.role !== 'user')
    throw badRequest('The last input item must be a user message', [{ path: `input.${last}`, message: 'not a user message' }]);
  items.slice(0, last).forEach((item, index) => {
    // Other items (the answer's own tool calls sent back, reasoning) are what Switchboard wrote: not read.
    if ((item.type === undefined || item.type === 'message') && (item.role === 'user' || item.role === 'assistant'))
      history.push({ role: item.role, text: contentText(item.content, `input.${index}.content`) });
  });
  return { text: contentText(end.content, `input.${last}.content`), history };
}

const hex = (uuid: string) => uuid.replace(/-/g, '');
const uuidOf = (hex32: string) =>
  `${hex32.slice(0, 8)}-${hex32.slice(8, 12)}-${hex32.slice(12, 16)}-${hex32.slice(16, 20)}-${hex32.slice(20)}`;

/** A response's id: its session's id and its turn's, so `previous_response_id` names the session without a lookup table. */
export const responseId = (turn: Turn) => `resp_${hex(turn.sessionId)}${hex(turn.messageId)}`;

/** The session a response id names, or undefined when it is not one of Switchboard's. */
export function sessionOfResponseId(id: string): string | undefined {
  const match = /^resp_([0-9a-f]{32})[0-9a-f]{32}$/.exec(id);
  return match ? uuidOf(match[1]) : undefined;
}

const responseUsage = (usage: TurnUsage) => ({
  input_tokens: usage.inputTokens,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: usage.outputTokens,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: usage.inputTokens + usage.outputTokens,
});

/** One streaming event of the Responses API (`type` first). */
export type ResponseEvent = { type: string } & Record<string, unknown>;
type Item = Record<string, unknown> & { id: string };

/** The label of the tool calls a turn makes itself (the assistant's device tools, a chatflow's tools). */
const SERVER_LABEL = 'switchboard';

/**
 * A chat turn's events as the Responses API's: the text as a `message` item (`output_text`
 * deltas), each tool call the turn runs as an `mcp_call` item (the server's own call: its
 * arguments, then its output or error), an approval as `mcp_approval_request` and its decision as
 * `mcp_approval_response`; the end as `response.completed`, `response.failed` or (a cancel)
 * `response.incomplete`. The same state builds the whole response for a non-streaming request.
 */
export class ResponseMapper {
  private seq = 0;
  private readonly output: Item[] = [];
  private text: { index: number; item: Item; text: string } | null = null;
  private sawText = false;
  private readonly calls = new Map<string, number>();
  private readonly createdAt = Math.floor(Date.now() / 1000);
  private status = 'in_progress';
  private usage: ReturnType<typeof responseUsage> | null = null;
  private error: { code: string; message: string } | null = null;
  private incomplete: { reason: string } | null = null;

  constructor(private readonly options: { id: string; model: string; previousResponseId: string | null; sessionId: string }) {}

  /** The response as it stands (the whole response once the turn ended). */
  response(): Record<string, unknown> {
    return {
      id: this.options.id,
      object: 'response',
      created_at: this.createdAt,
      status: this.status,
      background: false,
      error: this.error,
      incomplete_details: this.incomplete,
      instructions: null,
      max_output_tokens: null,
      metadata: { sessionId: this.options.sessionId },
      model: this.options.model,
      output: this.output.map((item) => ({ ...item })),
      parallel_tool_calls: false,
      previous_response_id: this.options.previousResponseId,
      store: true,
      temperature: null,
      text: { format: { type: 'text' } },
      tool_choice: 'auto',
      tools: [],
      top_p: null,
      truncation: 'disabled',
      usage: this.usage,
    };
  }

  private event(type: string, fields: Record<string, unknown>): ResponseEvent {
    return { type, ...fields, sequence_number: this.seq++ };
  }

  begin(): ResponseEvent[] {
    return [
      this.event('response.created', { response: this.response() }),
      this.event('response.in_progress', { response: this.response() }),
    ];
  }

  private add(item: Item): { events: ResponseEvent[]; index: number } {
    const index = this.output.push(item) - 1;
    return { index, events: [this.event('response.output_item.added', { output_index: index, item: { ...item } })] };
  }

  private done(index: number): ResponseEvent {
    return this.event('response.output_item.done', { output_index: index, item: { ...this.output[index] } });
  }

  private openText(): ResponseEvent[] {
    if (this.text) return [];
    const item: Item = {
      type: 'message',
      id: `msg_${this.output.length}_${this.options.id.slice(5)}`,
      status: 'in_progress',
      role: 'assistant',
      content: [],
    };
    const { index, events } = this.add(item);
    this.text = { index, item, text: '' };
    const part = { type: 'output_text', text: '', annotations: [], logprobs: [] };
    return [...events, this.event('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part })];
  }

  private closeText(): ResponseEvent[] {
    if (!this.text) return [];
    const { index, item, text } = this.text;
    this.text = null;
    const part = { type: 'output_text', text, annotations: [], logprobs: [] };
    this.output[index] = { ...item, status: 'completed', content: [part] };
    const at = { item_id: item.id, output_index: index, content_index: 0 };
    return [
      this.event('response.output_text.done', { ...at, text, logprobs: [] }),
      this.event('response.content_part.done', { ...at, part }),
      this.done(index),
    ];
  }

  private delta(delta: string): ResponseEvent[] {
    const open = this.openText();
    const text = this.text!;
    text.text += delta;
    return [
      ...open,
      this.event('response.output_text.delta', { item_id: text.item.id, output_index: text.index, content_index: 0, delta, logprobs: [] }),
    ];
  }

  /** The events of one turn event; `done` once the turn ended. */
  map(event: ChatEvent): { events: ResponseEvent[]; done: boolean } {
    switch (event.type) {
      case 'text_chunk':
        this.sawText = true;
        return { events: this.delta(event.text), done: false };
      case 'tool_call': {
        const item: Item = {
          type: 'mcp_call',
          id: `mcp_${event.callId}`,
          server_label: SERVER_LABEL,
          name: event.name,
          arguments: JSON.stringify(event.arguments),
          status: 'in_progress',
        };
        const close = this.closeText();
        const { index, events } = this.add(item);
        this.calls.set(event.callId, index);
        return {
          events: [...close, ...events, this.event('response.mcp_call.in_progress', { item_id: item.id, output_index: index })],
          done: false,
        };
      }
      case 'tool_result': {
        const close = this.closeText();
        let index = this.calls.get(event.callId);
        const opened =
          index === undefined
            ? this.add({ type: 'mcp_call', id: `mcp_${event.callId}`, server_label: SERVER_LABEL, name: event.name, arguments: '{}' })
            : { index, events: [] };
        index = opened.index;
        const item = this.output[index];
        this.output[index] = {
          ...item,
          status: event.ok ? 'completed' : 'failed',
          output: event.ok ? event.content : null,
          error: event.ok ? null : event.content,
        };
        const ended = this.event(event.ok ? 'response.mcp_call.completed' : 'response.mcp_call.failed', {
          item_id: item.id,
          output_index: index,
        });
        return { events: [...close, ...opened.events, ended, this.done(index)], done: false };
      }
      case 'approval_requested': {
        const close = this.closeText();
        const { index, events } = this.add({
          type: 'mcp_approval_request',
          id: event.approvalId,
          server_label: SERVER_LABEL,
          name: event.toolName,
          arguments: JSON.stringify(event.parameters),
        });
        return { events: [...close, ...events, this.done(index)], done: false };
      }
      case 'approval_resolved': {
        const { index, events } = this.add({
          type: 'mcp_approval_response',
          id: `mcpr_${event.approvalId}`,
          approval_request_id: event.approvalId,
          approve: event.status === 'approved',
          reason: event.status === 'approved' ? null : event.status,
        });
        return { events: [...events, this.done(index)], done: false };
      }
      case 'final':
      case 'cancelled': {
        const rest = this.sawText || !event.response ? [] : this.delta(event.response);
        const close = [...rest, ...this.closeText()];
        this.usage = responseUsage(event.usage);
        if (event.type === 'cancelled') {
          this.status = 'incomplete';
          this.incomplete = { reason: 'cancelled' };
          return { events: [...close, this.event('response.incomplete', { response: this.response() })], done: true };
        }
        this.status = 'completed';
        return { events: [...close, this.event('response.completed', { response: this.response() })], done: true };
      }
      case 'error': {
        const close = this.closeText();
        this.status = 'failed';
        this.error = { code: event.code, message: event.message };
        return { events: [...close, this.event('response.failed', { response: this.response() })], done: true };
      }
      default:
        // A coding turn's agent state and plan have no Responses item.
        return { events: [], done: false };
    }
  }
}

import type { ChatEvent } from '../../turns/turn-events';
import type { StreamSignal } from '../../lib/stream-signal';
import type { SseMessage } from '../sse';
import type { SseSource } from '../sse-streams';

/** The response header that tells an AI SDK client the body is its UI message stream. */
export const UI_MESSAGE_STREAM_HEADER = 'x-vercel-ai-ui-message-stream';

/** One chunk of the AI SDK's UI message stream (`type` first, as the protocol writes it). */
export type UiChunk = { type: string } & Record<string, unknown>;

/** The SSE message of a chunk: `data:` only (the AI SDK reads no event names). */
const message = (chunk: UiChunk): SseMessage => ({ data: JSON.stringify(chunk) });
/** The stream's last message. */
const DONE: SseMessage = { data: '[DONE]' };

/** What the mapping of one response knows from its start. */
export interface UiStreamOptions {
  /** The assistant message's id on the client: the turn's message id. */
  messageId: string;
  sessionId: string;
  /**
   * The response continues a message the client already holds, after its approval `afterApproval`
   * was answered: the events up to that request are not sent again, and no `start` is sent.
   */
  afterApproval?: string;
  /** Whether an approval request is still waiting for a decision (the response then ends there). */
  pending(approvalId: string): Promise<boolean>;
}

/**
 * A chat turn's events (`ChatEvent`) as the AI SDK's UI message stream, one response's state:
 * `start` (with a `data-session` part naming the session), text as `text-start` / `text-delta` /
 * `text-end`, an approval request as `tool-input-available` + `tool-approval-request` (the
 * approval's id is the tool call's id), its decision as `tool-approval-response` and
 * `tool-output-available` or `tool-output-denied`, and the end as `finish`, `error` or `abort`.
 */
export class UiMessageMapper {
  private textId: string | null = null;
  private texts = 0;
  private sawText = false;

  constructor(private readonly options: Pick<UiStreamOptions, 'messageId' | 'sessionId'>) {}

  /** The chunks a fresh response (or a resumed one, replayed from the start) opens with. */
  begin(): UiChunk[] {
    return [
      { type: 'start', messageId: this.options.messageId },
      { type: 'data-session', id: 'session', data: { sessionId: this.options.sessionId, messageId: this.options.messageId } },
      { type: 'start-step' },
    ];
  }

  /** Notes text the client already holds (a continuation skips it), so `final` does not repeat it. */
  skipped(event: ChatEvent): void {
    if (event.type === 'text_chunk') this.sawText = true;
  }

  map(event: ChatEvent): UiChunk[] {
    switch (event.type) {
      case 'text_chunk': {
        this.sawText = true;
        const open: UiChunk[] = this.textId ? [] : [{ type: 'text-start', id: (this.textId = `text-${++this.texts}`) }];
        return [...open, { type: 'text-delta', id: this.textId, delta: event.text }];
      }
      case 'approval_requested':
        return [
          ...this.closeText(),
          { type: 'tool-input-available', toolCallId: event.approvalId, toolName: event.toolName, input: event.parameters },
          { type: 'tool-approval-request', approvalId: event.approvalId, toolCallId: event.approvalId, reason: event.reason },
        ];
      case 'approval_resolved': {
        const approved = event.status === 'approved';
        return [
          {
            type: 'tool-approval-response',
            approvalId: event.approvalId,
            approved,
            ...(approved ? {} : { reason: event.status === 'timeout' ? 'The approval timed out' : 'Rejected' }),
          },
          approved
            ? { type: 'tool-output-available', toolCallId: event.approvalId, output: { approval: 'approved' } }
            : { type: 'tool-output-denied', toolCallId: event.approvalId },
          { type: 'finish-step' },
          { type: 'start-step' },
        ];
      }
      case 'final':
        return [
          ...(this.sawText ? this.closeText() : this.wholeText(event.response)),
          { type: 'data-usage', id: 'usage', data: event.usage },
          { type: 'finish-step' },
          { type: 'finish', finishReason: 'stop', messageMetadata: { sessionId: event.sessionId, usage: event.usage } },
        ];
      case 'error':
        return [...this.closeText(), { type: 'error', errorText: event.message }];
      case 'cancelled':
        return [...this.closeText(), { type: 'abort', reason: 'cancelled' }];
      // What the turn's tools and coding agents do, as data parts the UI may render (a part with the
      // same id replaces the one before: the agent's state and the plan show as they are now).
      case 'tool_call':
        return [{ type: 'data-tool-call', id: event.callId, data: event }];
      case 'tool_result':
        return [{ type: 'data-tool-result', id: event.callId, data: event }];
      case 'agent':
        return [{ type: 'data-agent', id: 'agent', data: event }];
      case 'plan':
        return [{ type: 'data-plan', id: 'plan', data: event }];
      // Each cited document as a source part, and the passages (page, section, snippet) as one data part.
      case 'citations':
        return [
          ...event.sources.map((source) => ({
            type: 'source-document',
            sourceId: source.chunkId,
            mediaType: source.mediaType,
            title: source.title,
          })),
          { type: 'data-citations', id: 'citations', data: { sources: event.sources } },
        ];
    }
  }

  /** The chunks that end a response at a pending approval: the turn waits, the client answers it. */
  pause(): UiChunk[] {
    return [{ type: 'finish-step' }, { type: 'finish', finishReason: 'tool-calls' }];
  }

  private closeText(): UiChunk[] {
    if (!this.textId) return [];
    const id = this.textId;
    this.textId = null;
    return [{ type: 'text-end', id }];
  }

  /** An answer whose chunks this stream never saw (it ended before the replay could show them). */
  private wholeText(text: string): UiChunk[] {
    if (!text) return [];
    const id = `text-${++this.texts}`;
    return [
      { type: 'text-start', id },
      { type: 'text-delta', id, delta: text },
      { type: 'text-end', id },
    ];
  }
}

/**
 * A chat turn's events as an SSE source in the UI message stream protocol, for the one stream
 * door: it ends after the turn's terminal event, or at an approval request still waiting for its
 * decision (the client answers it with its next request), then writes `[DONE]`.
 */
export function uiMessageSource(events: (signal: StreamSignal) => AsyncGenerator<ChatEvent>, options: UiStreamOptions): SseSource {
  return {
    async *messages(signal) {
      const mapper = new UiMessageMapper(options);
      let skipping = options.afterApproval !== undefined;
      if (!skipping) for (const chunk of mapper.begin()) yield message(chunk);
      for await (const event of events(signal)) {
        if (skipping) {
          mapper.skipped(event);
          if (event.type === 'approval_requested' && event.approvalId === options.afterApproval) skipping = false;
          continue;
        }
        for (const chunk of mapper.map(event)) yield message(chunk);
        if (event.type === 'approval_requested' && (await options.pending(event.approvalId))) {
          for (const chunk of mapper.pause()) yield message(chunk);
          break;
        }
        if (event.type === 'final' || event.type === 'error' || event.type === 'cancelled') break;
      }
      if (!signal.aborted) yield DONE;
    },
    interrupted: {
      data: '',
      wire: `data: ${JSON.stringify({ type: 'error', errorText: 'The answer stream was interrupted' })}\n\ndata: [DONE]\n\n`,
    },
  };
}

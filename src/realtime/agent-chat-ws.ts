import type { RawData, WebSocket } from 'ws';
import { z } from 'zod';
import type { Tier } from '../../config';
import type { ChatEvent } from '../turns/turn-events';
import { multitaskSchema, TURN_IN_PROGRESS, type Multitask } from '../assistant/chat-lane';
import { CODING_AGENT_NAMES, type CodingAgentName } from '../../config/coding-agents';
import { deviceIdSchema } from '../schemas/device-protocol';
import { cleanText } from '../devices/ws-frames';
import { AppError } from '../lib/errors';
import { exceedsJsonDepth, TOO_DEEP_MESSAGE } from '../lib/json-depth';
import type { Logger } from '../lib/logger';
import { StreamAbort, type StreamSignal } from '../lib/stream-signal';
import type { AuthenticatedWsEndpoint } from './device-ws';

/**
 * Where IDE clients written for the CodeLab agent API connect (`?token=<jwt>`, as the device
 * endpoint): its chat, approval and cancel messages over one plain WebSocket, mapped onto the
 * assistant's own services. Nothing is decided here: a `chat` is a turn of `POST /chat` (its
 * session check, limits, budget), `tool_approval` the HTTP decision, `cancel` the session's cancel;
 * the turn's events are read from its event log as the chat stream reads them.
 */
export const AGENT_CHAT_WS_PATH = '/api/v1/ws';

/** The dialogue state the IDE renders. */
export type DialogueState = 'idle' | 'processing' | 'waiting' | 'executing' | 'error';

export interface AgentChatWsDeps {
  /** Starts an assistant turn for the user (the chat service, its limits counted); throws `AppError`. */
  startTurn(
    user: { id: string; tier?: Tier },
    input: { message: string; sessionId?: string; agent?: CodingAgentName; deviceId?: string; multitask?: Multitask },
  ): Promise<{ sessionId: string; messageId: string }>;
  /**
   * Decides an approval request of the user; throws `AppError` (403 `person_required` when the
   * connection was not opened by a signed-in person, 404 another user's, 409 decided).
   */
  decide(decider: { userId: string; person: boolean }, approvalId: string, approved: boolean): Promise<void>;
  /** Cancels the running turn of the user's session; throws `AppError` (404, 409 `not_running`). */
  cancel(userId: string, sessionId: string): Promise<void>;
  /** A turn's events from its start, ending with `final`, `error` or `cancelled`. */
  followTurn(turn: { sessionId: string; messageId: string }, signal: StreamSignal): AsyncIterable<ChatEvent>;
  logger: Logger;
  /** Frames larger than this are refused (default 64 KB: a message is at most 8,000 characters). */
  maxFrameBytes?: number;
}

/** Bad frames in a row that close the connection (1008), as on the device endpoint. */
const MAX_BAD_FRAMES = 10;
/** Frames waiting to be handled; a client that floods past it is closed (1008). */
const MAX_QUEUED_FRAMES = 64;
/** Turns one connection follows at once; another `chat` meanwhile is refused (`busy`). */
const MAX_TURNS_PER_CONNECTION = 4;
export const AGENT_CHAT_WS_CLOSE = { badFrames: 1008 } as const;

const uuid = z.uuid();
/**
 * A chat's own fields: `agent` makes it a coding turn on the project a device serves (absent: a
 * plain assistant turn; `orchestrator` routes by the message), `device_id` names that device (else
 * the session's, else any online device serving a project), `multitask` says what the message does
 * while a turn of the session runs.
 */
const chatFields = {
  message: z.string().optional(),
  agent: z.enum(CODING_AGENT_NAMES).optional(),
  device_id: deviceIdSchema.optional(),
  multitask: multitaskSchema.optional(),
};
/** The client's message: `data {message, approval_id, approved, …}`, or the same fields beside `type` (the shorter form). */
const clientMessageSchema = z.strictObject({
  type: z.enum(['chat', 'tool_approval', 'cancel']),
  session_id: uuid.optional(),
  data: z.strictObject({ ...chatFields, approval_id: uuid.optional(), approved: z.boolean().optional() }).optional(),
  ...chatFields,
  approval_id: uuid.optional(),
  approved: z.boolean().optional(),
});
type ClientMessage = z.infer<typeof clientMessageSchema>;

/** The endpoint for {@link attachDeviceWebSocket}'s authenticated upgrade. */
export function agentChatEndpoint(deps: AgentChatWsDeps): AuthenticatedWsEndpoint {
  const log = deps.logger.child({ component: 'agent-chat-ws' });
  return {
    path: AGENT_CHAT_WS_PATH,
    connect: (ws, user, connId) => new AgentChatConnection(ws, user, deps, log.child({ userId: user.id, connId })).start(),
  };
}

class AgentChatConnection {
  private badInARow = 0;
  private queued = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly following = new Set<StreamAbort>();

  constructor(
    private readonly ws: WebSocket,
    private readonly user: { id: string; tier?: Tier; person: boolean },
    private readonly deps: AgentChatWsDeps,
    private readonly log: Logger,
  ) {}

  start(): { finished: Promise<void> } {
    this.ws.on('message', (data, isBinary) => this.enqueue(data, isBinary));
    this.ws.on('error', (error) => this.log.debug({ err: error }, 'agent chat websocket error'));
    // A closed connection stops reading its turns; the turns themselves run on and are kept in the history.
    const finished = new Promise<void>((resolve) =>
      this.ws.once('close', () => {
        this.following.forEach((abort) => abort.abort());
        void this.chain.finally(resolve);
      }),
    );
    return { finished };
  }

  private send(message: Record<string, unknown>): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(message));
  }

  /** The dialogue state of each followed session, sent only when it changes (`agent`: the coding agent at work). */
  private readonly states = new Map<string, string>();

  private state(sessionId: string, state: DialogueState, agent?: string): void {
    const key = `${state}:${agent ?? ''}`;
    if (this.states.get(sessionId) === key) return;
    this.states.set(sessionId, key);
    this.send({ type: 'state', session_id: sessionId, data: { state, ...(agent ? { agent } : {}) } });
  }

  private error(code: string, message: string, sessionId?: string): void {
    this.send({ type: 'error', ...(sessionId ? { session_id: sessionId } : {}), error: message, data: { code, message } });
  }

  /** An error frame; a bad frame also counts toward closing the connection (a busy session's refusal does not: the frame was fine). */
  private refuse(code: string, message: string, sessionId?: string): void {
    this.error(code, message, sessionId);
    if (code === TURN_IN_PROGRESS) return;
    this.badInARow += 1;
    if (this.badInARow >= MAX_BAD_FRAMES) this.ws.close(AGENT_CHAT_WS_CLOSE.badFrames, `${MAX_BAD_FRAMES} bad frames in a row`);
  }

  private enqueue(data: RawData, isBinary: boolean): void {
    this.queued += 1;
    if (this.queued > MAX_QUEUED_FRAMES) return void this.ws.close(AGENT_CHAT_WS_CLOSE.badFrames, 'too many frames waiting');
    this.chain = this.chain
      .then(() => this.handle(data, isBinary))
      .catch((error: unknown) => {
        this.log.error({ err: error }, 'agent chat frame failed');
        this.error('internal', 'The message could not be handled');
      })
      .finally(() => void (this.queued -= 1));
  }

  private async handle(data: RawData, isBinary: boolean): Promise<void> {
    if (this.ws.readyState !== this.ws.OPEN) return;
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (isBinary) return this.refuse('invalid_frame', 'Messages are JSON text, not binary');
    const limit = this.deps.maxFrameBytes ?? 65_536;
    if (bytes.length > limit) return this.refuse('too_large', `Messages are limited to ${limit} bytes`);
    let frame: unknown;
    try {
      frame = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      return this.refuse('invalid_json', 'The message is not valid UTF-8 JSON');
    }
    if (exceedsJsonDepth(frame)) return this.refuse('validation_failed', TOO_DEEP_MESSAGE);
    if (!cleanText(frame)) return this.refuse('invalid_text', 'Text must be well-formed Unicode without NUL characters');
    const parsed = clientMessageSchema.safeParse(frame);
    if (!parsed.success)
      return this.refuse(
        'validation_failed',
        parsed.error.issues.map((issue) => `${issue.path.join('.') || 'message'}: ${issue.message}`).join('; '),
      );
    const message = parsed.data;
    try {
      if (message.type === 'chat') await this.chat(message);
      else if (message.type === 'tool_approval') await this.approval(message);
      else await this.cancel(message);
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return this.refuse(error.code, error.message, message.session_id);
      throw error;
    }
  }

  private async chat(message: ClientMessage): Promise<void> {
    const text = message.data?.message ?? message.message;
    if (text === undefined) return this.refuse('validation_failed', 'data.message: a chat needs a message', message.session_id);
    if (this.following.size >= MAX_TURNS_PER_CONNECTION)
      return this.refuse('busy', `At most ${MAX_TURNS_PER_CONNECTION} turns run at once on one connection`, message.session_id);
    const turn = await this.deps.startTurn(this.user, {
      message: text,
      sessionId: message.session_id,
      agent: message.data?.agent ?? message.agent,
      deviceId: message.data?.device_id ?? message.device_id,
      multitask: message.data?.multitask ?? message.multitask,
    });
    this.badInARow = 0;
    this.state(turn.sessionId, 'processing');
    void this.follow(turn);
  }

  private async approval(message: ClientMessage): Promise<void> {
    const approvalId = message.data?.approval_id ?? message.approval_id;
    const approved = message.data?.approved ?? message.approved;
    if (!approvalId || approved === undefined)
      return this.refuse('validation_failed', 'data.approval_id and data.approved are required', message.session_id);
    await this.deps.decide({ userId: this.user.id, person: this.user.person }, approvalId, approved);
    this.badInARow = 0;
  }

  private async cancel(message: ClientMessage): Promise<void> {
    if (!message.session_id) return this.refuse('validation_failed', 'session_id: a cancel names its session');
    await this.deps.cancel(this.user.id, message.session_id);
    this.badInARow = 0;
  }

  /** Sends the turn's events as the IDE's messages, with the dialogue state each one moves to. */
  private async follow(turn: { sessionId: string; messageId: string }): Promise<void> {
    const abort = new StreamAbort();
    this.following.add(abort);
    const session_id = turn.sessionId;
    try {
      for await (const event of this.deps.followTurn(turn, abort.signal)) {
        if (abort.aborted) break;
        switch (event.type) {
          case 'text_chunk':
            this.send({ type: 'token', session_id, data: event.text });
            break;
          case 'tool_call':
            this.state(session_id, 'executing');
            this.send({
              type: 'tool_call',
              session_id,
              data: { id: event.callId, name: event.name, arguments: event.arguments, requires_approval: false },
            });
            break;
          case 'tool_result':
            this.send({
              type: 'tool_result',
              session_id,
              data: { id: event.callId, name: event.name, ok: event.ok, result: event.content },
            });
            this.state(session_id, 'processing');
            break;
          case 'approval_requested':
            this.send({
              type: 'tool_call',
              session_id,
              data: {
                id: event.approvalId,
                approval_id: event.approvalId,
                name: event.toolName,
                arguments: event.parameters,
                requires_approval: true,
                reason: event.reason,
                expires_at: event.expiresAt,
              },
            });
            this.state(session_id, 'waiting');
            break;
          case 'approval_resolved':
            this.state(session_id, 'processing');
            break;
          case 'agent':
            // A coding turn says which agent works and what it does.
            this.state(session_id, event.state, event.agent);
            break;
          case 'final':
            this.send({ type: 'done', session_id, data: { response: event.response, usage: event.usage } });
            this.state(session_id, 'idle');
            break;
          case 'cancelled':
            this.send({ type: 'done', session_id, data: { response: event.response, usage: event.usage, cancelled: true } });
            this.state(session_id, 'idle');
            break;
          case 'error':
            this.error(event.code, event.message, session_id);
            this.state(session_id, 'error');
            break;
        }
      }
    } catch (error) {
      this.log.warn({ err: error, sessionId: session_id }, 'agent chat turn stream failed');
      this.error('stream_interrupted', 'The answer stream was interrupted', session_id);
      this.state(session_id, 'error');
    } finally {
      this.following.delete(abort);
      this.states.delete(session_id);
    }
  }
}

import { createHash, randomUUID } from 'node:crypto';
import { EventType, type BaseEvent, type RunAgentInput } from '@ag-ui/core';
import { RunAgentInputSchema } from '@ag-ui/core/schemas';
import { EventEncoder } from '@ag-ui/encoder';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { ChatEvent } from '../../turns/turn-events';
import { chatBodySchema } from '../../assistant/chat-service';
import { flowChatBodySchema, flowNotChat } from '../../flows/flow-chat';
import { AppError, badRequest, parseOr400 } from '../../lib/errors';
import { redisKeys } from '../../lib/redis-keys';
import type { StreamSignal } from '../../lib/stream-signal';
import type { ApiContext } from '../context';
import { authenticate, currentUser, type AuthUser } from '../middleware/authenticate';
import type { SseMessage } from '../sse';
import type { SseSource } from '../sse-streams';

/** How long an AG-UI thread id keeps naming its chat session. */
const THREAD_TTL_SECONDS = 30 * 24 * 3600;

type Chat = { kind: 'assistant' } | { kind: 'flow'; flowId: string };
type Turn = { sessionId: string; messageId: string };

/** The text of the input's last message, which must be the user's. */
function lastUserText(input: RunAgentInput): string {
  const last = input.messages.at(-1);
  if (!last || last.role !== 'user') throw badRequest('The last message must be the user’s');
  const { content } = last;
  return typeof content === 'string' ? content : content.map((part) => (part.type === 'text' ? part.text : '')).join('');
}

/**
 * AG-UI (the Agent–User Interaction protocol) on Switchboard's chats: `HttpAgent` of `@ag-ui/client`
 * posts its `RunAgentInput` to `POST /chat/ag-ui` (the assistant) or `POST /flows/:id/chat/ag-ui`
 * (the caller's chatflow) and reads the run's events, encoded by `@ag-ui/encoder`. The run is a
 * native turn: the checks, limits, budget, queue and event log of `POST /chat/stream`; the thread id
 * names its chat session. Mounted inside the API router (its CORS, body parser and NUL check first).
 */
export function agUiEdge(ctx: ApiContext): Router {
  const router = Router();
  const auth = authenticate(ctx.tokens);
  router.post('/chat/ag-ui', auth, (req, res) => run(ctx, req, res, { kind: 'assistant' }));
  router.post('/flows/:flowId/chat/ag-ui', auth, (req, res) =>
    run(ctx, req, res, { kind: 'flow', flowId: z.uuid().safeParse(req.params.flowId).data ?? '' }),
  );
  return router;
}

/** The Redis key naming the session of an AG-UI thread: per user (and flow), the thread id hashed (it is the client's text). */
function threadKey(ctx: ApiContext, user: AuthUser, chat: Chat, threadId: string): string {
  const scope = `agui:${user.id}${chat.kind === 'flow' ? `:flow:${chat.flowId}` : ''}`;
  return redisKeys(ctx.config.redis.keyPrefix).uiChatSession(scope, createHash('sha256').update(threadId).digest('base64url'));
}

async function run(ctx: ApiContext, req: Request, res: Response, chat: Chat): Promise<void> {
  const user = currentUser(req);
  const parsed = RunAgentInputSchema.safeParse(req.body);
  if (!parsed.success) throw badRequest(`Not an AG-UI RunAgentInput: ${parsed.error.issues.map((issue) => issue.message).join('; ')}`);
  const input = parsed.data as RunAgentInput;
  if (input.threadId.length > 200 || input.runId.length > 200) throw badRequest('threadId and runId are at most 200 characters');
  if (input.resume?.length)
    throw new AppError(
      409,
      'resume_unsupported',
      'An approval is decided by a person (PUT /hitl/requests/:id/approve|reject), not by resume',
    );
  const text = lastUserText(input);
  const key = threadKey(ctx, user, chat, input.threadId);
  const known = await ctx.redis.get(key);
  const sessionId = known && (await ctx.repos.chat.findOwned(user.id, known)) ? known : undefined;
  const start = chat.kind === 'flow' ? await flowTurn(ctx, user, chat, text, sessionId) : await assistantTurn(ctx, user, text, sessionId);
  const encoder = new EventEncoder({ accept: req.get('accept') ?? undefined });
  await ctx.streams.serve(req, res, {
    userId: start.streamOwner,
    context: { agui: chat.kind },
    prepare: async () => {
      const turn = await start.start();
      await ctx.redis.set(key, turn.sessionId, 'EX', THREAD_TTL_SECONDS);
      res.setHeader('X-Chat-Session-Id', turn.sessionId);
      return agUiSource((signal) => ctx.sources.chatTurnEvents(turn, signal, true), {
        threadId: input.threadId,
        runId: input.runId,
        turn,
        encoder,
        pending: async (approvalId) => (await ctx.repos.hitl.find(approvalId))?.status === 'pending',
      });
    },
  });
}

/** The checks of `POST /chat/stream`, then a starter of the turn. */
async function assistantTurn(ctx: ApiContext, user: AuthUser, text: string, sessionId: string | undefined) {
  const native = parseOr400(chatBodySchema, { message: text, ...(sessionId ? { sessionId } : {}) });
  await ctx.usage.take('chatPerMinute', user);
  return {
    streamOwner: user.id,
    start: () => ctx.chat.start({ userId: user.id, tier: user.tier, message: native.message, sessionId: native.sessionId }),
  };
}

/** The checks of `POST /flows/:id/chat/stream` (the owner's chatflow), then a starter of its turn. */
async function flowTurn(ctx: ApiContext, user: AuthUser, chat: Extract<Chat, { kind: 'flow' }>, text: string, sessionId?: string) {
  const native = parseOr400(flowChatBodySchema, { message: text, ...(sessionId ? { sessionId } : {}) });
  await ctx.limits.requireFeature(user.id, 'flows');
  if (!chat.flowId) throw new AppError(404, 'not_found', 'Flow not found');
  const flow = await ctx.flows.get(user.id, chat.flowId);
  if (flow.type !== 'chatflow') throw flowNotChat();
  await ctx.limits.requireFlowModels(user.id, flow.definition);
  await ctx.usage.take('chatPerMinute', user);
  return {
    streamOwner: flow.userId,
    start: () => ctx.flowChats.start({ id: flow.id, userId: flow.userId, ownerTier: user.tier, definition: flow.definition }, native),
  };
}

interface AgUiOptions {
  threadId: string;
  runId: string;
  turn: Turn;
  encoder: EventEncoder;
  /** Whether an approval request still waits for a decision (the run then finishes as an interrupt). */
  pending(approvalId: string): Promise<boolean>;
}

/**
 * A turn's events as AG-UI events, one response's state: `RUN_STARTED`; text as
 * `TEXT_MESSAGE_START` / `CONTENT` / `END` (the turn's answer, with the turn's message id);
 * each device tool call as `TOOL_CALL_START` / `ARGS` / `END` and its `TOOL_CALL_RESULT`; a
 * dangerous call as a tool call whose approval, while it waits, finishes the run with an
 * `interrupt` outcome; a coding turn's agent and plan as `STATE_SNAPSHOT`; the end as
 * `RUN_FINISHED` (success, cancelled) or `RUN_ERROR`.
 */
export class AgUiMapper {
  private textOpen = false;
  private sawText = false;
  private readonly state: { sessionId: string; agent?: unknown; plan?: unknown } = { sessionId: '' };

  constructor(private readonly options: Pick<AgUiOptions, 'threadId' | 'runId' | 'turn'>) {
    this.state.sessionId = options.turn.sessionId;
  }

  begin(): BaseEvent[] {
    const { threadId, runId } = this.options;
    return [{ type: EventType.RUN_STARTED, threadId, runId } as BaseEvent];
  }

  map(event: ChatEvent): BaseEvent[] {
    const { threadId, runId } = this.options;
    switch (event.type) {
      case 'text_chunk':
        if (!event.text) return [];
        this.sawText = true;
        return [
          ...(this.textOpen ? [] : this.openText()),
          { type: EventType.TEXT_MESSAGE_CONTENT, messageId: this.messageId(), delta: event.text } as BaseEvent,
        ];
      case 'tool_call':
        return [...this.closeText(), ...this.toolCall(event.callId, event.name, event.arguments)];
      case 'tool_result':
        return [
          { type: EventType.TOOL_CALL_RESULT, messageId: randomUUID(), toolCallId: event.callId, content: event.content } as BaseEvent,
        ];
      case 'approval_requested':
        return [...this.closeText(), ...this.toolCall(event.approvalId, event.toolName, event.parameters)];
      case 'approval_resolved':
        return [
          {
            type: EventType.TOOL_CALL_RESULT,
            messageId: randomUUID(),
            toolCallId: event.approvalId,
            content: JSON.stringify({ approval: event.status }),
          } as BaseEvent,
        ];
      case 'agent':
        this.state.agent = { name: event.agent, state: event.state };
        return [{ type: EventType.STATE_SNAPSHOT, snapshot: { ...this.state } } as BaseEvent];
      case 'plan':
        this.state.plan = event.steps;
        return [{ type: EventType.STATE_SNAPSHOT, snapshot: { ...this.state } } as BaseEvent];
      case 'final':
        return [
          ...(this.sawText ? this.closeText() : this.wholeText(event.response)),
          {
            type: EventType.RUN_FINISHED,
            threadId,
            runId,
            result: { sessionId: event.sessionId, messageId: this.options.turn.messageId, usage: event.usage },
            outcome: { type: 'success' },
            usage: [
              {
                provider: event.usage.provider,
                model: event.usage.model,
                inputTokens: event.usage.inputTokens,
                outputTokens: event.usage.outputTokens,
              },
            ],
          } as BaseEvent,
        ];
      case 'error':
        return [...this.closeText(), { type: EventType.RUN_ERROR, message: event.message, code: event.code } as BaseEvent];
      case 'citations':
        // The sources the answer cites ([1], [2] …): AG-UI has no event of its own for them.
        return [{ type: EventType.CUSTOM, name: 'citations', value: event.sources } as BaseEvent];
      case 'cancelled':
        return [...this.closeText(), { type: EventType.RUN_FINISHED, threadId, runId, outcome: { type: 'cancelled' } } as BaseEvent];
    }
  }

  /** The run ends while the turn waits for a person's decision on the approval. */
  interrupt(event: Extract<ChatEvent, { type: 'approval_requested' }>): BaseEvent[] {
    const { threadId, runId } = this.options;
    return [
      {
        type: EventType.RUN_FINISHED,
        threadId,
        runId,
        outcome: {
          type: 'interrupt',
          interrupts: [{ id: event.approvalId, reason: 'tool_approval', message: event.reason, toolCallId: event.approvalId }],
        },
      } as BaseEvent,
    ];
  }

  private messageId(): string {
    return this.options.turn.messageId;
  }

  private openText(): BaseEvent[] {
    this.textOpen = true;
    return [{ type: EventType.TEXT_MESSAGE_START, messageId: this.messageId(), role: 'assistant' } as BaseEvent];
  }

  private closeText(): BaseEvent[] {
    if (!this.textOpen) return [];
    this.textOpen = false;
    return [{ type: EventType.TEXT_MESSAGE_END, messageId: this.messageId() } as BaseEvent];
  }

  private wholeText(text: string): BaseEvent[] {
    if (!text) return [];
    return [
      ...this.openText(),
      { type: EventType.TEXT_MESSAGE_CONTENT, messageId: this.messageId(), delta: text } as BaseEvent,
      ...this.closeText(),
    ];
  }

  private toolCall(toolCallId: string, name: string, args: Record<string, unknown>): BaseEvent[] {
    return [
      { type: EventType.TOOL_CALL_START, toolCallId, toolCallName: name, parentMessageId: this.messageId() } as BaseEvent,
      { type: EventType.TOOL_CALL_ARGS, toolCallId, delta: JSON.stringify(args) } as BaseEvent,
      { type: EventType.TOOL_CALL_END, toolCallId } as BaseEvent,
    ];
  }
}

/** A turn's events as an SSE source of AG-UI events; it ends after the run's last event. */
function agUiSource(events: (signal: StreamSignal) => AsyncGenerator<ChatEvent>, options: AgUiOptions): SseSource {
  const frame = (event: BaseEvent): SseMessage => ({ data: '', wire: options.encoder.encodeSSE(event) });
  return {
    async *messages(signal) {
      const mapper = new AgUiMapper(options);
      for (const event of mapper.begin()) yield frame(event);
      for await (const event of events(signal)) {
        for (const mapped of mapper.map(event)) yield frame(mapped);
        if (event.type === 'approval_requested' && (await options.pending(event.approvalId))) {
          for (const mapped of mapper.interrupt(event)) yield frame(mapped);
          break;
        }
        if (event.type === 'final' || event.type === 'error' || event.type === 'cancelled') break;
      }
    },
    interrupted: frame({ type: EventType.RUN_ERROR, message: 'The run’s stream was interrupted', code: 'stream_interrupted' } as BaseEvent),
  };
}

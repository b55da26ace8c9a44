import { randomUUID } from 'node:crypto';
import { Role, TaskState, type AgentCard, type Artifact, type Message, type Part, type Task } from '@a2a-js/sdk';
import type { A2ARequestHandler } from '@a2a-js/sdk/server';
import { JsonRpcTransportError, TaskNotCancelableError, TaskNotFoundError, UnsupportedOperationError } from '@a2a-js/sdk/errors';
import { z } from 'zod';
import { chatBodySchema } from '../../assistant/chat-service';
import { flowChatBodySchema, flowNotChat } from '../../flows/flow-chat';
import { AppError, parseOr400 } from '../../lib/errors';
import { StreamAbort } from '../../lib/stream-signal';
import type { ChatSessionRow } from '../../models/schema';
import type { ApiContext } from '../context';
import type { AuthUser } from '../middleware/authenticate';

/** Which agent an A2A endpoint speaks for: the assistant, or one of the caller's chatflows. */
export type A2aAgentRef = { kind: 'assistant' } | { kind: 'flow'; flowId: string };

/** What `sendMessage` waits for at most before it answers with the task as it is (still `working`). */
const SEND_WAIT_MS = 120_000;
/** What `cancelTask` waits at most for the turn's end after asking for it. */
const CANCEL_WAIT_MS = 15_000;

/** The JSON-RPC code of a request Switchboard refused for its own reasons (a limit, the budget, a conflict). */
export const REFUSED_CODE = -32000;
const INVALID_PARAMS = -32602;

/**
 * A Switchboard error as a JSON-RPC error both protocol versions keep: a 400 is "invalid params",
 * anything else is the server's own code with the native error code as its reason.
 */
export function rpcErrorOf(error: AppError): JsonRpcTransportError {
  const code = error.status === 400 ? INVALID_PARAMS : REFUSED_CODE;
  return new JsonRpcTransportError({
    jsonrpc: '2.0',
    id: null,
    error: {
      code,
      message: error.message,
      data: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: error.code,
          domain: 'switchboard',
          metadata: { status: String(error.status) },
        },
      ],
    },
  } as ConstructorParameters<typeof JsonRpcTransportError>[0]);
}

/** Runs `work`, turning a Switchboard error into its JSON-RPC error. */
async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw error instanceof AppError ? rpcErrorOf(error) : error;
  }
}

const textPart = (text: string): Part => ({
  content: { $case: 'text', value: text },
  metadata: undefined,
  filename: '',
  mediaType: 'text/plain',
});
const dataPart = (value: unknown): Part => ({
  content: { $case: 'data', value },
  metadata: undefined,
  filename: '',
  mediaType: 'application/json',
});

const agentMessage = (taskId: string, contextId: string, parts: Part[], messageId: string = randomUUID()): Message => ({
  messageId,
  contextId,
  taskId,
  role: Role.ROLE_AGENT,
  parts,
  metadata: undefined,
  extensions: [],
  referenceTaskIds: [],
});

const answerArtifact = (text: string): Artifact => ({
  artifactId: 'answer',
  name: 'answer',
  description: 'The answer of the turn',
  parts: [textPart(text)],
  metadata: undefined,
  extensions: [],
});

const now = () => new Date().toISOString();

/** The text of a message: its text parts, in order. */
const textOf = (message: Message) =>
  message.parts
    .map((part) => (part.content?.$case === 'text' ? part.content.value : ''))
    .join('')
    .trim();

/** A turn: its session (the A2A context) and its user message's id (the A2A task, and the turn's run). */
interface Turn {
  sessionId: string;
  messageId: string;
}

/**
 * The A2A operations for one caller and one agent, mapped onto the native chat: a message starts a
 * turn through the chat (or chatflow) service, with the checks, limits, budget and queue of
 * `POST /chat/stream` (`POST /flows/:id/chat/stream`); a task is a turn, its id the turn's run
 * (its user message's id) and its context the chat session; the task's state is the run's, or
 * `input-required` while the turn waits for an approval a person decides. Nothing is kept here:
 * a task read on any node reads the run, the history and the approvals.
 */
export class A2aTasks implements A2ARequestHandler {
  constructor(
    private readonly ctx: ApiContext,
    private readonly user: AuthUser,
    private readonly agent: A2aAgentRef,
    private readonly card: AgentCard,
  ) {}

  getAgentCard(): Promise<AgentCard> {
    return Promise.resolve(this.card);
  }

  getAuthenticatedExtendedAgentCard(): Promise<AgentCard> {
    return Promise.resolve(this.card);
  }

  sendMessage(params: Parameters<A2ARequestHandler['sendMessage']>[0]): Promise<Task> {
    return guarded(async () => {
      const turn = await this.startTurn(params.message);
      const push = params.configuration?.taskPushNotificationConfig;
      if (push) await this.storePush(turn, push);
      if (params.configuration?.returnImmediately) return this.task(turn);
      const abort = new StreamAbort();
      const timer = setTimeout(() => abort.abort(), SEND_WAIT_MS).unref();
      try {
        for await (const event of this.ctx.sources.chatTurnEvents(turn, abort, true)) {
          if (event.type === 'final' || event.type === 'error' || event.type === 'cancelled') break;
          if (event.type === 'approval_requested' && (await this.pending(event.approvalId))) break;
        }
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
      return this.task(turn);
    });
  }

  async *sendMessageStream(
    params: Parameters<A2ARequestHandler['sendMessageStream']>[0],
  ): ReturnType<A2ARequestHandler['sendMessageStream']> {
    const turn = await guarded(async () => {
      const started = await this.startTurn(params.message);
      const push = params.configuration?.taskPushNotificationConfig;
      if (push) await this.storePush(started, push);
      return started;
    });
    yield { payload: { $case: 'task', value: await this.task(turn) } };
    yield* this.follow(turn, true);
  }

  async *resubscribe(params: Parameters<A2ARequestHandler['resubscribe']>[0]): ReturnType<A2ARequestHandler['resubscribe']> {
    const turn = await guarded(() => this.turnOf(params.id));
    const task = await this.task(turn);
    yield { payload: { $case: 'task', value: task } };
    if (isFinal(task.status?.state)) return;
    yield* this.follow(turn, false);
  }

  getTask(params: Parameters<A2ARequestHandler['getTask']>[0]): Promise<Task> {
    return guarded(async () => this.task(await this.turnOf(params.id), params.historyLength));
  }

  cancelTask(params: Parameters<A2ARequestHandler['cancelTask']>[0]): Promise<Task> {
    return guarded(async () => {
      const turn = await this.turnOf(params.id);
      const run = await this.ctx.runs.find('chat', turn.messageId);
      if (!run || (run.status !== 'queued' && run.status !== 'running'))
        throw new TaskNotCancelableError(`Task ${params.id} has already ended`);
      try {
        await this.ctx.runs.cancel('chat', turn.messageId, { userId: this.user.id });
      } catch (error) {
        if (error instanceof AppError && error.code === 'not_running')
          throw new TaskNotCancelableError(`Task ${params.id} has already ended`);
        throw error;
      }
      // The worker holding the turn ends it: its terminal event says when.
      const abort = new StreamAbort();
      const timer = setTimeout(() => abort.abort(), CANCEL_WAIT_MS).unref();
      try {
        for await (const event of this.ctx.sources.chatTurnEvents(turn, abort)) {
          if (event.type === 'final' || event.type === 'error' || event.type === 'cancelled') break;
        }
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
      return this.task(turn);
    });
  }

  listTasks(): ReturnType<A2ARequestHandler['listTasks']> {
    return Promise.reject(new UnsupportedOperationError('tasks/list is not supported: list sessions with GET /api/v1/chat/sessions'));
  }

  createTaskPushNotificationConfig(
    params: Parameters<A2ARequestHandler['createTaskPushNotificationConfig']>[0],
  ): ReturnType<A2ARequestHandler['createTaskPushNotificationConfig']> {
    return guarded(async () => {
      const turn = await this.turnOf(params.taskId);
      await this.storePush(turn, params);
      return params;
    });
  }

  getTaskPushNotificationConfig(
    params: Parameters<A2ARequestHandler['getTaskPushNotificationConfig']>[0],
  ): ReturnType<A2ARequestHandler['getTaskPushNotificationConfig']> {
    return guarded(async () => {
      const turn = await this.turnOf(params.taskId);
      const [config] = await this.ctx.webhooks.pushConfigs(this.user.id, turn.messageId, params.id || turn.messageId);
      if (!config) throw new TaskNotFoundError(`Push notification config '${params.id}' not found for task ${params.taskId}`);
      return pushConfigOf(config);
    });
  }

  listTaskPushNotificationConfigs(
    params: Parameters<A2ARequestHandler['listTaskPushNotificationConfigs']>[0],
  ): ReturnType<A2ARequestHandler['listTaskPushNotificationConfigs']> {
    return guarded(async () => {
      const turn = await this.turnOf(params.taskId);
      const configs = await this.ctx.webhooks.pushConfigs(this.user.id, turn.messageId);
      return { configs: configs.map(pushConfigOf), nextPageToken: '' };
    });
  }

  deleteTaskPushNotificationConfig(
    params: Parameters<A2ARequestHandler['deleteTaskPushNotificationConfig']>[0],
  ): ReturnType<A2ARequestHandler['deleteTaskPushNotificationConfig']> {
    return guarded(async () => {
      const turn = await this.turnOf(params.taskId);
      if (!(await this.ctx.webhooks.deletePush(this.user.id, turn.messageId, params.id || turn.messageId)))
        throw new TaskNotFoundError(`Push notification config '${params.id}' not found for task ${params.taskId}`);
    });
  }

  /**
   * Stores a push config of the caller's turn (its id defaults to the task's). A turn that ended
   * before the config was stored is pushed at once, so a config set on a quick turn is not missed.
   */
  private async storePush(turn: Turn, config: { id: string; url: string; token: string }): Promise<void> {
    const parsed = parseOr400(pushConfigSchema, { id: config.id || turn.messageId, url: config.url, token: config.token ?? '' });
    await this.ctx.webhooks.setPush(this.user.id, { ...parsed, taskId: turn.messageId });
    const run = await this.ctx.runs.find('chat', turn.messageId);
    if (run && run.status !== 'queued' && run.status !== 'running') await this.ctx.webhooks.pushRunEnded(run);
  }

  /**
   * The turn's events as A2A stream responses: text as appended chunks of the `answer` artifact,
   * tool calls as `working` updates, an approval still waiting as `input-required` (the stream ends
   * there; `tasks/resubscribe` follows it on), the end as `completed`, `failed` or `canceled`.
   */
  private async *follow(turn: Turn, started: boolean): ReturnType<A2ARequestHandler['resubscribe']> {
    const abort = new StreamAbort();
    let streamed = false;
    const ids = { taskId: turn.messageId, contextId: turn.sessionId };
    const status = (state: TaskState, parts?: Part[]) => ({
      payload: {
        $case: 'statusUpdate' as const,
        value: {
          ...ids,
          status: { state, message: parts ? agentMessage(turn.messageId, turn.sessionId, parts) : undefined, timestamp: now() },
          metadata: undefined,
        },
      },
    });
    const chunk = (text: string, lastChunk: boolean) => {
      const append = streamed;
      streamed = true;
      return {
        payload: {
          $case: 'artifactUpdate' as const,
          value: { ...ids, artifact: answerArtifact(text), append, lastChunk, metadata: undefined },
        },
      };
    };
    try {
      for await (const event of this.ctx.sources.chatTurnEvents(turn, abort, started)) {
        switch (event.type) {
          case 'text_chunk':
            yield chunk(event.text, false);
            break;
          case 'tool_call':
          case 'tool_result':
            yield status(TaskState.TASK_STATE_WORKING, [dataPart(event)]);
            break;
          case 'approval_requested':
            if (await this.pending(event.approvalId)) {
              yield status(TaskState.TASK_STATE_INPUT_REQUIRED, approvalParts(event));
              return;
            }
            break;
          case 'approval_resolved':
            yield status(TaskState.TASK_STATE_WORKING, [dataPart({ approvalId: event.approvalId, status: event.status })]);
            break;
          case 'final':
            yield chunk(streamed ? '' : event.response, true);
            yield status(TaskState.TASK_STATE_COMPLETED, [dataPart({ usage: event.usage })]);
            return;
          case 'error':
            yield status(TaskState.TASK_STATE_FAILED, [textPart(event.message), dataPart({ code: event.code })]);
            return;
          case 'cancelled':
            yield status(TaskState.TASK_STATE_CANCELED);
            return;
          default:
            break;
        }
      }
    } finally {
      abort.abort();
    }
  }

  /** Starts a turn with the message's text, after the native route's checks (a `contextId` continues that session). */
  private async startTurn(message: Message | undefined): Promise<Turn> {
    if (!message) throw new AppError(400, 'validation_failed', 'params.message is required');
    if (message.taskId)
      throw new AppError(
        409,
        'task_not_continuable',
        'A task is one turn: send the next message with its contextId and no taskId (an approval is decided by a person)',
      );
    const text = textOf(message);
    const sessionId = message.contextId ? await this.sessionOf(message.contextId) : undefined;
    if (this.agent.kind === 'flow') {
      const native = parseOr400(flowChatBodySchema, { message: text, ...(sessionId ? { sessionId } : {}) });
      await this.ctx.limits.requireFeature(this.user.id, 'flows');
      const flow = await this.ctx.flows.get(this.user.id, this.agent.flowId);
      if (flow.type !== 'chatflow') throw flowNotChat();
      await this.ctx.limits.requireFlowModels(this.user.id, flow.definition);
      await this.ctx.usage.take('chatPerMinute', this.user);
      return this.ctx.flowChats.start({ id: flow.id, userId: flow.userId, ownerTier: this.user.tier, definition: flow.definition }, native);
    }
    const native = parseOr400(chatBodySchema, { message: text, ...(sessionId ? { sessionId } : {}) });
    await this.ctx.usage.take('chatPerMinute', this.user);
    const turn = await this.ctx.chat.start({
      userId: this.user.id,
      tier: this.user.tier,
      message: native.message,
      sessionId: native.sessionId,
    });
    return { sessionId: turn.sessionId, messageId: turn.messageId };
  }

  /** A `contextId` the caller may continue: one of its sessions of this agent. */
  private async sessionOf(contextId: string): Promise<string> {
    const session = z.uuid().safeParse(contextId).success ? await this.ctx.repos.chat.findOwned(this.user.id, contextId) : null;
    if (!session || !this.speaksFor(session)) throw new AppError(404, 'not_found', 'No such context (chat session) of this agent');
    return session.id;
  }

  private speaksFor(session: ChatSessionRow): boolean {
    if (session.embedId) return false;
    return this.agent.kind === 'flow' ? session.mode === 'flow' && session.flowId === this.agent.flowId : session.mode !== 'flow';
  }

  /** The caller's turn of this agent a task id names; another user's, another agent's or none is "task not found". */
  private async turnOf(taskId: string): Promise<Turn> {
    const missing = () => new TaskNotFoundError(`Task ${taskId} not found`);
    if (!z.uuid().safeParse(taskId).success) throw missing();
    const found = await this.ctx.repos.chat.findTurn(taskId);
    if (!found || found.userId !== this.user.id) throw missing();
    const session = await this.ctx.repos.chat.findOwned(this.user.id, found.sessionId);
    if (!session || !this.speaksFor(session)) throw missing();
    return { sessionId: session.id, messageId: taskId };
  }

  private async pending(approvalId: string): Promise<boolean> {
    return (await this.ctx.repos.hitl.find(approvalId))?.status === 'pending';
  }

  /** The task as its run, its messages and its approvals say now. */
  private async task(turn: Turn, historyLength?: number): Promise<Task> {
    const { chat, hitl } = this.ctx.repos;
    const [run, asked, reply] = await Promise.all([
      this.ctx.runs.find('chat', turn.messageId),
      chat.findMessage(turn.sessionId, turn.messageId),
      chat.findReply(turn.sessionId, turn.messageId),
    ]);
    let state = TaskState.TASK_STATE_SUBMITTED;
    let message: Message | undefined;
    switch (run?.status) {
      // A turn parked on its approvals is `waiting` once its worker let go of it, `running` before.
      case 'running':
      case 'waiting': {
        const waiting = await hitl.pendingForMessage(turn.messageId);
        state = waiting.length ? TaskState.TASK_STATE_INPUT_REQUIRED : TaskState.TASK_STATE_WORKING;
        if (waiting.length)
          message = agentMessage(
            turn.messageId,
            turn.sessionId,
            waiting.flatMap((row) => approvalParts({ ...row, approvalId: row.id })),
          );
        break;
      }
      case 'succeeded':
        state = TaskState.TASK_STATE_COMPLETED;
        break;
      case 'cancelled':
        state = TaskState.TASK_STATE_CANCELED;
        break;
      case 'failed':
      case 'timed_out':
        state = TaskState.TASK_STATE_FAILED;
        message = agentMessage(turn.messageId, turn.sessionId, [
          textPart(run.errorMessage ?? 'The turn failed'),
          dataPart({ code: run.errorCode ?? run.status }),
        ]);
        break;
      default:
        break;
    }
    const history: Message[] = [];
    if (asked) history.push({ ...agentMessage(turn.messageId, turn.sessionId, [textPart(asked.content)], asked.id), role: Role.ROLE_USER });
    if (reply) history.push(agentMessage(turn.messageId, turn.sessionId, [textPart(reply.content)], reply.id));
    return {
      id: turn.messageId,
      contextId: turn.sessionId,
      status: { state, message, timestamp: (run?.endedAt ?? run?.startedAt ?? run?.createdAt ?? new Date()).toISOString() },
      artifacts: reply ? [answerArtifact(reply.content)] : [],
      history: historyLength === undefined ? history : history.slice(Math.max(0, history.length - historyLength)),
      metadata: undefined,
    };
  }
}

/** Whether a state ends the task (or parks it for input): a stream of it has nothing more to follow. */
export const isFinal = (state: TaskState | undefined) =>
  state === TaskState.TASK_STATE_COMPLETED || state === TaskState.TASK_STATE_FAILED || state === TaskState.TASK_STATE_CANCELED;

/** An approval the turn waits for: what it asks, and where a person decides it. */
function approvalParts(request: { approvalId: string; toolName: string; reason: string; parameters: Record<string, unknown> }): Part[] {
  return [
    textPart(`Waiting for approval of ${request.toolName}: ${request.reason}`),
    dataPart({
      approvalId: request.approvalId,
      toolName: request.toolName,
      parameters: request.parameters,
      decide: `PUT /api/v1/hitl/requests/${request.approvalId}/approve|reject`,
    }),
  ];
}

/** What a push config may hold: an id of the caller's choosing, a URL, a token (the URL's rules are checked when it is stored). */
const pushConfigSchema = z.object({
  id: z.string().min(1).max(200),
  url: z.string().min(1).max(2048),
  token: z.string().max(1000),
});

/** A stored push config as A2A shows it to its owner. */
const pushConfigOf = (config: { id: string; taskId: string; url: string; token: string }) => ({
  tenant: '',
  id: config.id,
  taskId: config.taskId,
  url: config.url,
  token: config.token,
  authentication: undefined,
});

import { randomUUID } from 'node:crypto';
import type { QueueConsumers } from '../producers/worker-presence';
import { z } from 'zod';
import type { ModelCatalog } from '../ai/model-catalog';
import { THREAD_BLOCK_TOOLS } from '../ai/prompt-sizes';
import type { DeviceRegistry } from '../devices/device-registry';
import { describeIssues, deviceIdSchema } from '../schemas/device-protocol';
import { AppError, forbidden, notFound } from '../lib/errors';
import type { ChatRuns } from './chat-run';
import type { Logger } from '../lib/logger';
import type { UsageLimiter } from '../lib/usage-limiter';
import type { Tier } from '../../config';
import { CODING_AGENT_NAMES, type CodingAgentConfig, type CodingAgentName } from '../../config/coding-agents';
import type { Repositories } from '../models';
import type { Tx } from '../models/database';
import type { Enqueue } from '../producers/registry';
import type { ChatRequestAck } from '../schemas/socket-events';
import { admitThenQueue, type BudgetAdmission } from '../turns/budget-admission';
import { LANE_RECHECK_MS, multitaskSchema, planLane, strategyOf, turnInProgress, type ChatLane, type Multitask } from './chat-lane';
import { sumParts, type PromptPart } from '../budget/budget-door';
import type { McpTools } from '../mcp/mcp-tools';
import { admitPrompt } from '../ai/prompt-admission';
import type { PromptGuardMode } from '../ai/prompt-guard';
import { chatContextSchema, storedContext, withChatContext, type ChatContext } from './chat-context';
import { authoredText, HISTORY_LIMIT, threadSystemPrompt, toolsetTools, turnSystemPrompt, turnToolsets } from './turn-prompt';
import type { ThreadRelay } from './thread-relay';
import type { ThreadLimits } from './room-threads';
import { codingSystemPrompt, codingTools, routeCodingAgent } from '../coding/coding-routing';
import { chatFilePartSchema, decodeChatFiles, MAX_CHAT_FILES, type ChatFilePart } from '../knowledge/chat-files';
import type { KnowledgeService } from '../knowledge/knowledge-service';

/** Longest message the assistant takes (prompts are bounded at 8, 000 characters). */
export const MAX_CHAT_MESSAGE_CHARS = 8_000;

const message = z.string().trim().min(1).max(MAX_CHAT_MESSAGE_CHARS);

/** A coding turn's agent: its tools work on the project folder the device serves (docs/coding-agents.md). */
const codingAgentSchema = z.enum(CODING_AGENT_NAMES);

/** A model chosen by the request; it must be one the deployment serves. */
export const modelChoiceSchema = z.strictObject({ provider: z.string().min(1).max(100), model: z.string().min(1).max(200) });

/**
 * `POST /chat` and `POST /chat/stream`. `tools`: `device` runs the assistant's tools on
 * a device (409 when none is online), `none` answers as a plain assistant; default: `device` when
 * one of the user's devices is online, else `none`.
 */
export const chatBodySchema = z.strictObject({
  message,
  sessionId: z.uuid().optional(),
  deviceId: deviceIdSchema.optional(),
  config: modelChoiceSchema.optional(),
  tools: z.enum(['device', 'none']).optional(),
  context: chatContextSchema.optional(),
  agent: codingAgentSchema.optional(),
  multitask: multitaskSchema.optional(),
  files: z
    .array(chatFilePartSchema)
    .max(MAX_CHAT_FILES)
    .optional()
    .describe(
      "Files sent with the message (the AI SDK's `file` part, its `url` a base64 `data:` URL): ingested into the session's own knowledge base before the turn answers from them",
    ),
});

/** Socket `chat_request`; its `context` and `config` (the model) are the same as on `POST /chat`. */
export const chatRequestSchema = z.strictObject({
  message,
  sessionId: z.uuid().optional(),
  context: chatContextSchema.optional(),
  config: modelChoiceSchema.optional(),
  agent: codingAgentSchema.optional(),
  multitask: multitaskSchema.optional(),
});

export interface StartTurn {
  userId: string;
  message: string;
  sessionId?: string;
  /** The device to run tools on. From a socket it is that socket's device; over HTTP it is optional. */
  deviceId?: string;
  /** The request came from this device's socket, so it is online: skip the registry check. */
  fromDevice?: boolean;
  /**
   * The turn's id (its user message's), chosen by the socket that asks before the turn starts, so
   * it knows its own turn's messages from the first one on. Unset: chosen here.
   */
  turnId?: string;
  /** `device` | `none`; unset = `device` when a device is online, else `none`. */
  tools?: 'device' | 'none';
  /** The model chosen by the request; validated against the catalog (400 `unknown_model`). */
  model?: { provider: string; model: string };
  /** The app's context: stored on the session (replacing what it had; `{}` clears it) and given to the model every turn. */
  context?: ChatContext;
  /** The user's tier as the request's session check read it; the job carries it so the worker need not read it. */
  tier?: Tier;
  /** A coding turn: the agent named by the request (it needs a device that serves a project). */
  agent?: CodingAgentName;
  /** What this message does while a turn of its session runs; unset: the session's strategy, else `enqueue`. */
  multitask?: Multitask;
  /** The sender's display name: a message to a room thread is stored, and shown to the model, under it. */
  authorName?: string;
  /** Files sent with the message: checked before anything is written, then ingested into the session's own knowledge base. */
  files?: ChatFilePart[];
}

/**
 * The API side of an assistant turn: check the session's owner and the device, store the user's
 * message, enqueue the turn. Nothing is written or enqueued when the device is offline.
 */
export class ChatService {
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      repos: Repositories;
      enqueue: Enqueue;
      registry: DeviceRegistry;
      logger: Logger;
      models: ModelCatalog;
      /** Each turn is a run of the kernel's chat kind, written with its message, before its job. */
      runs: Pick<ChatRuns, 'row' | 'hold' | 'cancel'>;
      /** The session's lane: a turn queued behind open ones starts when they end. */
      lane?: Pick<ChatLane, 'advance'>;
      /** The turn's first model call is reserved against the user's budget before anything is written. */
      budget: BudgetAdmission;
      /** The coding agents' prompts and toolsets: a coding turn's first call is built from them. */
      codingAgents: Record<CodingAgentName, CodingAgentConfig>;
      /** Refuses (503 `queue_unconsumed`) a request whose queue no worker consumes, before anything is written. */
      consumers?: QueueConsumers;
      /** The recorded sizes of the user's MCP tools, which every turn that may use tools is offered. */
      mcp?: Pick<McpTools, 'recordedSizes'>;
      /** The prompt guard's mode: a message it blocks is refused (422 `prompt_rejected`) before anything is written. */
      promptGuard?: PromptGuardMode;
      /** Room threads: their flood limits and the room event of each message posted to one. */
      threads?: { limits: ThreadLimits; relay: Pick<ThreadRelay, 'message' | 'state'> };
      /** Takes a message's files into the session's own knowledge base; without it, a message with files is refused. */
      knowledge?: Pick<KnowledgeService, 'checkChatFiles' | 'attachToSession'>;
    },
  ) {
    this.log = deps.logger.child({ component: 'chat' });
  }

  async start(input: StartTurn): Promise<{ sessionId: string; messageId: string; deviceId: string | null }> {
    const { chat } = this.deps.repos;
    // Every chat transport (HTTP, both device sockets, the IDE socket, the AI SDK edge, the seed routes) starts here.
    admitPrompt(this.deps.promptGuard ?? 'off', 'chat', [{ path: 'message', text: input.message }], {
      logger: this.log,
      userId: input.userId,
    });
    if (input.model && !this.deps.models.knows(input.model)) {
      throw new AppError(400, 'unknown_model', `Model ${input.model.provider}:${input.model.model} is not configured on this deployment`);
    }
    // A private session is its owner's; a room thread takes messages from its canvas's editors and owners.
    const access = input.sessionId ? await chat.findAccessible(input.userId, input.sessionId) : null;
    if (input.sessionId && !access) throw notFound('Chat session');
    const session = access?.session ?? null;
    const canvasId = session?.canvasId ?? null;
    if (canvasId) this.checkThreadPost(input, access!.role);
    // A chatflow's session goes on with its flow's prompt and model, not as an assistant turn.
    if (session?.mode === 'flow')
      throw new AppError(409, 'flow_session', `This session belongs to a chatflow; continue it with POST /flows/${session.flowId}/chat`);
    // One session, one lane: a turn of the session still open decides what this message does.
    const strategy = strategyOf(input.multitask, session?.multitask);
    let open = session ? await chat.openTurns(session.id) : [];
    let lane = planLane(strategy, open.length);
    if (lane.refuse) throw turnInProgress();
    if (input.agent && input.tools === 'none')
      throw new AppError(400, 'validation_failed', 'A coding agent works on the files of a device: agent needs tools "device"');
    // A coding turn needs a device that serves a project (it never falls back to a plain turn).
    // A room thread's turn has the canvas's tools, and a device only when its owner lent it to the
    // thread (never a member's MCP servers).
    const deviceId = canvasId
      ? await this.lentDevice(session!.id, input.deviceId)
      : input.agent
        ? await this.projectDevice(input.userId, input.deviceId ?? session?.deviceId ?? undefined, Boolean(input.deviceId))
        : await this.deviceFor(input, session?.deviceId ?? undefined);
    const mode = deviceId ? 'device' : 'none';
    await this.deps.consumers?.require('assistant');
    // A message's files: decoded and checked against the plan (size, type, the session base's room) before anything is written.
    const files = input.files?.length ? decodeChatFiles(input.files) : [];
    if (files.length) {
      if (!this.deps.knowledge) throw new AppError(400, 'validation_failed', 'This deployment takes no files in chat');
      if (input.agent) throw new AppError(400, 'validation_failed', 'A coding turn takes no files: send them to a plain assistant turn');
      await this.deps.knowledge.checkChatFiles(input.userId, files, session?.id);
    }

    const context = storedContext(input.context);
    // The turn's first model call as its worker will send it (turn-prompt.ts builds both): the system
    // prompt with the session's context, the history, the message and the routed toolsets' tools.
    // Reserved whole, the worker's first call takes the reservation over as it is: a turn admitted
    // here is not refused for its first call after its message was stored.
    // A coding turn's call is its routed agent's: the agent's own prompt and toolsets (and, for the
    // Orchestrator, the plan tool).
    const sessionContext = context !== undefined ? context : (session?.context ?? null);
    const coding = input.agent ? routeCodingAgent(input.agent, input.message, this.deps.codingAgents) : undefined;
    const toolsets = coding ? [] : turnToolsets(input.message, Boolean(deviceId));
    const history = session ? await chat.context(session.id, Number.MAX_SAFE_INTEGER, HISTORY_LIMIT) : [];
    const system = coding
      ? withChatContext(codingSystemPrompt(this.deps.codingAgents[coding]), sessionContext)
      : canvasId
        ? threadSystemPrompt(sessionContext)
        : turnSystemPrompt(toolsets, sessionContext);
    const tools = coding
      ? codingTools(coding, this.deps.codingAgents[coding])
      : canvasId
        ? sumParts(THREAD_BLOCK_TOOLS, toolsetTools(toolsets))
        : toolsetTools(toolsets);
    // The message as its turn's model call will carry it (in a room thread: under its sender's name).
    const author = canvasId ? { id: input.userId, name: input.authorName ?? 'member' } : undefined;
    const asSent = authoredText({ content: input.message, authorName: author?.name });
    // The flood limits of a room thread: per member and per thread, before anything is written.
    if (canvasId) await this.deps.threads?.limits.take(session!.id, input.userId);
    // The user's MCP servers' tools ride on every turn that may use tools: counted at the sizes their
    // last listing recorded, read only for a user with budget limits. The job carries what was
    // counted, so the worker offers no more unless the reservation can grow.
    let mcpTools: PromptPart | undefined;
    const mcp = this.deps.mcp;
    const withMcp =
      mcp && input.tools !== 'none' && !canvasId
        ? async () => {
            mcpTools = { bytes: 0, texts: 0 };
            for (const bytes of (await mcp.recordedSizes(input.userId)).values()) mcpTools = sumParts(mcpTools, { bytes, texts: 1 });
            return sumParts(tools, mcpTools);
          }
        : tools;
    const { sessionId, stored } = await admitThenQueue(
      this.deps.budget,
      {
        userId: input.userId,
        texts: [system, ...history.map((earlier) => authoredText(earlier)), asSent],
        model: input.model?.model,
        fixed: withMcp,
      },
      async (budget) => {
        // Written before the turn is queued: the turn reads the session's context when it starts.
        if (session && context !== undefined) await chat.setContext(input.userId, session.id, context);
        // The message and its turn's queued run (keyed by the message's id, chosen here) in one
        // statement, with the new session when there is none.
        const run = this.deps.runs.row({ id: input.turnId ?? randomUUID(), userId: input.userId });
        let written: { sessionId: string; messageId: string };
        if (session && (canvasId || strategy === 'reject')) {
          // Messages sent at once (a room's members, or a double send under `reject`) are each
          // planned in the lane, written and announced under the session's order lock: the room
          // hears them in the order they run, and `reject` takes exactly one.
          ({ open, lane } = await chat.inSessionOrder(session.id, async (tx) => {
            const before = await chat.openTurns(session.id, 100, tx);
            const plan = planLane(strategy, before.length);
            if (plan.refuse) throw turnInProgress();
            const messageId = await chat.addTurn(session.id, input.message, run, author, tx);
            // The room hears the message before its turn can start, and keeps where it did for a late joiner.
            if (canvasId && author)
              await this.announceThreadMessage(tx, canvasId, session.id, messageId, author, input.message, plan.behind);
            return { open: before, lane: plan };
          }));
          written = { sessionId: session.id, messageId: run.id };
        } else {
          written = session
            ? { sessionId: session.id, messageId: await chat.addTurn(session.id, input.message, run, author) }
            : await chat.openSession({ userId: input.userId, deviceId, title: titleOf(input.message), mode, context }, input.message, run);
        }
        const { sessionId, messageId } = written;
        const stored = { id: messageId };
        // The message's files go into the session's own base (made on first use) and are queued for ingestion.
        const attachments = files.length ? await this.deps.knowledge!.attachToSession(input.userId, sessionId, files) : [];
        // The turn holds the reservation from now on: whoever ends it gives back what no call took.
        await this.deps.runs.hold(messageId, { userId: input.userId, reservationId: budget }, { beforeQueued: true });
        if (lane.cancel !== 'none') await this.cancelOpen(input.userId, open, lane.cancel);
        // Behind open turns, the job waits delayed: the end of the turn before it promotes it.
        const delay = lane.behind ? { delay: LANE_RECHECK_MS } : {};
        await this.deps.enqueue(
          'assistant',
          'chat-turn',
          {
            userId: input.userId,
            sessionId,
            messageId: stored.id,
            deviceId: deviceId ?? undefined,
            ...(input.fromDevice && deviceId ? { fromDevice: true as const } : {}),
            tools: mode,
            ...(input.tools === 'none' || canvasId ? { noTools: true as const } : {}),
            ...(canvasId ? { canvasId } : {}),
            model: input.model,
            budget,
            ...(budget && mcpTools ? { mcpTools } : {}),
            tier: input.tier,
            ...(input.agent ? { agent: input.agent } : {}),
            ...(attachments.length ? { attachments } : {}),
          },
          delay,
        );
        return { sessionId, stored };
      },
    );
    // The turns before it may have ended while it was written: then it is due now.
    if (lane.behind) await this.deps.lane?.advance(sessionId);
    // At debug: the request's own line and the worker's started and completed lines (same session and message ids) tell the turn at info.
    this.log.debug({ userId: input.userId, sessionId, messageId: stored.id, deviceId, mode }, 'assistant turn queued');
    return { sessionId, messageId: stored.id, deviceId };
  }

  /**
   * What a message to a room thread may not do: a viewer posts nothing (403); a thread's turns run
   * on the canvas (and on a device lent to it, named by `deviceId`), so a coding agent, tools
   * "device" without a device, or a new context for everyone is refused (400).
   */
  private checkThreadPost(input: StartTurn, role: 'owner' | 'editor' | 'viewer'): void {
    if (role === 'viewer') throw forbidden('Viewers of a canvas read its threads; posting needs the editor role');
    if (input.agent || (input.tools === 'device' && !input.deviceId) || input.context !== undefined)
      throw new AppError(
        400,
        'validation_failed',
        'A room thread runs on its canvas and the devices lent to it: agent, tools "device" without a deviceId, and context are not taken in one',
      );
  }

  /**
   * The device a thread message names, which its owner must have lent to the thread (409
   * `device_not_lent`) and which must be online (409 `device_offline`); null when none is named.
   */
  private async lentDevice(threadId: string, deviceId: string | undefined): Promise<string | null> {
    if (!deviceId) return null;
    const loan = await this.deps.repos.threads.loan(threadId, deviceId);
    if (!loan)
      throw new AppError(
        409,
        'device_not_lent',
        `Device ${deviceId} is not lent to this thread; its owner lends it with PUT …/devices/${deviceId}`,
      );
    if (!(await this.deps.registry.isOnline(loan.ownerId, deviceId)))
      throw new AppError(409, 'device_offline', `Device ${deviceId} is not connected; its owner must open the desktop app`);
    return deviceId;
  }

  /** A thread message's room event (`message`, then `queued` when it waits behind another turn), its seq kept on the message. */
  private async announceThreadMessage(
    tx: Tx,
    canvasId: string,
    threadId: string,
    messageId: string,
    author: { id: string; name: string },
    content: string,
    behind: boolean,
  ): Promise<void> {
    const relay = this.deps.threads?.relay;
    if (!relay) return;
    const seq = await relay.message(canvasId, threadId, {
      type: 'message',
      messageId,
      authorId: author.id,
      authorName: author.name,
      content,
      createdAt: new Date().toISOString(),
    });
    if (seq) await this.deps.repos.chat.setRoomSeq(messageId, seq, tx);
    if (behind) await relay.state(canvasId, threadId, messageId, 'queued');
  }

  /**
   * Cancels the session's open turns for a message sent with `interrupt` (each keeps what it said)
   * or `rollback` (each is marked first, so its end removes its messages). A turn that ended
   * meanwhile is left as it ended.
   */
  private async cancelOpen(userId: string, turns: readonly string[], how: 'interrupt' | 'rollback'): Promise<void> {
    if (how === 'rollback') await this.deps.repos.chat.requestRollback(turns);
    for (const turn of turns) {
      await this.deps.runs.cancel(turn, { userId }).catch((error: unknown) => {
        if (!(error instanceof AppError && error.code === 'not_running')) throw error;
      });
    }
  }

  /** The device the turn's tools run on, or null for a plain assistant turn. */
  private async deviceFor(input: StartTurn, sessionDevice?: string): Promise<string | null> {
    if (input.tools === 'none') return null;
    if (input.fromDevice && input.deviceId) return input.deviceId;
    if (input.tools === 'device' || input.deviceId) return this.onlineDevice(input.userId, input.deviceId, sessionDevice);
    return this.onlineDevice(input.userId, undefined, sessionDevice).catch((error: unknown) => {
      if (error instanceof AppError && error.code === 'device_offline') return null;
      throw error;
    });
  }

  /**
   * The device of a coding turn: the one asked for (or the session's), which must be online and
   * serve a project; else any online device of the user that serves one. 409 `device_offline` when
   * the one asked for is offline or none is online, 409 `no_project` when none serves a project.
   */
  private async projectDevice(userId: string, wanted: string | undefined, asked: boolean): Promise<string> {
    const online = await this.deps.registry.onlineDevices(userId);
    const chosen = wanted ? online.find((device) => device.deviceId === wanted) : undefined;
    if (asked && !chosen) throw new AppError(409, 'device_offline', `Device ${wanted} is not connected; open it and try again`);
    if (chosen?.project) return chosen.deviceId;
    if (asked) throw new AppError(409, 'no_project', `Device ${wanted} serves no project folder (switchboard device --project <dir>)`);
    const serving = online.find((device) => device.project);
    if (serving) return serving.deviceId;
    if (!online.length) throw new AppError(409, 'device_offline', 'None of your devices is connected; open the desktop app and try again');
    throw new AppError(409, 'no_project', 'None of your online devices serves a project folder (switchboard device --project <dir>)');
  }

  /**
   * The device a turn runs on: the one asked for, which must be online; else, among the user's online
   * devices that hold local tables (a device serving only a project folder holds none), the session's
   * device, else any. 409 `device_offline` when there is none.
   */
  private async onlineDevice(userId: string, requested?: string, sessionDevice?: string): Promise<string> {
    const { registry } = this.deps;
    if (requested) {
      if (await registry.isOnline(userId, requested)) return requested;
      throw new AppError(409, 'device_offline', `Device ${requested} is not connected; open the desktop app and try again`);
    }
    const online = await registry.onlineDevices(userId);
    const withTables = online.filter((device) => device.tables !== false);
    const chosen = withTables.find((device) => device.deviceId === sessionDevice) ?? withTables[0];
    if (chosen) return chosen.deviceId;
    if (online.length)
      throw new AppError(
        409,
        'device_offline',
        'None of your connected devices holds local tables (they serve project folders only); open the desktop app and try again',
      );
    throw new AppError(409, 'device_offline', 'None of your devices is connected; open the desktop app and try again');
  }
}

/** A session's title: the start of its first message, on one line. */
const titleOf = (text: string) => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
};

/**
 * The `/device` namespace's `chat_request` handler: the turn is bound to the asking device, under
 * `turnId` when the socket chose it (see {@link StartTurn.turnId}). The ack is
 * `{sessionId, messageId}`, or `{error: {code, message}}` (validation_failed, not_found).
 */
export function deviceChatHandler(service: ChatService, usage?: UsageLimiter) {
  return async (user: { id: string; tier?: Tier }, deviceId: string, payload: unknown, turnId?: string): Promise<ChatRequestAck> => {
    const parsed = chatRequestSchema.safeParse(payload);
    if (!parsed.success) return { error: { code: 'validation_failed', message: describeIssues(parsed.error) } };
    try {
      // Counts with POST /chat in the user's chat window: a refusal is a `rate_limited` ack.
      await usage?.take('chatPerMinute', user);
      if (parsed.data.agent) await usage?.take('codingTurnsPerHour', user);
      const { sessionId, messageId } = await service.start({
        userId: user.id,
        deviceId,
        fromDevice: true,
        turnId,
        message: parsed.data.message,
        sessionId: parsed.data.sessionId,
        context: parsed.data.context,
        model: parsed.data.config,
        agent: parsed.data.agent,
        multitask: parsed.data.multitask,
        // No tier: the socket's was read when it connected; the worker reads the tier of now.
      });
      return { sessionId, messageId };
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return { error: { code: error.code, message: error.message } };
      throw error;
    }
  };
}

import { createHash, randomUUID } from 'node:crypto';
import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { HitlRequestRow } from '../models/schema';
import type { ChatTurnJob } from '../producers/assistant';
import type { ChatEvent } from '../turns/turn-events';
import { toolNamed, type CodingAgentName } from '../coding/coding-agents';
import { auditMcpToolCall, auditToolCall, type ToolCallOutcome } from '../turns/tool-audit';
import { runToolCall, settleDeviceCall } from '../turns/tool-call';
import type { McpOffer } from '../mcp/mcp-tools';
import { parseMcpToolName } from '../mcp/mcp-tool-names';
import type { ToolPolicy } from '../turns/tool-policy';
import type { DeviceCall, ToolContext } from '../turns/device-tools';
import { MAX_EMBED_TEXT_CHARS } from '../schemas/api';
import type { UsageKind } from '../lib/usage-limiter';
import { asksByContract, isCodeToolName } from '../turns/tool-contract';
import { argsObject, bounded } from '../turns/tool-args';
import type { Config } from '../../config';
import type { Repositories } from '../models';
import type { DevicePort } from '../devices/device-channel';
import type { ChatEventLog } from '../turns/turn-events';
import type { Metrics } from '../observability/metrics';
import type { EmbeddingJob, EmbeddingResult } from '../producers/embeddings';
import type { UsageLimiter } from '../lib/usage-limiter';
import type { McpTools } from '../mcp/mcp-tools';
import { runSearchKnowledge, SEARCH_KNOWLEDGE, type KnowledgeSearch } from '../knowledge/retrieval';
import type { ThreadRelay } from './thread-relay';
import type { ThreadTools } from './thread-tools';

/** What a turn's tool calls need (a part of the assistant runner's dependencies; see there). */
export interface ChatToolCallDeps {
  config: Config;
  repos: Repositories;
  devices: DevicePort;
  chatEvents: ChatEventLog;
  metrics?: Metrics;
  embed?: (job: EmbeddingJob, timeoutMs: number) => Promise<EmbeddingResult>;
  usage?: Pick<UsageLimiter, 'take'>;
  mcp?: Pick<McpTools, 'offerAll' | 'call'>;
  /** The user's knowledge search (`search_knowledge`, run here on the server), offered to a user with searchable documents. */
  knowledge?: { search: KnowledgeSearch; searchable: (userId: string, sessionId?: string) => Promise<boolean> };
  /** Room threads: the canvas tools their turns get, and the relay of their events to the canvas room. */
  threads?: { tools: ThreadTools; relay: ThreadRelay };
}

/** A command without its own limit runs up to the device's (60 s unless the device says otherwise). */
const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;
/** How long after a command's limit the device has to answer. */
const COMMAND_ANSWER_MARGIN_MS = 5_000;
/** How long a note tool waits for its embedding (the device call has its own deadline). */
const EMBED_WAIT_MS = 15_000;

/**
 * The tool calls of a chat turn (and of a coding turn): each device or MCP call through the one
 * tool-call pipeline (offered → arguments → policy → limits → audit → execute), the refusal a
 * decided approval gives the model, and each call announced on the turn's event log.
 */
export class ChatToolCalls {
  constructor(
    private readonly deps: ChatToolCallDeps,
    private readonly policy: ToolPolicy,
  ) {}

  /** A parked turn's job as its resume rebuilds it, with its thread's canvas when it is a room thread's (it keeps the canvas's tools). */
  async withThread(data: ChatTurnJob): Promise<ChatTurnJob> {
    if (data.canvasId || !this.deps.threads) return data;
    const canvasId = await this.deps.threads.relay.canvasFor(data.sessionId);
    return canvasId ? { ...data, canvasId, noTools: true } : data;
  }

  /**
   * Whether the turn's device was lent to its room thread by another member than the turn's sender:
   * then every call on it waits for the owner's approval (the request is addressed to them).
   */
  async lentByOther(data: ChatTurnJob): Promise<boolean> {
    if (!data.canvasId || !data.deviceId) return false;
    const loan = await this.deps.repos.threads.loan(data.sessionId, data.deviceId);
    return Boolean(loan && loan.ownerId !== data.userId);
  }

  /**
   * Whose device a call runs on: the sender's own in a private chat; in a room thread the member
   * who lent it to the thread now (null: it is no longer lent, and nothing runs).
   */
  private async deviceOwner(data: ChatTurnJob, deviceId: string): Promise<string | null> {
    const canvasId = data.canvasId ?? (await this.deps.threads?.relay.canvasFor(data.sessionId));
    if (!canvasId) return data.userId;
    return (await this.deps.repos.threads.loan(data.sessionId, deviceId))?.ownerId ?? null;
  }

  /**
   * Runs `search_knowledge` over the chunks the user may read (with this session's files); the
   * sources go to the stream as `citations` before the answer cites them.
   */
  private async searchKnowledge(data: ChatTurnJob, rawArgs: unknown): Promise<string> {
    const { text, citations } = await runSearchKnowledge(this.deps.knowledge!.search, data.userId, rawArgs, undefined, data.sessionId);
    if (citations.length)
      await this.deps.chatEvents.append(data.messageId, { type: 'citations', sessionId: data.sessionId, sources: citations });
    return text;
  }

  /** To the turn's event log only (HTTP listeners): what a coding agent is doing. */
  private async event(data: ChatTurnJob, event: Extract<ChatEvent, { type: 'agent' }>): Promise<void> {
    await this.deps.chatEvents.append(data.messageId, event);
  }

  /**
   * Runs one tool call on the turn's device. Every failure (bad arguments, policy refusal, device
   * offline, timeout, device error) becomes "Error: …" text for the model: the turn goes on.
   */
  async executeTool(
    data: ChatTurnJob,
    offered: Set<string>,
    name: string,
    rawArgs: unknown,
    log: Logger,
    options: {
      approved?: boolean;
      approvalId?: string;
      approvedParameters?: Record<string, unknown>;
      signal?: AbortSignal;
      step?: string;
      agent?: CodingAgentName;
      mcp?: McpOffer;
    } = {},
  ): Promise<string> {
    const threadTools = this.deps.threads?.tools;
    if (data.canvasId && threadTools?.has(name))
      return threadTools.run({ userId: data.userId, sessionId: data.sessionId, canvasId: data.canvasId }, offered, name, rawArgs);
    if (parseMcpToolName(name)) return this.executeMcpTool(data, offered, name, rawArgs, log, options);
    if (name === SEARCH_KNOWLEDGE && offered.has(name)) return this.searchKnowledge(data, rawArgs);
    const { deviceId } = data;
    if (!deviceId) return `Error: no device is connected, so ${name} cannot run.`;
    // A device of a room thread is its owner's: used while lent, and by another member's turn only with the owner's approval.
    const ownerId = await this.deviceOwner(data, deviceId);
    if (!ownerId)
      return `Error: ${name} was NOT run: device ${deviceId} is no longer lent to this thread. Tell the members it was not done.`;
    if (ownerId !== data.userId && !options.approved)
      return `Error: ${name} was NOT run: it runs on a device another member lent to this thread, and only they can approve it.`;
    const tool = toolNamed(name);
    // Only the routed agent's tools: a model cannot reach a tool it was not offered this turn.
    const { agent } = options;
    return runToolCall({
      name,
      args: rawArgs,
      offered: tool ? offered : [...offered].filter((known) => known !== name),
      schema: tool?.schema,
      policy: {
        dangerous: this.policy.isDangerous(name),
        approved: Boolean(options.approved),
        check: (args) =>
          this.policy.check({
            userId: data.userId,
            sessionId: data.sessionId,
            deviceId,
            toolName: name,
            args: args as Record<string, unknown>,
          }),
      },
      // A coding tool counts against the user's file operations of the hour, any other device tool
      // against the plan's device operations: past it the call is not run, and the model says so.
      limit: async () => {
        if (isCodeToolName(name)) {
          const limited = await this.overLimit(data, 'codeFileOpsPerHour');
          return limited ? { outcome: 'rate_limited', text: `Error: ${name} was NOT run: ${limited}` } : null;
        }
        const limited = await this.overLimit(data, 'deviceOperationsPerHour');
        return limited
          ? {
              outcome: 'not_allowed',
              text: `Error: ${name} was NOT run: ${limited}. Tell the user it was not done and when they can try again.`,
            }
          : null;
      },
      // From the policy on, the call is meant for the device: who, which device, which tool, how it ended.
      audit: (outcome) =>
        auditToolCall(this.deps.repos.audit, log, {
          userId: data.userId,
          deviceId,
          sessionId: data.sessionId,
          tool: name,
          outcome: outcome as ToolCallOutcome,
          approvalId: options.approvalId,
        }),
      execute: async (args) => {
        // A cancel abandons the call: the wait ends at once and a late answer is ignored.
        // Every device call carries an idempotency key stable across re-runs of this turn (a worker died
        // and BullMQ ran the job again): the same turn, step, tool, arguments and n-th device call of
        // the tool give the same key, so the device answers a repeated write from memory.
        let nth = 0;
        const device = ((call) => {
          const idempotencyKey = options.step === undefined ? undefined : toolCallKey(data.messageId, options.step, name, args, (nth += 1));
          return this.deps.devices.callDevice(ownerId, deviceId, call as never, {
            signal: options.signal,
            idempotencyKey,
            timeoutMs: this.commandTimeout(call),
          });
        }) as DeviceCall;
        const context = { ...this.toolContext(data), ...(options.approvedParameters ? { approved: options.approvedParameters } : {}) };
        if (agent) await this.event(data, { type: 'agent', sessionId: data.sessionId, agent, state: 'executing' });
        const started = performance.now();
        const settled = await settleDeviceCall(name, () => tool!.run(args as never, device, context), log, 'assistant tool failed');
        const seconds = (performance.now() - started) / 1000;
        const outcome = settled.text.startsWith('Error:') ? 'error' : 'ok';
        this.deps.metrics?.resources.toolSeconds.observe({ tool: name, outcome }, seconds);
        if (agent) this.deps.metrics?.codeToolSeconds.observe({ tool: name, agent, outcome }, seconds);
        return settled;
      },
    });
  }

  /** A command may run longer than a data call: the device stops it at its limit, then answers. */
  commandTimeout(call: { action: string; timeoutMs?: number }): number | undefined {
    if (call.action !== 'execute_command') return undefined;
    return Math.max(this.deps.config.device.rpcTimeoutMs, (call.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS) + COMMAND_ANSWER_MARGIN_MS);
  }

  /**
   * Counts one unit of `kind` for the turn's user: null when it is within the tier's limit, else
   * the refusal for the model ("Too many … (limit N per 3600 s); retry in S s").
   */
  async overLimit(data: ChatTurnJob, kind: UsageKind): Promise<string | null> {
    if (!this.deps.usage) return null;
    try {
      const tier = data.tier ?? (await this.deps.repos.users.findById(data.userId))?.tier ?? 'free';
      await this.deps.usage.take(kind, { id: data.userId, tier });
      return null;
    } catch (error) {
      if (error instanceof AppError && error.status === 429) return error.message;
      throw error;
    }
  }

  /**
   * A tool call and what it gave the model, on the turn's event log: streams that show tool use
   * read them (devices run the call themselves and get no copy). A log that cannot be written
   * loses the two events, never the call.
   */
  async announced(
    data: ChatTurnJob,
    log: Logger,
    name: string,
    rawArgs: unknown,
    agent: CodingAgentName | undefined,
    run: () => Promise<string>,
  ): Promise<string> {
    const callId = randomUUID();
    const { sessionId, messageId } = data;
    const args = rawArgs && typeof rawArgs === 'object' && !Array.isArray(rawArgs) ? (rawArgs as Record<string, unknown>) : {};
    const append = (event: ChatEvent) =>
      this.deps.chatEvents
        .append(messageId, event)
        .catch((error: unknown) => log.warn({ err: error, tool: name }, 'tool event not logged'));
    const who = agent ? { agent } : {};
    await append({ type: 'tool_call', sessionId, callId, name, arguments: bounded(args), ...who });
    const content = await run();
    const ok = !content.startsWith('Error:');
    const changeId = /Change id (\S+?):/.exec(content)?.[1];
    await append({
      type: 'tool_result',
      sessionId,
      callId,
      name,
      ok,
      content: content.length > MAX_TOOL_EVENT_CHARS ? `${content.slice(0, MAX_TOOL_EVENT_CHARS)}…` : content,
      ...who,
      ...(changeId ? { changeId } : {}),
    });
    return content;
  }

  /**
   * Runs one MCP tool call, audited. A dangerous one that was not approved (only without an
   * approval service: with one it parked before) asks the policy, as a device call does.
   */
  async executeMcpTool(
    data: ChatTurnJob,
    offered: Set<string>,
    name: string,
    args: unknown,
    log: Logger,
    options: { approved?: boolean; approvalId?: string; signal?: AbortSignal; mcp?: McpOffer },
  ): Promise<string> {
    const { mcp } = this.deps;
    return runToolCall({
      name,
      args,
      // Without an MCP client no MCP tool is here, whatever the offer said.
      offered: mcp ? offered : [...offered].filter((known) => known !== name),
      policy: {
        // Without an approval service a dangerous call asks the policy (with one it parked before).
        dangerous: Boolean(options.mcp && asksByContract(name, { mcpAsks: options.mcp.dangerous })),
        approved: Boolean(options.approved),
        check: () =>
          this.policy.check({
            userId: data.userId,
            sessionId: data.sessionId,
            deviceId: `mcp:${parseMcpToolName(name)!.server}`,
            toolName: name,
            args: argsObject(args),
          }),
      },
      audit: (outcome) =>
        auditMcpToolCall(this.deps.repos.audit, log, {
          userId: data.userId,
          sessionId: data.sessionId,
          tool: name,
          outcome,
          approvalId: options.approvalId,
        }),
      execute: () => mcp!.call(data.userId, name, args, options.signal),
    });
  }

  /** The result a refused call gives the model (rejected, or not decided in time), audited. */
  async refused(data: ChatTurnJob, log: Logger, name: string, row: HitlRequestRow): Promise<string> {
    const status = row.status === 'rejected' ? 'rejected' : 'timeout';
    await auditToolCall(this.deps.repos.audit, log, {
      userId: data.userId,
      deviceId: row.deviceId,
      sessionId: data.sessionId,
      tool: name,
      outcome: status,
      approvalId: row.id,
    });
    return status === 'rejected'
      ? `Error: the user rejected ${name}; it was NOT run. Do not try it again; tell the user it was not done.`
      : `Error: ${name} was NOT run: the user did not approve it in time. Tell the user it was not done and that they can ask again.`;
  }

  /** Note tools embed through the `embeddings` queue (micro-batched, usage recorded). */
  toolContext(data: ChatTurnJob): ToolContext {
    const { embed } = this.deps;
    if (!embed) return {};
    return {
      embed: async (text) => {
        const tier = (await this.deps.repos.users.findById(data.userId))?.tier ?? 'free';
        const { vector } = await embed({ text: text.slice(0, MAX_EMBED_TEXT_CHARS), userId: data.userId, tier }, EMBED_WAIT_MS);
        return vector;
      },
    };
  }
}

/** A tool result on the event log is cut here: the model got it whole, a stream shows its start. */
const MAX_TOOL_EVENT_CHARS = 4_000;

/**
 * The idempotency key of one device call of a turn: a hash of the turn (its user message id), the
 * step (model round and place in it), the tool, its arguments and which of the tool's device calls
 * it is. Deterministic, so a re-run of the turn sends the same keys.
 */
export function toolCallKey(messageId: string, step: string, tool: string, args: unknown, nth: number): string {
  return createHash('sha256')
    .update(JSON.stringify([messageId, step, tool, args, nth]))
    .digest('base64url')
    .slice(0, 32);
}

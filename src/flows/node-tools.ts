import { createHash } from 'node:crypto';
import { toolDefinitionBytes, type ToolSpec } from '../ai/model-tools';
import { fitMcpOffer } from '../turns/mcp-fit';
import type { BudgetDoor, BudgetTicket, PromptPart } from '../budget/budget-door';
import { httpToolDescription } from './node-prompt';
import { auditMcpToolCall, auditToolCall, type ToolCallOutcome } from '../turns/tool-audit';
import { runToolCall, settleDeviceCall } from '../turns/tool-call';
import type { TurnHooks, TurnSpec } from '../turns/turn-engine';
import type { ToolPolicy } from '../turns/tool-policy';
import { taintNeedsApproval, taintSource } from '../turns/tool-risk';
import { toolContract, type ContractContext } from '../turns/tool-contract';
import { TOOLS_BY_NAME, type DeviceCall } from '../turns/device-tools';
import type { DevicePort } from '../devices/device-channel';
import type { Logger } from '../lib/logger';
import type { McpTools } from '../mcp/mcp-tools';
import { isMcpToolName } from '../mcp/mcp-tool-names';
import type { Repositories } from '../models';
import type { FlowNodeJob } from '../producers/flows';
import type { AgentflowDefinition, AgentflowNode } from './definition';
import { MAX_TOOL_RESULT_EVENT_CHARS, type FlowEventLog } from './flow-events';
import { withoutSecrets, type CredentialHeader, type HttpCredentials } from './http-credentials';
import { runSearchKnowledge, SEARCH_KNOWLEDGE, SEARCH_KNOWLEDGE_TOOL, type KnowledgeSearch } from '../knowledge/retrieval';
import { callHttpTool, httpToolArgsSchema, HttpToolError, type HttpToolLimits } from './http-tool';

export interface NodeToolsDeps {
  repos: Pick<Repositories, 'audit'>;
  devices: DevicePort;
  events: Pick<FlowEventLog, 'appendNext'>;
  http: HttpToolLimits;
  /** The owners' credentials an HTTP tool names (absent: a tool naming one fails its calls). */
  credentials?: Pick<HttpCredentials, 'forCall'>;
  policy: ToolPolicy;
  logger: Logger;
  /** The tools of the owner's registered MCP servers; without it a node cannot use them. */
  mcp?: Pick<McpTools, 'offer' | 'call'>;
  /** Widens a first call's reservation when the MCP servers list more than its request counted; without it, nothing is widened. */
  budget?: Pick<BudgetDoor, 'widen'>;
  /** The owner's knowledge search (`search_knowledge`); without it the tool's calls fail. */
  knowledge?: KnowledgeSearch;
}

/** A node's first model call under the reservation its execution's request took. */
export interface NodeFirstCall {
  ticket: BudgetTicket;
  /** The MCP tools' size the request counted into the reservation (the job's `mcpTools`). */
  reserved?: PromptPart;
  /** Holds a widened reservation for the execution. */
  hold: (ticket: BudgetTicket) => Promise<unknown>;
}

/** One node's call context: which execution, node and flow definition it belongs to. */
export interface NodeCallContext {
  definition: AgentflowDefinition;
  node: AgentflowNode;
  data: FlowNodeJob;
  signal?: AbortSignal;
  /** Set when the call was approved by its owner. */
  approvalId?: string;
}

/**
 * The agentflow node's turn spec: a node offers no tools of this server and previews nothing; its
 * tools, what parks and what taints are {@link NodeTools}'.
 */
export const flowNodeTurnSpec = {
  kind: 'flow-node',
  open: (_context: NodeCallContext): TurnHooks => ({}),
} satisfies TurnSpec<NodeCallContext>;

/**
 * The tools of agentflow nodes: device tools (run on the flow's device of its owner, as the
 * assistant's are) and the flow's HTTP tools. Every call, whatever its outcome, is written to the
 * execution's events as `tool_called` with its arguments, result and timing.
 */
export class NodeTools {
  constructor(private readonly deps: NodeToolsDeps) {}

  /** Which offered MCP tools of a node need its owner's approval, and which are read-only (from its latest offer). */
  private readonly dangerousMcp = new WeakMap<AgentflowNode, ReadonlySet<string>>();
  private readonly readOnlyMcp = new WeakMap<AgentflowNode, ReadonlySet<string>>();

  /**
   * What the node's model is offered: its device and HTTP tools, and the tools of the owner's MCP
   * servers it names that those servers allow and still list.
   */
  async offered(
    definition: AgentflowDefinition,
    node: AgentflowNode,
    userId: string,
    signal?: AbortSignal,
    first?: NodeFirstCall,
  ): Promise<ToolSpec[]> {
    const names = node.tools ?? [];
    const mcpNames = names.filter(isMcpToolName);
    // Each listing records the tools' sizes, so the next execution counts them into its reservation.
    const listed =
      mcpNames.length && this.deps.mcp ? await this.deps.mcp.offer(userId, mcpNames, { signal, measure: toolDefinitionBytes }) : undefined;
    // The node's first call sends no more than its request reserved, unless the reservation could grow.
    const mcp =
      listed && first
        ? await fitMcpOffer(listed, first.reserved, first.ticket, {
            budget: this.deps.budget,
            hold: first.hold,
            log: this.deps.logger,
            model: node.model?.model,
          })
        : listed;
    this.dangerousMcp.set(node, mcp?.dangerous ?? new Set());
    this.readOnlyMcp.set(node, mcp?.readOnly ?? new Set());
    return names.flatMap((name): ToolSpec[] => {
      const device = TOOLS_BY_NAME.get(name);
      if (device) return [device];
      const fromMcp = mcp?.specs.find((spec) => spec.name === name);
      if (fromMcp) return [fromMcp];
      const http = definition.httpTools?.find((tool) => tool.name === name);
      if (http) return [{ name: http.name, description: httpToolDescription(http), schema: httpToolArgsSchema }];
      return name === SEARCH_KNOWLEDGE ? [SEARCH_KNOWLEDGE_TOOL] : [];
    });
  }

  /**
   * Whether a call must wait for the owner's decision: a dangerous device tool with valid arguments,
   * an offered MCP tool its registration does not mark safe, and, once the node has read untrusted
   * text (`taint` says from where), any offered call that is not a read (an HTTP tool that does not GET).
   */
  mustPark(definition: AgentflowDefinition, node: AgentflowNode, name: string, args: unknown, taint: readonly string[] = []): boolean {
    if (!node.tools?.includes(name)) return false;
    const context = this.contractContext(definition, node);
    const tainted = taintNeedsApproval(name, taint, context);
    const contract = toolContract(name, context);
    if (contract?.executor === 'mcp') return contract.asks || tainted;
    if (contract?.executor === 'http') return tainted;
    const tool = TOOLS_BY_NAME.get(name);
    if (!tool) return false;
    return (this.deps.policy.isDangerous(name) || tainted) && tool.schema.safeParse(args ?? {}).success;
  }

  /** Where a call's result comes from when it is untrusted text (it taints the node's turn), else undefined. */
  taintOf(definition: AgentflowDefinition, node: AgentflowNode, name: string, args: unknown): string | undefined {
    return taintSource(name, args, this.contractContext(definition, node));
  }

  /** What the contracts of a node's tools depend on: the flow's HTTP tools and the node's latest MCP offer. */
  private contractContext(definition: AgentflowDefinition, node: AgentflowNode): ContractContext {
    return { httpTools: definition.httpTools, mcpReadOnly: this.readOnlyMcp.get(node), mcpAsks: this.dangerousMcp.get(node) };
  }

  /** Runs one call and logs it; failures are "Error: …" text for the model (the node goes on). */
  async execute(context: NodeCallContext, name: string, args: unknown, step: string): Promise<string> {
    const startedAt = new Date();
    const began = performance.now();
    const kind = TOOLS_BY_NAME.has(name)
      ? ('device' as const)
      : isMcpToolName(name)
        ? ('mcp' as const)
        : name === SEARCH_KNOWLEDGE && !context.definition.httpTools?.some((tool) => tool.name === name)
          ? ('knowledge' as const)
          : ('http' as const);
    const result = await this.run(context, name, args, step);
    const text = result.length > MAX_TOOL_RESULT_EVENT_CHARS ? result.slice(0, MAX_TOOL_RESULT_EVENT_CHARS) : result;
    await this.deps.events.appendNext(context.data.executionId, {
      type: 'tool_called',
      executionId: context.data.executionId,
      nodeId: context.node.id,
      tool: name,
      kind,
      args: args ?? null,
      result: text,
      ok: !result.startsWith('Error:'),
      ...(text.length < result.length ? { truncated: true as const } : {}),
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(performance.now() - began),
      ...(context.approvalId ? { approvalId: context.approvalId } : {}),
    });
    return result;
  }

  private async run(context: NodeCallContext, name: string, args: unknown, step: string): Promise<string> {
    const { node, definition, data } = context;
    const log = this.deps.logger.child({ component: 'flow-tools', executionId: data.executionId, nodeId: node.id });
    const offered = node.tools ?? [];
    if (isMcpToolName(name)) {
      const { mcp } = this.deps;
      // A node's MCP call that needed its owner parked before: none is asked again here.
      return runToolCall({
        name,
        args,
        offered,
        unavailable: mcp ? undefined : `Error: ${name} cannot run on this worker.`,
        audit: (outcome) =>
          auditMcpToolCall(this.deps.repos.audit, log, {
            userId: data.userId,
            sessionId: data.executionId,
            tool: name,
            outcome,
            approvalId: context.approvalId,
          }),
        execute: () => mcp!.call(data.userId, name, args, context.signal),
      });
    }
    const http = definition.httpTools?.find((tool) => tool.name === name);
    if (http) return runToolCall({ name, args, offered, execute: async () => ({ text: await this.runHttpTool(context, http, args) }) });
    if (name === SEARCH_KNOWLEDGE) {
      const { knowledge } = this.deps;
      // The flow owner's own chunks only; the passages come back as untrusted data.
      return runToolCall({
        name,
        args,
        offered,
        unavailable: knowledge ? undefined : `Error: ${name} cannot run on this worker.`,
        execute: async () => ({ text: (await runSearchKnowledge(knowledge!, data.userId, args)).text }),
      });
    }
    const tool = TOOLS_BY_NAME.get(name);
    const deviceId = definition.deviceId;
    return runToolCall({
      name,
      args,
      offered: tool ? offered : offered.filter((known) => known !== name),
      unavailable: deviceId ? undefined : `Error: the flow names no device, so ${name} cannot run.`,
      schema: tool?.schema,
      audit: (outcome) =>
        auditToolCall(this.deps.repos.audit, log, {
          userId: data.userId,
          deviceId: deviceId!,
          sessionId: data.executionId,
          tool: name,
          outcome: outcome as ToolCallOutcome,
          approvalId: context.approvalId,
        }),
      execute: (parsed) => {
        // The same execution, node, step, tool, arguments and n-th device call give the same key: a
        // re-run node's repeated write is answered by the device from memory.
        let nth = 0;
        const device = ((call) =>
          this.deps.devices.callDevice(data.userId, deviceId!, call as never, {
            signal: context.signal,
            idempotencyKey: createHash('sha256')
              .update(JSON.stringify([data.executionId, data.nodeId, step, name, parsed, (nth += 1)]))
              .digest('base64url')
              .slice(0, 32),
          })) as DeviceCall;
        return settleDeviceCall(name, () => tool!.run(parsed as never, device, {}), log, 'flow device tool failed');
      },
    });
  }

  /** An HTTP tool's call: its credential goes only to the origins it was stored with, and never back to the model. */
  private async runHttpTool(
    context: NodeCallContext,
    http: NonNullable<AgentflowDefinition['httpTools']>[number],
    args: unknown,
  ): Promise<string> {
    const { definition } = context;
    const { name } = http;
    let credential: CredentialHeader | undefined;
    if (http.credential) {
      // A credential goes only to the origins it was stored with: otherwise nothing is sent at all.
      const found = this.deps.credentials
        ? await this.deps.credentials.forCall(context.data.userId, http.credential, http.url)
        : ({ ok: false, message: `the credential "${http.credential}" cannot be read on this worker` } as const);
      if (!found.ok) return `Error: ${found.message}, so ${name} was not called; ask the flow's owner.`;
      credential = found.header;
    }
    const secrets = credential?.secrets ?? [];
    try {
      const headers = credential ? { [credential.name]: credential.value } : {};
      const text = (await callHttpTool(http, args, definition.allowedOrigins ?? [], this.deps.http, context.signal, headers)).text;
      // The secret never reaches the model, the events or the logs, even when the service echoes it.
      return withoutSecrets(text, secrets);
    } catch (error) {
      if (error instanceof HttpToolError) return `Error: ${withoutSecrets(error.message, secrets)}`;
      throw error;
    }
  }
}

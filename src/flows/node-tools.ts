import { createHash } from 'node:crypto';
import { toolDefinitionBytes, type ToolSpec } from '../ai/model-tools';
import { fitMcpOffer } from '../assistant/mcp-fit';
import type { BudgetDoor, BudgetTicket, PromptPart } from '../budget/budget-door';
import { httpToolDescription } from './node-prompt';
import { auditMcpToolCall, auditToolCall, runAuditedToolCall } from '../assistant/tool-audit';
import type { ToolPolicy } from '../assistant/tool-policy';
import { TOOLS_BY_NAME, type DeviceCall } from '../assistant/tools';
import { describeIssues } from '../schemas/device-protocol';
import type { DevicePort } from '../devices/device-channel';
import type { Logger } from '../lib/logger';
import type { McpTools } from '../mcp/mcp-tools';
import { isMcpToolName } from '../mcp/tool-names';
import type { Repositories } from '../models';
import type { FlowNodeJob } from '../producers/flows';
import type { AgentflowDefinition, AgentflowNode } from './definition';
import { MAX_TOOL_RESULT_EVENT_CHARS, type FlowEventLog } from './flow-events';
import { withoutSecrets, type HttpCredentials } from './http-credentials';
import { callHttpTool, httpToolArgsSchema, HttpToolError, type HttpToolLimits } from './http-tool';

export interface NodeToolsDeps {
  repos: Pick<Repositories, 'audit'>;
  devices: DevicePort;
  events: Pick<FlowEventLog, 'appendNext'>;
  http: HttpToolLimits;
  /** The owners' credentials an HTTP tool names (absent: a tool naming one fails its calls). */
  credentials?: Pick<HttpCredentials, 'header'>;
  policy: ToolPolicy;
  logger: Logger;
  /** The tools of the owner's registered MCP servers; without it a node cannot use them. */
  mcp?: Pick<McpTools, 'offer' | 'call'>;
  /** Widens a first call's reservation when the MCP servers list more than its request counted; without it, nothing is widened. */
  budget?: Pick<BudgetDoor, 'widen'>;
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
 * The tools of agentflow nodes: device tools (run on the flow's device of its owner, as the
 * assistant's are) and the flow's HTTP tools. Every call, whatever its outcome, is written to the
 * execution's events as `tool_called` with its arguments, result and timing.
 */
export class NodeTools {
  constructor(private readonly deps: NodeToolsDeps) {}

  /** Which offered MCP tools of a node need its owner's approval (from its latest offer). */
  private readonly dangerousMcp = new WeakMap<AgentflowNode, ReadonlySet<string>>();

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
    return names.flatMap((name): ToolSpec[] => {
      const device = TOOLS_BY_NAME.get(name);
      if (device) return [device];
      const fromMcp = mcp?.specs.find((spec) => spec.name === name);
      if (fromMcp) return [fromMcp];
      const http = definition.httpTools?.find((tool) => tool.name === name);
      return http ? [{ name: http.name, description: httpToolDescription(http), schema: httpToolArgsSchema }] : [];
    });
  }

  /**
   * Whether a call must wait for the owner's decision: a dangerous device tool with valid arguments,
   * or an offered MCP tool its registration does not mark safe.
   */
  mustPark(node: AgentflowNode, name: string, args: unknown): boolean {
    if (isMcpToolName(name)) return Boolean(node.tools?.includes(name) && this.dangerousMcp.get(node)?.has(name));
    const tool = TOOLS_BY_NAME.get(name);
    return Boolean(tool && node.tools?.includes(name) && this.deps.policy.isDangerous(name) && tool.schema.safeParse(args ?? {}).success);
  }

  /** Runs one call and logs it; failures are "Error: …" text for the model (the node goes on). */
  async execute(context: NodeCallContext, name: string, args: unknown, step: string): Promise<string> {
    const startedAt = new Date();
    const began = performance.now();
    const kind = TOOLS_BY_NAME.has(name) ? ('device' as const) : isMcpToolName(name) ? ('mcp' as const) : ('http' as const);
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
    const { node, definition } = context;
    if (!node.tools?.includes(name)) return `Error: there is no tool called "${name}" here; use one of: ${(node.tools ?? []).join(', ')}.`;
    if (isMcpToolName(name)) return this.runMcpTool(context, name, args);
    const http = definition.httpTools?.find((tool) => tool.name === name);
    if (http) {
      const credential = http.credential ? await this.deps.credentials?.header(context.data.userId, http.credential) : undefined;
      if (http.credential && !credential)
        return `Error: the credential "${http.credential}" of ${name} no longer exists; ask the flow's owner.`;
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
    return this.runDeviceTool(context, name, args, step);
  }

  /** An MCP tool call, audited with its outcome (and the approval it waited for). */
  private async runMcpTool(context: NodeCallContext, name: string, args: unknown): Promise<string> {
    if (!this.deps.mcp) return `Error: ${name} cannot run on this worker.`;
    const { data } = context;
    const { text, outcome } = await this.deps.mcp.call(data.userId, name, args, context.signal);
    const log = this.deps.logger.child({ component: 'flow-tools', executionId: data.executionId, nodeId: context.node.id });
    await auditMcpToolCall(this.deps.repos.audit, log, {
      userId: data.userId,
      sessionId: data.executionId,
      tool: name,
      outcome,
      approvalId: context.approvalId,
    });
    return text;
  }

  private async runDeviceTool(context: NodeCallContext, name: string, rawArgs: unknown, step: string): Promise<string> {
    const { data, definition } = context;
    const tool = TOOLS_BY_NAME.get(name)!;
    const deviceId = definition.deviceId;
    if (!deviceId) return `Error: the flow names no device, so ${name} cannot run.`;
    const args = tool.schema.safeParse(rawArgs ?? {});
    if (!args.success) return `Error: invalid arguments for ${name}: ${describeIssues(args.error)}. Fix them and call the tool again.`;
    const log = this.deps.logger.child({ component: 'flow-tools', executionId: data.executionId, nodeId: context.node.id });
    const audited = (outcome: Parameters<typeof auditToolCall>[2]['outcome']) =>
      auditToolCall(this.deps.repos.audit, log, {
        userId: data.userId,
        deviceId,
        sessionId: data.executionId,
        tool: name,
        outcome,
        approvalId: context.approvalId,
      });
    // The same execution, node, step, tool, arguments and n-th device call give the same key: a
    // re-run node's repeated write is answered by the device from memory.
    let nth = 0;
    const device = ((call) =>
      this.deps.devices.callDevice(data.userId, deviceId, call as never, {
        signal: context.signal,
        idempotencyKey: createHash('sha256')
          .update(JSON.stringify([data.executionId, data.nodeId, step, name, args.data, (nth += 1)]))
          .digest('base64url')
          .slice(0, 32),
      })) as DeviceCall;
    return runAuditedToolCall(name, () => tool.run(args.data, device, {}), audited, log, 'flow device tool failed');
  }
}

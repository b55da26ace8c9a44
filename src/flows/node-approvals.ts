import { createHash } from 'node:crypto';
import { parseMcpToolName } from '../mcp/mcp-tool-names';
import { urlHost } from '../turns/tool-risk';
import type { AgentflowDefinition } from './definition';

/**
 * The approval requests of an agentflow node are filed (as `hitl_requests.message_id`) under one
 * id per execution and node: a uuid derived from both, so any process finds them again.
 */
export function nodeApprovalKey(executionId: string, nodeId: string): string {
  const hex = createHash('sha256').update(`flow-node:${executionId}:${nodeId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * What a node's approval request names as where the call runs (`hitl_requests.device_id`): an MCP
 * tool's server (`mcp:<server>`), an HTTP tool's host (`http:<host>`), else the flow's device
 * (undefined when the flow names none: such a call cannot be approved).
 */
export function approvalTarget(definition: Pick<AgentflowDefinition, 'deviceId' | 'httpTools'>, name: string): string | undefined {
  const mcp = parseMcpToolName(name);
  if (mcp) return `mcp:${mcp.server}`;
  const http = definition.httpTools?.find((tool) => tool.name === name);
  if (http) return `http:${urlHost(http.url)}`;
  return definition.deviceId;
}

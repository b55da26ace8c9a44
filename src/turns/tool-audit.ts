import type { DeviceRpcErrorCode } from '../devices/device-rpc';
import type { Logger } from '../lib/logger';
import type { AuditRepository } from '../models/audit-repository';

/** The audit action of a tool call the assistant ran (or would have run) on a user's device. */
export const DEVICE_TOOL_CALL = 'device.tool_call';

/**
 * How a device tool call ended: `ok`; `not_allowed` (the tool policy refused it); `rejected` or
 * `timeout` (its approval was refused or expired, so it never ran); `invalid_input` (the tool
 * refused its input); `failed` (an unexpected error); or the device call's own error code
 * (`offline`, `timeout`, `disconnected`, `device_error`, `invalid_reply`, `aborted`).
 */
export type ToolCallOutcome = 'ok' | 'not_allowed' | 'rejected' | 'invalid_input' | 'failed' | 'rate_limited' | DeviceRpcErrorCode;

export interface ToolCallRecord {
  userId: string;
  deviceId: string;
  sessionId: string;
  tool: string;
  outcome: ToolCallOutcome;
  /** The approval the call waited for, when it needed one. */
  approvalId?: string;
}

/**
 * Writes who ran which tool on which device, how it ended and under which approval. The call has
 * already happened on the device by then: a failed write is logged, and does not fail the turn.
 */
export async function auditToolCall(audit: Pick<AuditRepository, 'write'>, log: Logger, record: ToolCallRecord): Promise<void> {
  const { userId, deviceId, sessionId, tool, outcome, approvalId } = record;
  try {
    await audit.write({
      actorId: userId,
      action: DEVICE_TOOL_CALL,
      deviceId,
      targetType: approvalId ? 'approval' : null,
      targetId: approvalId ?? null,
      details: { tool, outcome, sessionId, ...(approvalId ? { approvalId } : {}) },
    });
  } catch (error) {
    log.warn({ err: error, tool, outcome, approvalId }, 'device tool call not audited');
  }
}

/** The audit action of a call of a tool of a registered MCP server. */
export const MCP_TOOL_CALL = 'mcp.tool_call';

/**
 * Writes who called which MCP tool (`mcp__<server>__<tool>`), for which turn or execution, how it
 * ended and under which approval. As for device calls, a failed write is logged, never fatal.
 */
export async function auditMcpToolCall(
  audit: Pick<AuditRepository, 'write'>,
  log: Logger,
  record: { userId: string; sessionId: string; tool: string; outcome: string; approvalId?: string },
): Promise<void> {
  const { userId, sessionId, tool, outcome, approvalId } = record;
  try {
    await audit.write({
      actorId: userId,
      action: MCP_TOOL_CALL,
      targetType: approvalId ? 'approval' : null,
      targetId: approvalId ?? null,
      details: { tool, outcome, sessionId, ...(approvalId ? { approvalId } : {}) },
    });
  } catch (error) {
    log.warn({ err: error, tool, outcome, approvalId }, 'MCP tool call not audited');
  }
}

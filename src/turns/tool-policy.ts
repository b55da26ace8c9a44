import { asksByContract } from './tool-contract';

/** A tool call about to run, as the policy sees it. */
export interface ToolCallRequest {
  userId: string;
  sessionId: string;
  deviceId: string;
  toolName: string;
  args: Record<string, unknown>;
}

export type ToolDecision = { allowed: true } | { allowed: false; reason: string };

/**
 * Decides whether a dangerous tool call may run. This is where approvals (HITL) plug in:
 * an implementation will persist a `hitl_requests` row, emit `approval_requested` and resolve on
 * the user's decision or the timeout. A refusal reaches the model as an error result.
 */
export interface ToolPolicy {
  /** Whether `toolName` needs a decision before it runs: its contract says so, or the deployment lists it. */
  isDangerous(toolName: string): boolean;
  check(request: ToolCallRequest): Promise<ToolDecision>;
}

/** Without approvals: marks the tools whose contract asks first (every delete_* device tool, the coding tools that change or run something), and allows them. */
export const allowAllPolicy: ToolPolicy = {
  isDangerous: (toolName) => asksByContract(toolName),
  check: async () => ({ allowed: true }),
};

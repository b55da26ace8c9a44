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
  /** Whether `toolName` needs a decision before it runs (every delete_*, plus configured ones). */
  isDangerous(toolName: string): boolean;
  check(request: ToolCallRequest): Promise<ToolDecision>;
}

/** Today's policy: marks every delete_* tool dangerous and allows it (no approvals yet). */
export const allowAllPolicy: ToolPolicy = {
  isDangerous: (toolName) => toolName.startsWith('delete_'),
  check: async () => ({ allowed: true }),
};

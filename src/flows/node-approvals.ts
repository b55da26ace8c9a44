import { createHash } from 'node:crypto';

/**
 * The approval requests of an agentflow node are filed (as `hitl_requests.message_id`) under one
 * id per execution and node: a uuid derived from both, so any process finds them again.
 */
export function nodeApprovalKey(executionId: string, nodeId: string): string {
  const hex = createHash('sha256').update(`flow-node:${executionId}:${nodeId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

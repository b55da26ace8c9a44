/*
 * Payloads sent both on the sockets (the event maps of events.ts) and in the SSE streams of the
 * HTTP API (types.ts). Both files import them from here; events.ts re-exports them.
 */

/** The stage of a generation, as `generation_status` and the generation's SSE `status` say it. */
export type GenerationStage = 'queued' | 'thinking' | 'tool' | 'persisting' | 'broadcasting' | 'cancelled' | 'failed';

/** `approval_requested`: a dangerous tool call waits for the user's decision. */
export interface ApprovalRequested {
  approvalId: string;
  sessionId: string;
  toolName: string;
  parameters: Record<string, unknown>;
  reason: string;
  expiresAt: string;
}

/** `approval_resolved`: how a request ended; `decidedBy` is null for a timeout. */
export interface ApprovalResolved {
  approvalId: string;
  status: 'approved' | 'rejected' | 'timeout';
  decidedBy: string | null;
}

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
  /** On a request of a room thread's turn: who decides it. */
  deciders?: ApprovalDeciders;
}

/**
 * Who decides a request of a room thread's turn: the member whose message asked (`requester`), any
 * editor or owner (`any_editor`), the canvas owner (`canvas_owner`), `quorum` editors' approvals
 * (the first reject of one of them rejects it), or the one member it is `addressed` to (the owner
 * of a device lent to the thread, whatever the thread's policy).
 */
export type ApprovalDeciders =
  | { policy: 'requester' | 'any_editor' | 'canvas_owner' }
  | { policy: 'quorum'; quorum: number }
  | { policy: 'addressed'; addressedTo: string };

/** A member's vote on a quorum request. */
export interface ApprovalVote {
  userId: string;
  approved: boolean;
}

/** `approval_resolved`: how a request ended; `decidedBy` is null for a timeout. */
export interface ApprovalResolved {
  approvalId: string;
  status: 'approved' | 'rejected' | 'timeout';
  decidedBy: string | null;
  /** A quorum request's votes, in the order they came (`decidedBy` cast the one that settled it). */
  voters?: ApprovalVote[];
}

/** A decision button of a form: its name (what the answer carries) and the text it shows. */
export interface InputDecision {
  name: string;
  label: string;
}

/**
 * `input_requested`: an agentflow's human_input node asks you (one of its recipients) for a form's
 * answer; answer with `POST /hitl/inputs/:id/answer {values, decision}` before `expiresAt`.
 */
export interface InputRequested {
  inputId: string;
  executionId: string;
  flowId: string;
  nodeId: string;
  /** The flow's owner, who asks. */
  ownerId: string;
  /** What to answer, above the form (may be empty). */
  prompt: string;
  /** The form: a JSON Schema of an object whose properties are its fields. */
  form: Record<string, unknown>;
  /** The decision buttons (none: one plain submit). */
  decisions: InputDecision[];
  expiresAt: string;
}

/** `input_resolved`: the form was answered (the first answer wins), timed out, or its execution ended. */
export interface InputResolved {
  inputId: string;
  status: 'answered' | 'timeout' | 'cancelled';
  /** Who answered; null for a timeout or an ended execution. */
  answeredBy: string | null;
  decision: string | null;
}

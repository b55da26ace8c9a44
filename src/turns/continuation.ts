import { loadMessages, storeMessages, type StoredModelMessage } from '../ai/model-messages';
import type { HitlRepository } from '../models/hitl-repository';
import type { HitlRequestRow } from '../models/schema';
import type { LoopCall, ParkedLoop } from './tool-loop';
import type { TurnUsage } from './turn-events';

/*
 * A parked assistant turn as JSON (approvals). Worker side only: it needs the model gateway's
 * message mapping, which the API process never loads.
 */

/** What a parked turn keeps in `hitl_requests.continuation` (JSON). */
export interface StoredContinuation {
  version: 1;
  messages: StoredModelMessage[];
  /** The round's calls not fed back yet; those with a `result` ran while the others waited. */
  calls: LoopCall[];
  iteration: number;
  response: string;
  toolCalls: number;
  /** The toolsets the turn was routed to (the same tools are offered after the resume). Stored as `agents` before 0105. */
  toolsets?: string[];
  agents?: string[];
  /** A coding turn's agent (its tools, model and step limit go on after the resume). */
  codingAgent?: string;
  /** The Orchestrator's plan the turn is running, when it runs one (the resume goes on with it). */
  plan?: unknown;
  usage: TurnUsage;
  /**
   * One id per park: every request asked for the same round carries it (and the same state), so a
   * resume finds its siblings. Absent on requests from before: such a request stands alone.
   */
  parkId?: string;
  /** Which of `calls` this request decides (its position); absent before 0251 (the first). */
  position?: number;
  /** Where the untrusted text the turn had read came from: after the resume it is still tainted. */
  taint?: string[];
}

export const storeContinuation = (
  parked: ParkedLoop,
  toolsets: string[],
  usage: TurnUsage,
  park?: { parkId: string; position: number },
  codingAgent?: string,
  plan?: unknown,
): StoredContinuation => ({
  version: 1,
  messages: storeMessages(parked.messages),
  calls: parked.calls,
  iteration: parked.iteration,
  response: parked.response,
  toolCalls: parked.toolCalls,
  ...(parked.taint?.length ? { taint: parked.taint } : {}),
  toolsets,
  usage,
  ...park,
  ...(codingAgent ? { codingAgent } : {}),
  ...(plan ? { plan } : {}),
});

export const loadContinuation = (
  stored: StoredContinuation,
): { parked: ParkedLoop; toolsets: string[]; usage: TurnUsage; codingAgent?: string; plan?: unknown } => ({
  parked: {
    messages: loadMessages(stored.messages),
    calls: stored.calls,
    iteration: stored.iteration,
    response: stored.response,
    toolCalls: stored.toolCalls,
    taint: stored.taint ?? [],
  },
  toolsets: stored.toolsets ?? stored.agents ?? [],
  usage: stored.usage,
  codingAgent: stored.codingAgent,
  plan: stored.plan,
});

/** The call a request decides, by its position in the stored round. */
export const positionOf = (row: Pick<HitlRequestRow, 'continuation'>): number =>
  (row.continuation as StoredContinuation | null)?.position ?? 0;

/**
 * The requests asked together with `row` (one parked round), in call order; `row` alone when it
 * was asked on its own or before 0251.
 */
export async function parkSiblings(hitl: Pick<HitlRepository, 'listForMessage'>, row: HitlRequestRow): Promise<HitlRequestRow[]> {
  const parkId = (row.continuation as StoredContinuation | null)?.parkId;
  if (!parkId) return [row];
  const rows = await hitl.listForMessage(row.messageId);
  return rows
    .filter((other) => (other.continuation as StoredContinuation | null)?.parkId === parkId)
    .sort((a, b) => positionOf(a) - positionOf(b));
}

/**
 * Claims the resume of a parked round once every request of it is decided: one statement marks
 * them all resumed, so of two resumes racing (two decisions a moment apart) exactly one goes on.
 * `rerun`: this very job runs again after its worker died, and goes on anyway (its device calls
 * carry the same idempotency keys). False: a request is still pending, or another resume has it.
 */
export async function claimParkedRound(
  hitl: Pick<HitlRepository, 'markResumedAll'>,
  group: HitlRequestRow[],
  rerun: boolean,
): Promise<boolean> {
  if (group.some((row) => row.status === 'pending')) return false;
  const marked = await hitl.markResumedAll(group.map((row) => row.id));
  return marked.includes(group[0].id) || rerun;
}

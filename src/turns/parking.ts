import { randomUUID } from 'node:crypto';
import type { HitlRepository } from '../models/hitl-repository';
import type { HitlRequestRow } from '../models/schema';
import type { ApprovalService } from './approvals';
import { claimParkedRound, loadContinuation, parkSiblings, positionOf, storeContinuation, type StoredContinuation } from './continuation';
import { inOrderLimited, MAX_PARALLEL_TOOL_CALLS, waitingCalls, type LoopCall, type ParkedLoop } from './tool-loop';
import type { TurnUsage } from './turn-events';

export type { StoredContinuation } from './continuation';

/*
 * The one parking protocol of a tool-using turn, for the chat turn and the agentflow node alike.
 * A round whose calls must wait for a person parks: one approval request per waiting call, in
 * call order, each holding the same continuation (the loop's state, and what the feature adds to
 * it), and the job ends, so no worker slot waits on a human. The last decision's resume claims the
 * round once (a sibling's or a re-queued resume stops), runs the approved calls and gives the
 * model each refusal, and the loop goes on from the stored state.
 */

/** What a feature keeps beside the loop's state: the toolsets, the usage so far, a coding agent and its plan, its own fields. */
export interface ParkedTurn {
  toolsets: string[];
  usage: TurnUsage;
  codingAgent?: string;
  plan?: unknown;
  /** Fields of the feature's own (an agentflow node's execution, node and cost), stored with every request of the round. */
  extra?: Record<string, unknown>;
}

/** One waiting call's approval request, as the feature words it: where it runs and what the person sees. */
export interface ParkedCallRequest {
  deviceId: string;
  parameters: Record<string, unknown>;
}

/** Who the requests of a round belong to: the chat turn's message, or an agentflow node's approval key. */
export type ParkOwner = { userId: string; messageId: string } & ({ sessionId: string } | { executionId: string });

/**
 * Parks `parked`: counts the round's requests against the user's hourly limit of approval requests
 * (429 `rate_limited`, nothing asked), then asks one request per waiting call, in call order.
 * `requestOf` words each call's request; `asked` hears each request as it is written.
 */
export async function parkRound(
  approvals: Pick<ApprovalService, 'allow' | 'request'>,
  owner: ParkOwner,
  parked: ParkedLoop,
  turn: ParkedTurn,
  requestOf: (call: LoopCall, position: number) => ParkedCallRequest,
  asked?: (request: HitlRequestRow, call: LoopCall) => Promise<void> | void,
): Promise<HitlRequestRow[]> {
  const waiting = waitingCalls(parked);
  const parkId = randomUUID();
  await approvals.allow(owner.userId, waiting.length);
  const rows: HitlRequestRow[] = [];
  for (const { call, position } of waiting) {
    const continuation = {
      ...storeContinuation(parked, turn.toolsets, turn.usage, { parkId, position }, turn.codingAgent, turn.plan),
      ...turn.extra,
    };
    const request = await approvals.request({
      ...owner,
      toolName: call.name,
      ...requestOf(call, position),
      continuation,
      taint: parked.taint,
    });
    rows.push(request);
    await asked?.(request, call);
  }
  return rows;
}

/** A round whose every request is decided, claimed by this resume: the stored state and each waiting call with its decision. */
export interface ClaimedRound {
  group: HitlRequestRow[];
  parked: ParkedLoop;
  toolsets: string[];
  usage: TurnUsage;
  codingAgent?: string;
  plan?: unknown;
  /** The continuation as stored (with a feature's own fields). */
  stored: StoredContinuation & Record<string, unknown>;
  /** The calls that waited, each with the request that decided it. */
  waiting: Array<{ call: LoopCall; position: number; decision: HitlRequestRow }>;
}

/**
 * Claims the round `row` belongs to for this resume, once every request of it is decided:
 * undefined when one is still pending or another resume has it (`rerun`: this very job runs again
 * after its worker died, and goes on anyway: its device calls carry the same idempotency keys).
 */
export async function claimRound(
  hitl: Pick<HitlRepository, 'listForMessage' | 'markResumedAll'>,
  row: HitlRequestRow,
  rerun: boolean,
): Promise<ClaimedRound | undefined> {
  const group = await parkSiblings(hitl, row);
  if (!(await claimParkedRound(hitl, group, rerun))) return undefined;
  const stored = group[0].continuation as StoredContinuation & Record<string, unknown>;
  const loaded = loadContinuation(stored);
  const decisions = new Map(group.map((request) => [positionOf(request), request]));
  // A turn parked before requests were asked per call holds calls that never ran and have no request: the loop runs (or parks) them.
  const waiting = waitingCalls(loaded.parked)
    .filter(({ position }) => decisions.has(position))
    .map(({ call, position }) => ({ call, position, decision: decisions.get(position)! }));
  return { group, ...loaded, stored, waiting };
}

/**
 * The results of a claimed round's calls, by position: an approved call runs (`approved`, up to
 * the loop's parallel limit) — with the approver's arguments when they edited them, and the
 * model is told so before the result; a refused one (rejected, not decided in time) gives
 * `refused`'s text, or the approver's reply when the rejection carried one; a cancel stops what
 * has not started with `cancelledText`.
 */
export async function decidedResults(
  round: Pick<ClaimedRound, 'waiting'>,
  approved: (call: LoopCall, decision: HitlRequestRow, position: number) => Promise<string>,
  refused: (call: LoopCall, decision: HitlRequestRow) => Promise<string>,
  cancelledText: (call: LoopCall) => string,
  signal?: AbortSignal,
): Promise<Map<number, string>> {
  const outcomes = await inOrderLimited(
    round.waiting,
    MAX_PARALLEL_TOOL_CALLS,
    async ({ call, position, decision }) => {
      if (decision.status === 'approved') {
        if (!decision.editedArguments) return approved(call, decision, position);
        const result = await approved({ ...call, args: decision.editedArguments }, decision, position);
        return `${editedNote(call.name, decision.editedArguments)}\n${result}`;
      }
      const text = await refused(call, decision);
      return decision.status === 'rejected' && decision.reply ? replyText(call.name, decision.reply) : text;
    },
    ({ call }) => cancelledText(call),
    signal,
  );
  return new Map(round.waiting.map(({ position }, i) => [position, outcomes[i]]));
}

/** What the model reads before the result of a call the person approved with their own arguments. */
export const editedNote = (name: string, args: Record<string, unknown>) =>
  `Note: the user edited the arguments before approving ${name}; it ran with ${JSON.stringify(args)}.`;

/** What the model reads for a call the person rejected with a reply: the reply is the result, and the turn goes on. */
export const replyText = (name: string, reply: string) =>
  `${name} was NOT run: the user rejected it and replied: ${JSON.stringify(reply)}. Take their reply into account and go on.`;

/** Whether a refusal of a parked call still lets its turn go on: a rejection with a reply does (the model reads it). */
export const refusalGoesOn = (decision: Pick<HitlRequestRow, 'status' | 'reply'>) =>
  decision.status === 'rejected' && Boolean(decision.reply);

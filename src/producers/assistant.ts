import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { TIERS } from '../../config';
import { CODING_AGENT_NAMES } from '../../config/coding-agents';
import { deviceIdSchema } from '../schemas/device-protocol';
import { baseJobOptions, defineJob, defineQueue, promptPartSchema } from './define';

/**
 * `assistant` queue: everything the assistant does in the background, each job name handled once
 * (src/workers/assistant.ts). Payloads carry ids only: message text lives in `chat_messages`, a
 * journey answer beside its session in Redis, so no user text sits in a job or in the dashboard.
 */

/** `chat-turn`: one assistant chat turn. */
export const chatTurnJobSchema = z.object({
  userId: z.uuid(),
  sessionId: z.uuid(),
  /** The user message this turn answers; also the turn's event-log key. */
  messageId: z.uuid(),
  /** The device whose local data the tools read and write; absent for a plain assistant turn. */
  deviceId: deviceIdSchema.optional(),
  /**
   * The device's own socket asked for the turn: its messages go to every connection of that device,
   * so an app that reconnected (or whose server restarted) still gets its answer. Otherwise they go
   * to the connection that asked and to those that asked for every turn.
   */
  fromDevice: z.literal(true).optional(),
  /** The canvas whose room thread the session is: the turn gets its canvas tools and its events go to the room. */
  canvasId: z.uuid().optional(),
  /** `none`: no device tools, the model answers from the conversation alone. */
  tools: z.enum(['device', 'none']).default('device'),
  /** Set when the request asked for `tools: "none"`: not even the user's MCP servers' tools are offered. */
  noTools: z.literal(true).optional(),
  /** The model the request chose (validated by the API against the configured providers). */
  model: z.object({ provider: z.string(), model: z.string() }).optional(),
  /** A coding turn: the agent the request named; its tools work on the project the device serves. */
  agent: z.enum(CODING_AGENT_NAMES).optional(),
  /** The reservation the request took for the job's first model call (the budget door); absent for a user without limits. */
  budget: z.string().optional(),
  /**
   * With `budget`: the size of the MCP tool definitions the request counted into it (as their servers'
   * last listing recorded them). The turn offers no more than that unless the reservation can be widened.
   */
  mcpTools: promptPartSchema.optional(),
  /**
   * Documents the message was sent with (files ingested into the session's own knowledge base):
   * the turn waits for them to be ready before its first model call.
   */
  attachments: z.array(z.uuid()).max(20).optional(),
  /** The user's tier at the request, a label of the turn's model-call metrics; absent (an older job, an embed's turn), the worker reads it. */
  tier: z.enum(TIERS).optional(),
});
export type ChatTurnJob = z.infer<typeof chatTurnJobSchema>;

/** `hitl-resume`: a turn parked for an approval. */
export const hitlJobSchema = z.object({ approvalId: z.uuid() });
export type HitlJob = z.infer<typeof hitlJobSchema>;
export const hitlResumeJobId = (approvalId: string) => `hitl-resume-${approvalId}`;

/** `waitpoint-deadline`: completes a run's waitpoint when its time has come (src/runs/run-kernel.ts). */
export const waitpointDeadlineJobSchema = z.object({ waitpointId: z.uuid() });
export type WaitpointDeadlineJob = z.infer<typeof waitpointDeadlineJobSchema>;
export const waitpointDeadlineJobId = (waitpointId: string) => `waitpoint-deadline-${waitpointId}`;

/** `ticket-notes`: write a resolved session's ticket notes (the messages are on the session's rows). */
export const ticketNotesJobSchema = z.object({
  userId: z.uuid(),
  sessionId: z.uuid(),
  /** The reservation the request took for the job's first model call (the budget door); absent for a user without limits. */
  budget: z.string().optional(),
});
export type TicketNotesJob = z.infer<typeof ticketNotesJobSchema>;
/** One notes job per session: a double resolve (or a resolve racing a retry) never writes twice. */
export const ticketNotesJobId = (sessionId: string) => `notes-${sessionId}`;

/** `session-embedding`: embed a resolved session from its stored notes, so similar sessions find it. */
export const sessionEmbeddingJobSchema = z.object({ userId: z.uuid(), sessionId: z.uuid() });
export type SessionEmbeddingJob = z.infer<typeof sessionEmbeddingJobSchema>;
/** One embedding per session's notes: a repeat while one is queued is the same job. */
export const sessionEmbeddingJobId = (sessionId: string) => `session-embedding-${sessionId}`;

/** `journey-turn`: one answer of an agent setup journey; the answer waits in `JourneyStore`. */
export const journeyTurnJobSchema = z.object({
  userId: z.uuid(),
  sessionId: z.uuid(),
  /** Which answer this is (1 for the answer to the first question). */
  turn: z.number().int().min(1).max(100),
  /** The reservation the request took for the job's first model call (the budget door); absent for a user without limits. */
  budget: z.string().optional(),
});
export type JourneyTurnJob = z.infer<typeof journeyTurnJobSchema>;
/** One job per (session, answer): a double submit of the same answer waits on the same job. */
export const journeyTurnJobId = (sessionId: string, turn: number) => `journey-${sessionId}-${turn}`;

/**
 * `chatflow-turn`: one chat turn of a saved chatflow: the flow's system prompt, model
 * and history window instead of the assistant's tools. Same job id rule as a chat turn (the message
 * id), so its event log, cancel, liveness checks and the reaper treat it as any chat turn.
 */
export const chatflowTurnJobSchema = z.object({
  /** The flow's owner: the session's user, billed for the turn (also for an embed's visitors). */
  userId: z.uuid(),
  flowId: z.uuid(),
  sessionId: z.uuid(),
  messageId: z.uuid(),
  /** The reservation the request took for the job's first model call (the budget door); absent for a user without limits. */
  budget: z.string().optional(),
  /**
   * With `budget`: the size of the MCP tool definitions the request counted into it (as their servers'
   * last listing recorded them). The turn offers no more than that unless the reservation can be widened.
   */
  mcpTools: promptPartSchema.optional(),
  /**
   * Documents the message was sent with (files ingested into the session's own knowledge base):
   * the turn waits for them to be ready before its first model call.
   */
  attachments: z.array(z.uuid()).max(20).optional(),
  /** The user's tier at the request, a label of the turn's model-call metrics; absent (an older job, an embed's turn), the worker reads it. */
  tier: z.enum(TIERS).optional(),
  /** The flow version to answer with (an embed's pinned version); absent, the flow's published one. */
  flowVersion: z.number().int().min(1).optional(),
});
export type ChatflowTurnJob = z.infer<typeof chatflowTurnJobSchema>;

export const assistantQueue = defineQueue({
  name: 'assistant',
  jobs: {
    /**
     * The job id is the message id: a message is answered once. One attempt only: a turn's tool
     * calls write on the user's device, so a blind retry could create the same task twice. A failed
     * turn reports an `error` event and the user asks again.
     */
    // Turns share the queue fairly per user: one user's burst does not queue ahead of everyone.
    'chat-turn': defineJob({
      schema: chatTurnJobSchema,
      options: { ...baseJobOptions, attempts: 1 },
      jobId: (job) => job.messageId,
      fairBy: (job) => job.userId,
    }),
    /** Continues a parked turn once decided: one resume per request, one attempt (the approved tool writes on the device). */
    'hitl-resume': defineJob({
      schema: hitlJobSchema,
      options: { ...baseJobOptions, attempts: 1 },
      jobId: (job) => hitlResumeJobId(job.approvalId),
    }),
    /**
     * Completes a waitpoint at its time (an approval's expiry among them): queued with the delay to
     * it, one per waitpoint, a no-op when it completed first. Retried (a completion is one conditional UPDATE); recovery completes it
     * when the job is lost.
     */
    'waitpoint-deadline': defineJob({
      schema: waitpointDeadlineJobSchema,
      options: baseJobOptions,
      jobId: (job) => waitpointDeadlineJobId(job.waitpointId),
    }),
    /**
     * One attempt: the notes stream into an event log that listeners replay from the start, so a
     * second attempt would repeat text they already showed. The model call retries (and falls back)
     * inside the attempt; a failed job ends the stream with `[ERROR]`, the next resolve queues afresh.
     */
    'ticket-notes': defineJob({
      schema: ticketNotesJobSchema,
      options: { ...baseJobOptions, attempts: 1 },
      jobId: (job) => ticketNotesJobId(job.sessionId),
    }),
    /**
     * Follows written notes. Retried with backoff (embedding twice only replaces the row); removed
     * once done, so notes written again later queue a fresh one under the same id.
     */
    'session-embedding': defineJob({
      schema: sessionEmbeddingJobSchema,
      options: { ...baseJobOptions, removeOnComplete: true },
      jobId: (job) => sessionEmbeddingJobId(job.sessionId),
    }),
    /**
     * One attempt: the model call retries and falls back inside it; a failed turn answers the waiting
     * request with an error and the user sends the answer again (which replaces the failed job).
     * Finished jobs are dropped after an hour: their id only matters while the turn is open.
     */
    'journey-turn': defineJob({
      schema: journeyTurnJobSchema,
      options: { ...baseJobOptions, attempts: 1, removeOnComplete: { age: 3600 } },
      jobId: (job) => journeyTurnJobId(job.sessionId, job.turn),
    }),
    /** One attempt, as a chat turn: a retry would stream the answer a second time to its listener. */
    'chatflow-turn': defineJob({
      schema: chatflowTurnJobSchema,
      options: { ...baseJobOptions, attempts: 1 },
      jobId: (job) => job.messageId,
      fairBy: (job) => job.userId,
    }),
  },
  /** Turns mostly wait on the model and on devices, not on CPU: a process runs many at once. */
  concurrency: (config) => config.assistant.concurrency,
});

/** What a finished journey turn returns; the reply text itself is read from the session. */
export const journeyTurnResultSchema = z.object({ turn: z.number().int(), done: z.boolean() });
export type JourneyTurnResult = z.infer<typeof journeyTurnResultSchema>;

/** Why a journey turn failed, as the HTTP layer maps it (503, 404, 429, 502). */
export const JOURNEY_FAILURES = ['llm_unavailable', 'llm_auth_failed', 'session_not_found', 'budget_exceeded', 'journey_failed'] as const;
export type JourneyFailureCode = (typeof JOURNEY_FAILURES)[number];

/** A permanent turn failure whose reason starts with its code (`llm_unavailable: …`), so the waiter can map it. */
export function journeyFailure(code: JourneyFailureCode, message: string): UnrecoverableError {
  return new UnrecoverableError(`${code}: ${message}`);
}

/** The code and message of a failed turn's reason; unknown reasons are `journey_failed`. */
export function parseJourneyFailure(reason: string): { code: JourneyFailureCode; message: string } {
  const match = /^([a-z_]+): (.*)$/s.exec(reason);
  const code = JOURNEY_FAILURES.find((c) => c === match?.[1]);
  return code ? { code, message: match![2] } : { code: 'journey_failed', message: reason };
}

import { z } from 'zod';
import { deviceIdSchema } from '../devices/protocol';
import { baseJobOptions, type QueueRegistry } from './queue-registry';

/**
 * `assistant` queue: one assistant chat turn. The payload carries ids only — the message text
 * lives in the `chat_messages` row, so user text never sits in Redis or in the dashboard.
 */
export const ASSISTANT_QUEUE = 'assistant' as const;
export const ASSISTANT_JOB = 'chat-turn';

export const assistantJobSchema = z.object({
  userId: z.uuid(),
  sessionId: z.uuid(),
  /** The user message this turn answers; also the turn's event-log key. */
  messageId: z.uuid(),
  /** The device whose local data the tools read and write; absent for a plain assistant turn. */
  deviceId: deviceIdSchema.optional(),
  /** `none`: no device tools, the model answers from the conversation alone (SPEC §16). */
  tools: z.enum(['device', 'none']).default('device'),
  /** The model the request chose (validated by the API against the configured providers). */
  model: z.object({ provider: z.string(), model: z.string() }).optional(),
});
export type AssistantJob = z.infer<typeof assistantJobSchema>;

/**
 * The job id is the message id: a message is answered once. One attempt only: a turn's tool calls
 * write on the user's device, so a blind retry could create the same task twice. A failed turn
 * reports an `error` event and the user asks again.
 */
export async function enqueueAssistantTurn(queues: QueueRegistry, data: AssistantJob) {
  const payload = assistantJobSchema.parse(data);
  return queues.get(ASSISTANT_QUEUE).add(ASSISTANT_JOB, payload, { ...baseJobOptions, attempts: 1, jobId: payload.messageId });
}

/** Continues a turn parked for an approval once it is decided (0021). Ids only, as every payload. */
export const HITL_RESUME_JOB = 'hitl-resume';
/** Times an approval out: delayed by HITL_TIMEOUT_MS, a no-op when the request was decided before. */
export const HITL_TIMEOUT_JOB = 'hitl-timeout';

export const hitlJobSchema = z.object({ approvalId: z.uuid() });
export type HitlJob = z.infer<typeof hitlJobSchema>;

/** One resume per request (job id), one attempt: the approved tool writes on the device. */
export async function enqueueHitlResume(queues: QueueRegistry, approvalId: string) {
  return queues.get(ASSISTANT_QUEUE).add(HITL_RESUME_JOB, { approvalId }, { ...baseJobOptions, attempts: 1, jobId: `hitl-resume-${approvalId}` });
}

export async function enqueueHitlTimeout(queues: QueueRegistry, approvalId: string, delayMs: number) {
  return queues.get(ASSISTANT_QUEUE).add(HITL_TIMEOUT_JOB, { approvalId }, { ...baseJobOptions, delay: delayMs, jobId: `hitl-timeout-${approvalId}` });
}

import { z } from 'zod';
import { ASSISTANT_QUEUE } from './assistant';
import { baseJobOptions, type QueueRegistry } from './queue-registry';

/**
 * `assistant` queue, job `ticket-notes`: write a resolved session's ticket notes. Ids only — the
 * messages and the resolution summary live on the session's rows.
 */
export const TICKET_NOTES_JOB = 'ticket-notes';

export const ticketNotesJobSchema = z.object({
  userId: z.uuid(),
  sessionId: z.uuid(),
});
export type TicketNotesJob = z.infer<typeof ticketNotesJobSchema>;

/** One notes job per session: a double resolve (or a resolve racing a retry) never writes twice. */
export const ticketNotesJobId = (sessionId: string) => `notes-${sessionId}`;

/**
 * One attempt: the notes stream into an event log that listeners replay from the start, so a
 * second attempt would repeat text they already showed. The model call itself retries (and falls
 * back to other models) inside the attempt; a failed job ends the stream with `[ERROR]`, and the
 * next resolve queues a fresh job.
 */
export async function enqueueTicketNotes(queues: QueueRegistry, data: TicketNotesJob) {
  const payload = ticketNotesJobSchema.parse(data);
  return queues.get(ASSISTANT_QUEUE).add(TICKET_NOTES_JOB, payload, { ...baseJobOptions, attempts: 1, jobId: ticketNotesJobId(payload.sessionId) });
}

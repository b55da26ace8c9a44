import { UnrecoverableError, type Job } from 'bullmq';
import type { AssistantRunner } from '../assistant/assistant-runner';
import type { SessionNotesRunner } from '../assistant/session-notes-runner';
import { TICKET_NOTES_JOB } from '../producers/session-notes';

/**
 * `assistant` queue processor: thin handlers over the runners, chosen by job name — ticket notes
 * go to the notes runner, everything else (chat turns) to the assistant runner.
 */
export const createAssistantProcessor = (runner: AssistantRunner, notes?: SessionNotesRunner) => (job: Job) => {
  if (job.name === TICKET_NOTES_JOB) {
    if (!notes) throw new UnrecoverableError('This worker has no ticket-notes handler');
    return notes.process(job);
  }
  return runner.process(job);
};

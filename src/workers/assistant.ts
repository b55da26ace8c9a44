import { UnrecoverableError, type Job } from 'bullmq';
import type { AssistantRunner } from '../assistant/assistant-runner';
import type { SessionNotesRunner } from '../assistant/session-notes-runner';
import type { JourneyRunner } from '../agents/journey-runner';
import { JOURNEY_TURN_JOB } from '../producers/journey';
import { TICKET_NOTES_JOB } from '../producers/session-notes';

/**
 * `assistant` queue processor: thin handlers over the runners, chosen by job name — ticket notes
 * go to the notes runner, agent setup journey turns to the journey runner, everything else (chat
 * turns) to the assistant runner.
 */
export const createAssistantProcessor = (runner: AssistantRunner, notes?: SessionNotesRunner, journey?: JourneyRunner) => (job: Job) => {
  if (job.name === TICKET_NOTES_JOB) {
    if (!notes) throw new UnrecoverableError('This worker has no ticket-notes handler');
    return notes.process(job);
  }
  if (job.name === JOURNEY_TURN_JOB) {
    if (!journey) throw new UnrecoverableError('This worker has no journey-turn handler');
    return journey.process(job);
  }
  return runner.process(job);
};

import type { Job } from 'bullmq';

/**
 * Whether this run of a job follows an earlier start whose worker died mid-job: BullMQ's stall
 * check moved it back (`stalledCounter`), or the dead-worker detector did (a start with no failed
 * attempt recorded after it). A retry after a failed attempt is not one: its start was counted
 * with the failure.
 */
export function restartedAfterCrash(job: Pick<Job, 'stalledCounter' | 'attemptsStarted' | 'attemptsMade'>): boolean {
  return job.stalledCounter > 0 || job.attemptsStarted > job.attemptsMade + 1;
}

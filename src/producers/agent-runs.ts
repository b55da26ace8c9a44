import { z } from 'zod';
import { baseJobOptions, defineJob, defineQueue } from './define';

/**
 * `agent-runs` queue: read a local agent's files (or take a cloud run's fetched
 * items), extract, deliver. A job names a run: its id, the agent, the owner, and how it started.
 * A cloud run is fetched on `connectors` first (./connectors.ts), which then queues the same run here.
 */
export const agentRunJobSchema = z.object({
  runId: z.uuid(),
  agentId: z.uuid(),
  agentType: z.enum(['local', 'cloud']),
  userId: z.uuid(),
  trigger: z.enum(['schedule', 'manual']),
  /** The due slot a scheduled run is for (ISO); unique per agent. */
  slot: z.iso.datetime().optional(),
  /** Set when a waiting run is resumed by this device's `device_hello`. */
  deviceId: z.string().max(128).optional(),
  /** The budget reservation its request (or the scheduler) took before queueing it: the run's first model call takes it over. */
  budget: z.string().optional(),
  /** Times the job went back to its queue because another run of its device was running. */
  deviceWaits: z.number().int().min(0).optional(),
});
export type AgentRunJob = z.infer<typeof agentRunJobSchema>;

/**
 * Job ids: a scheduled slot has one id however many schedulers enqueue it; a manual run and a
 * resume are keyed by the run, so a double submit or a double `device_hello` queues one job.
 */
export function agentRunJobId(job: AgentRunJob, stage: 'fetch' | 'run'): string {
  if (job.deviceId) return `resume-${job.runId}`;
  if (job.trigger === 'schedule' && job.slot) return `${stage}-slot-${job.agentId}-${Date.parse(job.slot)}`;
  return `${stage}-${job.runId}`;
}

export const agentRunsQueue = defineQueue({
  name: 'agent-runs',
  jobs: {
    /**
     * Runs do their own bookkeeping (the run row records every error), so the job is tried once
     * unless the worker crashed: a retry would deliver suggestions the user already has.
     */
    'agent-run': defineJob({
      schema: agentRunJobSchema,
      options: { ...baseJobOptions, attempts: 1 },
      jobId: (job) => agentRunJobId(job, 'run'),
    }),
  },
  /** Runs wait on devices, providers and the model. */
  concurrency: 4,
});

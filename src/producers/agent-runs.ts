import { z } from 'zod';
import { baseJobOptions, type QueueRegistry } from './queue-registry';

/**
 * `agent-runs` and `connectors` queues (SPEC §3, §7). A job names a run: its id, the agent, the
 * owner, and how it started. A local run goes straight to `agent-runs`; a cloud run is fetched on
 * `connectors` first, which then queues the same run on `agent-runs` to extract and deliver.
 */
export const AGENT_RUNS_QUEUE = 'agent-runs';
export const CONNECTORS_QUEUE = 'connectors';
export const AGENT_RUN_JOB = 'agent-run';
export const CONNECTOR_FETCH_JOB = 'connector-fetch';

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

/**
 * Runs do their own bookkeeping (the run row records every error), so the job is tried once per
 * stage unless the worker crashed: a retry would deliver suggestions the user already has.
 */
const runJobOptions = { ...baseJobOptions, attempts: 1 };

/** Queues a run where it starts: `connectors` for a cloud agent that still has to fetch, else `agent-runs`. */
export async function enqueueAgentRun(queues: QueueRegistry, data: AgentRunJob, stage: 'fetch' | 'run' = data.agentType === 'cloud' && !data.deviceId ? 'fetch' : 'run') {
  const payload = agentRunJobSchema.parse(data);
  const queue = stage === 'fetch' ? CONNECTORS_QUEUE : AGENT_RUNS_QUEUE;
  // Fetches are retried on network errors (nothing was delivered yet); 429s do not count (rate limit).
  const options = stage === 'fetch' ? { ...baseJobOptions, attempts: 3 } : runJobOptions;
  return queues.get(queue).add(stage === 'fetch' ? CONNECTOR_FETCH_JOB : AGENT_RUN_JOB, payload, { ...options, jobId: agentRunJobId(payload, stage) });
}

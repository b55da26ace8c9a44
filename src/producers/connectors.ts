import { agentRunJobId, agentRunJobSchema } from './agent-runs';
import { baseJobOptions, defineJob, defineQueue } from './define';

/**
 * `connectors` queue: fetch a cloud agent's new mail or messages, then queue the same run
 * on `agent-runs` to extract and deliver. The payload is the run's (./agent-runs.ts).
 */
export const connectorsQueue = defineQueue({
  name: 'connectors',
  jobs: {
    /** Retried on network errors (nothing was delivered yet); a provider's 429 does not count (rate limit). */
    'connector-fetch': defineJob({
      schema: agentRunJobSchema,
      options: { ...baseJobOptions, attempts: 3 },
      jobId: (job) => agentRunJobId(job, 'fetch'),
    }),
  },
  concurrency: 4,
  // Far above real use: it is there so a provider 429's queue.rateLimit pauses every worker.
  limiter: { max: 1_000, duration: 1_000 },
});

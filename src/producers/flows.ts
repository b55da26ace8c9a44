import { z } from 'zod';
import { TIERS } from '../../config';
import { baseJobOptions, defineJob, defineQueue, promptPartSchema } from './define';

/**
 * `flows` queue: one job per node of an agentflow execution. The payload
 * carries ids only — prompts, inputs and outputs live in the execution's rows.
 */
export const flowNodeJobSchema = z.object({
  executionId: z.uuid(),
  nodeId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  userId: z.uuid(),
  tier: z.enum(TIERS),
  /** The budget reservation the execution's request took: set on one root node, whose first model call takes it over. */
  budget: z.string().optional(),
  /**
   * With `budget`: the size of the MCP tool definitions the request counted into it (as their servers'
   * last listing recorded them). The node offers no more than that unless the reservation can be widened.
   */
  mcpTools: promptPartSchema.optional(),
  /** Continues the node after the owner decided on its parked tool call (this approval request). */
  resume: z.uuid().optional(),
});
export type FlowNodeJob = z.infer<typeof flowNodeJobSchema>;

/**
 * The job id is the execution and node: however many parents finish at once and each dispatches
 * the child they unblock, the node is queued once.
 */
export const flowNodeJobId = (executionId: string, nodeId: string) => `flow-${executionId}-${nodeId}`;
/** A parked node's continuation: one job per decision. */
export const flowNodeResumeJobId = (executionId: string, nodeId: string, approvalId: string) =>
  `flow-${executionId}-${nodeId}-resume-${approvalId}`;

/** A failed node retries alone, with backoff: three attempts (1 s, then 2 s apart). */
export const FLOW_NODE_ATTEMPTS = 3;

export const flowsQueue = defineQueue({
  name: 'flows',
  jobs: {
    node: defineJob({
      schema: flowNodeJobSchema,
      options: { ...baseJobOptions, attempts: FLOW_NODE_ATTEMPTS, backoff: { type: 'exponential', delay: 1_000 } },
      jobId: (job) =>
        job.resume ? flowNodeResumeJobId(job.executionId, job.nodeId, job.resume) : flowNodeJobId(job.executionId, job.nodeId),
      // One user's executions (up to 50 nodes each) must not queue ahead of everyone else's.
      fairBy: (job) => job.userId,
    }),
  },
  /** Nodes wait on one model call each, so several run side by side in one worker process. */
  concurrency: 8,
});

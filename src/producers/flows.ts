import { z } from 'zod';
import { TIERS } from '../../config';
import { baseJobOptions, defineJob, defineQueue, promptPartSchema } from './define';
import { BACKGROUND_PRIORITY, evaluationJobs } from './evaluations';

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
  /** `evaluation`: a node of an evaluation's execution, queued behind everyone's own executions. */
  lane: z.literal('evaluation').optional(),
  /** One item of a foreach or loop node (its element's position, or the iteration from 0). */
  item: z.number().int().min(0).max(1_000).optional(),
  /** The child execution of a subflow node ended: the node finishes with it. */
  child: z.uuid().optional(),
  /** The form of a human_input node was answered or timed out (this input request): the node finishes with it. */
  input: z.uuid().optional(),
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

/** One item of a foreach or loop node. */
export const flowItemJobId = (executionId: string, nodeId: string, item: number) => `flow-${executionId}-${nodeId}-item-${item}`;
/** A subflow node's notice that its child execution ended. */
export const flowChildJobId = (executionId: string, nodeId: string, childId: string) => `flow-${executionId}-${nodeId}-child-${childId}`;
/** A human_input node's notice that its form was answered or timed out. */
export const flowInputJobId = (executionId: string, nodeId: string, inputId: string) => `flow-${executionId}-${nodeId}-input-${inputId}`;

/** A failed node retries alone, with backoff: three attempts (1 s, then 2 s apart). */
export const FLOW_NODE_ATTEMPTS = 3;

/**
 * `flows` queue, `trigger`: one fire of a flow trigger (a schedule's slot, a verified webhook
 * delivery, a connector run's mails). The worker admits it (concurrency) and starts the execution.
 * `fire` names the fire, unique per trigger (`slot-<ms>`, `hook-<hash of webhook-id>`,
 * `run-<agent run id>`): the job id and the execution row both carry it, so a fire enqueued by two
 * schedulers, retried after a crash or replayed starts one execution.
 */
export const triggerFireJobSchema = z.object({
  triggerId: z.uuid(),
  userId: z.uuid(),
  fire: z.string().regex(/^[a-z]+-[A-Za-z0-9_-]{1,100}$/),
  input: z.record(z.string(), z.unknown()),
});
export type TriggerFireJob = z.infer<typeof triggerFireJobSchema>;
export const triggerFireJobId = (triggerId: string, fire: string) => `trigger-${triggerId}-${fire}`;

export const flowsQueue = defineQueue({
  name: 'flows',
  jobs: {
    node: defineJob({
      schema: flowNodeJobSchema,
      options: { ...baseJobOptions, attempts: FLOW_NODE_ATTEMPTS, backoff: { type: 'exponential', delay: 1_000 } },
      jobId: (job) =>
        job.resume
          ? flowNodeResumeJobId(job.executionId, job.nodeId, job.resume)
          : job.item !== undefined
            ? flowItemJobId(job.executionId, job.nodeId, job.item)
            : job.child
              ? flowChildJobId(job.executionId, job.nodeId, job.child)
              : job.input
                ? flowInputJobId(job.executionId, job.nodeId, job.input)
                : flowNodeJobId(job.executionId, job.nodeId),
      // One user's executions (up to 50 nodes each) must not queue ahead of everyone else's.
      fairBy: (job) => (job.lane ? `${job.userId}:${job.lane}` : job.userId),
      priorityBase: (job) => (job.lane ? BACKGROUND_PRIORITY : 0),
    }),
    ...evaluationJobs,
    trigger: defineJob({
      schema: triggerFireJobSchema,
      // A fire fails only on a store being away for a while: retried with backoff, then recorded on the trigger.
      options: { ...baseJobOptions, attempts: 5, backoff: { type: 'exponential', delay: 2_000 } },
      jobId: (job) => triggerFireJobId(job.triggerId, job.fire),
    }),
  },
  /** Nodes wait on one model call each, so several run side by side in one worker process. */
  concurrency: 8,
});

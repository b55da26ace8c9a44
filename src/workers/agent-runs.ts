import { UnrecoverableError, type Job } from 'bullmq';
import type { AgentRunner, RunOutcome } from '../agents/agent-runner';
import { agentRunJobSchema } from '../producers/agent-runs';

const invalid = () => new UnrecoverableError('Invalid agent run payload: expected {runId, agentId, agentType, userId, trigger, slot?, deviceId?}');

/** `agent-runs` queue: read a local agent's files (or take a cloud run's fetched items), extract, deliver. */
export function createAgentRunsProcessor(runner: AgentRunner) {
  return async (job: Job): Promise<RunOutcome> => {
    const parsed = agentRunJobSchema.safeParse(job.data);
    if (!parsed.success) throw invalid();
    // attemptsStarted > 1: a stalled job (its worker died) started again.
    return runner.run(parsed.data, { restarted: job.attemptsStarted > 1 });
  };
}

/** `connectors` queue: fetch a cloud agent's new mail or messages, then queue the run on `agent-runs`. */
export function createConnectorsProcessor(runner: AgentRunner) {
  return async (job: Job): Promise<RunOutcome> => {
    const parsed = agentRunJobSchema.safeParse(job.data);
    if (!parsed.success) throw invalid();
    return runner.fetch(parsed.data, { last: job.attemptsMade + 1 >= (job.opts.attempts ?? 1) });
  };
}

import type { Job } from 'bullmq';
import type { AssistantRunner } from '../assistant/assistant-runner';

/** `assistant` queue processor: a thin handler over the runner. */
export const createAssistantProcessor = (runner: AssistantRunner) => (job: Job) => runner.process(job);

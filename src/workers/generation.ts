import type { Job } from 'bullmq';
import type { GenerationRunner } from '../generation/generation-runner';

/** `generation` queue processor: a thin handler over the runner. */
export const createGenerationProcessor = (runner: GenerationRunner) => (job: Job) => runner.process(job);

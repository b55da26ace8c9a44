import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/**
 * `knowledge` queue: one ingestion of one document revision. A failure that retrying cannot
 * mend (an unsupported, encrypted or damaged file, a refused URL) fails the document with the
 * reason and finishes the job; any other error throws, so BullMQ retries and the retry resumes
 * from the chunks already stored; the last attempt fails the document instead.
 */
export const knowledgeHandlers = onJobs('knowledge', 'src/workers/knowledge.ts', {
  ingest: ({ documentId, revision }, job, { knowledge }: Pick<WorkerPorts, 'knowledge'>) =>
    knowledge.ingest(documentId, revision, job.attemptsMade + 1 >= (job.opts.attempts ?? 1)),
});

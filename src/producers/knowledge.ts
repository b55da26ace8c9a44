import { z } from 'zod';
import { baseJobOptions, defineJob, defineQueue } from './define';

/**
 * `knowledge` queue: one job per ingestion of one document revision (parse, chunk, embed through
 * the `embeddings` queue, store). The payload names the row only: the bytes wait in
 * `knowledge_files`. The job id comes from the document and revision, so the same ingestion is
 * never queued twice; a re-ingestion is a new revision, so a new job.
 */
export const knowledgeIngestJobSchema = z.object({
  documentId: z.uuid(),
  revision: z.number().int().positive(),
});
export type KnowledgeIngestJob = z.infer<typeof knowledgeIngestJobSchema>;

export const knowledgeQueue = defineQueue({
  name: 'knowledge',
  jobs: {
    ingest: defineJob({
      schema: knowledgeIngestJobSchema,
      // A retry resumes: chunks already stored are kept, the others embedded.
      options: { ...baseJobOptions, attempts: 3, backoff: { type: 'exponential', delay: 2_000 } },
      jobId: (job) => `knowledge-${job.documentId}-${job.revision}`,
    }),
  },
  concurrency: (config) => config.knowledge.concurrency,
});

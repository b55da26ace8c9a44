import type { Db, DbOrTx } from './database';
import { llmUsage } from './schema';

export interface UsageRecord {
  userId: string | null;
  generationId?: string | null;
  sessionId?: string | null;
  purpose: 'generation' | 'chat' | 'embedding' | 'extraction' | 'notes' | 'journey';
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** No provider figures (an aborted stream): about 4 characters a token. */
  estimated?: boolean;
}

/** Token usage and cost, one row per model call (or per generation, summed over its calls). */
export class UsageRepository {
  constructor(private readonly db: Db) {}

  async record(entry: UsageRecord, db: DbOrTx = this.db): Promise<void> {
    await db.insert(llmUsage).values(entry);
  }
}

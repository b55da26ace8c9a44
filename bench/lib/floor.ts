import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { KEPT_FOR_WAITERS } from './bench-redis';
import { msBetween, now } from './timing';

/**
 * The pieces of the floor, each the least a generation's path could cost with the same tools:
 * consuming the model's stream (fetch, SSE split, per-call argument accumulation, JSON.parse), a
 * BullMQ round trip through a no-op worker, one multi-row insert in one transaction, and (in
 * raw-socket-server.ts) a bare Socket.IO emit loop.
 */

const connectionOf = (redisUrl: string) => {
  const url = new URL(redisUrl);
  return { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
};

/** `Queue.add` → a no-op worker completes it, observed through QueueEvents (`job.waitUntilFinished`). */
export class FloorQueue {
  private constructor(
    private readonly queue: Queue,
    private readonly worker: Worker,
    private readonly events: QueueEvents,
  ) {}

  static async start(redisUrl: string, prefix: string): Promise<FloorQueue> {
    const connection = connectionOf(redisUrl);
    const queue = new Queue('floor', { connection, prefix });
    const worker = new Worker('floor', async () => undefined, { connection, prefix, concurrency: 1 });
    const events = new QueueEvents('floor', { connection, prefix });
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady(), events.waitUntilReady()]);
    return new FloorQueue(queue, worker, events);
  }

  /** Milliseconds from add to completed. */
  async roundTrip(): Promise<number> {
    const started = now();
    const job = await this.queue.add('noop', { at: Date.now() }, KEPT_FOR_WAITERS);
    await job.waitUntilFinished(this.events, 10_000);
    return msBetween(started);
  }

  async close(): Promise<void> {
    await this.worker.close();
    await this.events.close();
    await this.queue.obliterate({ force: true }).catch(() => undefined);
    await this.queue.close();
  }
}

const DDL = `
create table bench_blocks (
  id uuid primary key default gen_random_uuid(),
  canvas_id uuid not null,
  type text not null,
  content jsonb not null,
  rank text collate "C" not null,
  generation_session_id uuid,
  created_by uuid not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint bench_blocks_canvas_rank_unique unique (canvas_id, rank)
);
create index bench_blocks_generation_idx on bench_blocks (generation_session_id) where generation_session_id is not null;
`;

/** In-memory PGlite with a table shaped like `blocks` (same columns, unique rank, generation index; no foreign keys). */
export class FloorDb {
  private constructor(private readonly pg: PGlite) {}

  static async start(): Promise<FloorDb> {
    const pg = new PGlite();
    await pg.exec(DDL);
    return new FloorDb(pg);
  }

  /** One transaction, one parameterised multi-row insert of `blocks` rows, rows returned; milliseconds. */
  async insert(blocks: Array<{ type: string; content: unknown }>): Promise<number> {
    const canvasId = randomUUID();
    const generationId = randomUUID();
    const author = randomUUID();
    const params: unknown[] = [];
    const tuples = blocks.map((block, index) => {
      const base = params.length;
      params.push(canvasId, block.type, JSON.stringify(block.content), `r${String(index).padStart(4, '0')}`, generationId, author);
      return `($${base + 1}, $${base + 2}, $${base + 3}::jsonb, $${base + 4}, $${base + 5}, $${base + 6})`;
    });
    const sql = `insert into bench_blocks (canvas_id, type, content, rank, generation_session_id, created_by) values ${tuples.join(', ')} returning *`;
    const started = now();
    const rows = await this.pg.transaction(async (tx) => (await tx.query(sql, params)).rows);
    const elapsed = msBetween(started);
    if (rows.length !== blocks.length) throw new Error(`floor insert returned ${rows.length} rows`);
    return elapsed;
  }

  close(): Promise<void> {
    return this.pg.close();
  }
}

/**
 * Reads one streamed chat completion the least any consumer can: fetch, split the SSE frames,
 * accumulate each tool call's argument deltas, JSON.parse each call. Resolves with the number of
 * complete calls and the milliseconds from the request to the last byte read.
 */
export async function consumeModelStream(baseURL: string, model: string, prompt: string): Promise<{ calls: number; ms: number }> {
  const started = now();
  const response = await fetch(`${baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: prompt }] }),
  });
  if (!response.ok) throw new Error(`the model answered ${response.status}: ${await response.text()}`);
  const decoder = new TextDecoder();
  const args: string[] = [];
  let buffer = '';
  for await (const part of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(part, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const line = buffer.slice(6, end);
      buffer = buffer.slice(end + 2);
      if (line === '[DONE]') continue;
      const chunk = JSON.parse(line) as {
        choices: Array<{ delta?: { tool_calls?: Array<{ index: number; function?: { arguments?: string } }> } }>;
      };
      for (const call of chunk.choices[0]?.delta?.tool_calls ?? [])
        args[call.index] = (args[call.index] ?? '') + (call.function?.arguments ?? '');
    }
  }
  const calls = args.filter((text) => JSON.parse(text)).length;
  return { calls, ms: msBetween(started) };
}

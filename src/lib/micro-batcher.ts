/** Options of {@link MicroBatcher}. */
export interface MicroBatcherOptions {
  /** A batch is flushed as soon as it holds this many items. */
  maxSize: number;
  /** ...or this long after its first item arrived, whichever comes first. */
  maxDelayMs: number;
}

interface Waiter<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

/**
 * Collects items submitted close together and hands them to `run` as one batch, so callers that
 * each have one item (concurrent jobs, requests) share one round trip. `run` must return one
 * result per item, in the items' order; each caller gets its own result, and every caller of a
 * batch gets the error when `run` fails.
 */
export class MicroBatcher<I, O> {
  private pending: Waiter<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly options: MicroBatcherOptions,
  ) {
    if (!(options.maxSize >= 1)) throw new RangeError('maxSize must be at least 1');
    if (!(options.maxDelayMs >= 0)) throw new RangeError('maxDelayMs must not be negative');
  }

  /** Items waiting for the next flush. */
  get size(): number {
    return this.pending.length;
  }

  /** Adds one item to the current batch; resolves with its result once the batch has run. */
  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.options.maxSize) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.maxDelayMs);
    });
  }

  /** Runs the current batch now (a no-op when it is empty). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const done = this.execute(batch);
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  /** Flushes what is pending and waits until every batch has settled (for shutdown). */
  async drain(): Promise<void> {
    this.flush();
    await Promise.allSettled([...this.inFlight]);
  }

  private async execute(batch: Waiter<I, O>[]): Promise<void> {
    try {
      const results = await this.run(batch.map((waiter) => waiter.item));
      if (!Array.isArray(results) || results.length !== batch.length) {
        throw new Error(`Batch of ${batch.length} item(s) produced ${Array.isArray(results) ? results.length : 'no'} result(s)`);
      }
      batch.forEach((waiter, index) => waiter.resolve(results[index]));
    } catch (error) {
      for (const waiter of batch) waiter.reject(error);
    }
  }
}

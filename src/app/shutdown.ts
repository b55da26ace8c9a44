import type { Logger } from '../lib/logger';

/** Named stop steps, run first to last: each part of a start puts its own at the front. */
export type Closers = Array<[string, () => unknown]>;

/**
 * Runs closers in order (each one after the previous finished), within one overall deadline.
 * Order matters: stop taking work (readiness, HTTP), finish work (workers), then close what the
 * work used (sockets, queues, Redis, database).
 */
export async function closeAll(closers: Closers, timeoutMs: number, logger: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const [name, close] of closers) {
    const left = deadline - Date.now();
    if (left <= 0) {
      logger.warn({ step: name }, 'shutdown deadline passed; skipping');
      continue;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(close),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${left} ms`)), left))),
      ]);
    } catch (error) {
      logger.warn({ step: name, err: error }, 'shutdown step failed');
    } finally {
      clearTimeout(timer);
    }
  }
}

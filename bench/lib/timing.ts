/**
 * Clocks for the benchmark. `process.hrtime.bigint()` reads CLOCK_MONOTONIC, which Linux shares
 * between processes, so a timestamp taken in the client fleet process can be compared with one taken
 * here. Timestamps travel between processes as decimal strings of nanoseconds.
 */
export type Stamp = bigint;

export const now = (): Stamp => process.hrtime.bigint();

/** Milliseconds from `from` to `to` (or now), as a float. */
export const msBetween = (from: Stamp, to: Stamp = now()): number => Number(to - from) / 1e6;

export const toWire = (stamp: Stamp): string => stamp.toString();
export const fromWire = (wire: string): Stamp => BigInt(wire);

/** Rejects with `what` when `promise` takes longer than `ms`; the timer never keeps the process alive. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Lets a process settle (GC, lazy allocations) before reading its memory. This is a measurement
 * pause, not a wait for state: nothing in the benchmark waits on a fixed sleep for an event.
 */
export const settle = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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

/**
 * Stamps of one operation in flight, taken by wrapping the methods that do its steps: `wrap`
 * replaces `method` of `target` so that a call stamps `name` (its first call only) and `name:done`
 * once its result settles (a value that is not a promise settles at once). `reset` starts the next operation's stamps.
 */
export class MethodStamps {
  stamps: Record<string, Stamp> = {};

  wrap<T extends object>(target: T, method: keyof T & string, name: string): void {
    const original = target[method] as unknown as (...args: unknown[]) => unknown;
    const stamps = () => this.stamps;
    (target as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]) {
      stamps()[name] ??= now();
      const result = original.apply(this, args);
      void Promise.resolve(result).finally(() => (stamps()[`${name}:done`] ??= now()));
      return result;
    };
  }

  reset(): void {
    this.stamps = {};
  }
}

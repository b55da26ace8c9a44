import { Client } from 'pg';

/** Told the time of each statement a pool's clients run (seconds) and whether it failed; set once metrics exist. */
export interface QueryTiming {
  observe?: (seconds: number, failed: boolean) => void;
}

/**
 * A `pg` client class that times its statements for `timing`, for the pool's `Client` option (so
 * statements inside transactions count too). The promise form and the callback form (the pool's
 * own `query`) are timed; a submittable (a cursor or stream) is passed through untimed.
 */
export function timedClientClass(timing: QueryTiming): typeof Client {
  return class TimedClient extends Client {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- pg's query has a dozen overloads; this forwards every one unchanged
    override query(...args: unknown[]): any {
      const forward = (super.query as (...a: unknown[]) => unknown).bind(this);
      const observe = timing.observe;
      if (!observe) return forward(...args);
      const started = performance.now();
      const done = (failed: boolean) => observe((performance.now() - started) / 1000, failed);
      const last = args.at(-1);
      if (typeof last === 'function') {
        args[args.length - 1] = (error: unknown, result: unknown) => {
          done(Boolean(error));
          (last as (error: unknown, result: unknown) => void)(error, result);
        };
        return forward(...args);
      }
      const result = forward(...args);
      if (!(result instanceof Promise)) return result;
      return result.then(
        (value: unknown) => (done(false), value),
        (error: unknown) => {
          done(true);
          throw error;
        },
      );
    }
  };
}

import type { ClientFleet } from './client-fleet';

/** `full` (the figures), `quick` (fewer runs, for trying), `smoke` (every scenario at its smallest, for CI). */
export type BenchMode = 'full' | 'quick' | 'smoke';

/** What every scenario gets from the runner: the shared Redis, a scratch directory and the client fleet. */
export interface BenchContext {
  /** The benchmark's own redis-server (each scenario uses a key prefix of its own). */
  redisUrl: string;
  /** Scratch directory, removed at the end. */
  dataDir: string;
  fleet: ClientFleet;
  /** PostgreSQL server for the multi-process scenario: DATABASE_URL, else the local server. */
  postgresUrl: string;
  /** Progress lines (stderr), so stdout stays the report. */
  log(line: string): void;
  /** `--quick`: fewer runs, for trying the benchmark out; results are not comparable. */
  quick: boolean;
  /** `--smoke`: every scenario at its smallest, to prove it runs (CI); implies `quick`. */
  smoke: boolean;
  /** `--profile=<dir>`: in-process scenarios write a CPU profile of their measured runs there. */
  profileDir?: string;
}

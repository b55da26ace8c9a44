import type { BenchRedis } from './bench-redis';
import type { ClientFleet } from './client-fleet';

/** `full` (the figures), `quick` (fewer runs, for trying), `smoke` (every scenario at its smallest, for CI). */
export type BenchMode = 'full' | 'quick' | 'smoke';

/** What every scenario gets from the runner: the shared Redis, a scratch directory and the client fleet. */
export interface BenchContext {
  /**
   * The Redis of every benchmarked Switchboard and of the bench's readers of its keys: the
   * benchmark's own redis-server, or with `--redis-cluster` a local 3-master Redis Cluster (each
   * scenario uses a key prefix of its own).
   */
  redis: BenchRedis;
  /**
   * The benchmark's own single redis-server, on either topology: the Redis of the raw floors
   * (bare BullMQ, bare Socket.IO), which are single-Redis by definition. Never a Switchboard's.
   */
  floorRedisUrl: string;
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

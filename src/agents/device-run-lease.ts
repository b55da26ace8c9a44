import type { RedisClient } from '../lib/redis';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts } from '../lib/redis-scripts';

/**
 * One agent run at a time per device: the run holding a device's lease reads its files and takes
 * its suggestions; another run of that device waits its turn on its queue. The lease lives as
 * long as a run may (`AGENT_RUN_TIMEOUT_MS` and a minute), so a worker that died lets it go by
 * itself; a job run again after its worker died holds it again under the same run id.
 */
export class DeviceRunLease {
  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly ttlMs: number,
  ) {}

  private key = (userId: string, deviceId: string) => redisKeys(this.keyPrefix).agentDeviceLease(userId, deviceId);

  /** Whether the run holds the device now (it was free, or the run held it already). */
  take(userId: string, deviceId: string, runId: string): Promise<boolean> {
    return redisScripts(this.redis).leaseTake({ lease: this.key(userId, deviceId) }, { owner: runId, ttlMs: this.ttlMs });
  }

  /** Lets the device go, if the run holds it. */
  async release(userId: string, deviceId: string, runId: string): Promise<void> {
    await redisScripts(this.redis).leaseRelease({ lease: this.key(userId, deviceId) }, { owner: runId });
  }
}

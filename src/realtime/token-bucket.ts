/**
 * A per-socket token bucket: `capacity` events at once, refilled at `perSecond`. Kept in the
 * socket's own closure (a socket lives on one node), so a flood is refused before any work —
 * no Redis, no database, no adapter traffic.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt = performance.now();

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
  ) {
    this.tokens = capacity;
  }

  /** Takes one token; false when the bucket is empty (the event is refused). */
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

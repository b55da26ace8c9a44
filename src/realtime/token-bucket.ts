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

/**
 * A socket's token buckets, one per kind of event, each made on the kind's first event: an idle
 * socket (most of them) carries one small object.
 */
export class SocketRateLimits<Kind extends string> {
  private buckets?: Partial<Record<Kind, TokenBucket>>;

  constructor(private readonly limits: Readonly<Record<Kind, { readonly burst: number; readonly perSecond: number }>>) {}

  /** Takes one token of `kind`; false when its bucket is empty (the event is refused). */
  take(kind: Kind): boolean {
    const buckets: Partial<Record<Kind, TokenBucket>> = (this.buckets ??= {});
    const { burst, perSecond } = this.limits[kind];
    return (buckets[kind] ??= new TokenBucket(burst, perSecond)).take();
  }
}

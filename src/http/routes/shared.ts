import type { Redis } from 'ioredis';
import type { Config } from '../../../config';
import { UsageLimiter } from '../../lib/usage-limiter';
import { perContext } from '../route';

/** What the usage limiter needs: Redis and the limits. Part of the port of every route that takes a usage slot. */
export type UsagePorts = { redis: Redis; config: Pick<Config, 'redis' | 'usageLimits'> };

/** The per-user, per-minute usage limits, one limiter per API context for every route. */
export const usageLimiter = perContext(
  (ctx: UsagePorts) => new UsageLimiter(ctx.redis, ctx.config.redis.keyPrefix, ctx.config.usageLimits),
);

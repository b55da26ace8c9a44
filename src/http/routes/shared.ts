import { UsageLimiter } from '../../lib/usage-limiter';
import { perContext } from '../route';

/** The per-user, per-minute usage limits (SPEC §3), one limiter per API context for every route. */
export const usageLimiter = perContext((ctx) => new UsageLimiter(ctx.redis, ctx.config.redis.keyPrefix, ctx.config.usageLimits));

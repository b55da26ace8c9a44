import type { UsageLimiter } from '../../lib/usage-limiter';

/**
 * The per-user, per-minute usage limits: the process's one limiter (built with the API context and
 * shared with the device sockets, so every surface of the same work counts together). Part of the
 * port of every route that takes a usage slot.
 */
export type UsagePorts = { usage: Pick<UsageLimiter, 'take'> };

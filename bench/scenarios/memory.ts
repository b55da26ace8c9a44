import { registerUser } from '../../test/support/http';
import { spawnSwitchboard } from '../../test/support/processes';
import type { BenchContext } from '../lib/context';
import { benchEnv, rssBytes, uniquePrefix } from '../lib/harness';
import { median, round, slope } from '../lib/stats';
import { settle } from '../lib/timing';

export interface MemoryOptions {
  /** Cumulative socket counts at which RSS is read; the last is the headline. */
  steps: number[];
}

const SETTLE_MS = 1_500;

/**
 * RSS of an API-only process (its own OS process, in-memory PGlite) idle and with 1,000 connected
 * `/canvas` sockets, read from /proc/<pid>/status. A few sockets connect and leave first, so code
 * loaded on first use is not counted as per-socket memory.
 */
export async function memoryScenario(ctx: BenchContext, options: MemoryOptions) {
  const { fleet } = ctx;
  const keyPrefix = uniquePrefix('mem');
  const api = await spawnSwitchboard({ ...benchEnv({ redisUrl: ctx.redisUrl, keyPrefix, dataDir: ctx.dataDir }), DATABASE_URL: 'memory://', SWITCHBOARD_ROLES: 'api' }, 60_000);
  const pid = api.child.pid!;
  const groups: string[] = [];
  try {
    const user = await registerUser(`${api.url}/api/v1`, 'Memory');
    const url = `${api.url}/canvas`;
    await fleet.connect({ group: `${keyPrefix}-warm`, url, auth: { token: user.accessToken }, count: 20 });
    await fleet.close(`${keyPrefix}-warm`);
    await settle(SETTLE_MS);
    const sample = async () => {
      const values: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        values.push(rssBytes(pid));
        await settle(200);
      }
      return median(values);
    };
    const idle = await sample();
    const points: Array<[number, number]> = [[0, idle]];
    let connected = 0;
    for (const step of options.steps) {
      const group = `${keyPrefix}-${step}`;
      groups.push(group);
      await fleet.connect({ group, url, auth: { token: user.accessToken }, count: step - connected, concurrency: 50 });
      connected = step;
      await settle(SETTLE_MS);
      points.push([connected, await sample()]);
      ctx.log(`memory: ${connected} sockets, RSS ${(points.at(-1)![1] / 2 ** 20).toFixed(1)} MiB`);
    }
    const withSockets = points.at(-1)![1];
    return {
      config: { process: 'API only (SWITCHBOARD_ROLES=api), in-memory PGlite, websocket transport, sockets connected (authenticated) but not in a room', settleMs: SETTLE_MS },
      sockets: connected,
      idleRssBytes: idle,
      rssWithSocketsBytes: withSockets,
      bytesPerSocket: Math.round((withSockets - idle) / connected),
      slopeBytesPerSocket: Math.round(slope(points)),
      points: points.map(([sockets, rss]) => ({ sockets, rssMiB: round(rss / 2 ** 20) })),
    };
  } finally {
    for (const group of groups) await fleet.close(group).catch(() => undefined);
    await Promise.race([api.stop('SIGTERM'), new Promise((resolve) => setTimeout(resolve, 8_000).unref())]);
    await api.stop('SIGKILL');
  }
}

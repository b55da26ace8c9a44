import { createTestDatabase } from '../../test/support/database';
import { registerUser } from '../../test/support/http';
import { spawnSwitchboard } from '../../test/support/processes';
import type { BenchContext } from '../lib/context';
import { benchEnv, rssBytes, uniquePrefix } from '../lib/harness';
import { Inspector } from '../lib/inspector';
import { median, round, slope } from '../lib/stats';
import { settle } from '../lib/timing';

export interface MemoryOptions {
  /** Cumulative socket counts at which memory is read; the last is the headline. */
  steps: number[];
}

const SETTLE_MS = 1_000;

/**
 * RSS of an API-only process (its own OS process) idle and with 1,000 connected `/canvas` sockets,
 * read from /proc/<pid>/status VmRSS.
 *
 * - The process uses the PostgreSQL server, not PGlite: PGlite's WASM heap (≈800 MiB RSS in memory
 *   mode) grows and shrinks by hundreds of MiB on its own and would bury kilobytes per socket.
 * - Every reading is taken in the same state: a full GC forced through the inspector (the process
 *   runs with --inspect on loopback), then a short settle. Without that, the result swings with
 *   where the V8 heap happens to be in its grow/collect cycle (both readings are reported).
 * - A few sockets connect and leave first, so code loaded on first use is not counted per socket.
 */
export async function memoryScenario(ctx: BenchContext, options: MemoryOptions) {
  const { fleet } = ctx;
  const keyPrefix = uniquePrefix('mem');
  const database = await createTestDatabase({ server: ctx.postgresUrl });
  const groups: string[] = [];
  const env = {
    ...benchEnv({ redis: ctx.redis, keyPrefix, dataDir: ctx.dataDir }),
    DATABASE_URL: database.url,
    SWITCHBOARD_ROLES: 'api',
    NODE_OPTIONS: '--inspect=127.0.0.1:0',
  };
  const api = await spawnSwitchboard(env, 60_000).catch(async (error: unknown) => {
    await database.drop();
    throw error;
  });
  const pid = api.child.pid!;
  let inspector: Inspector | undefined;
  try {
    const inspectorUrl = Inspector.urlIn(api.output());
    if (!inspectorUrl) throw new Error('the API process printed no inspector URL');
    inspector = await Inspector.connect(inspectorUrl);
    const user = await registerUser(`${api.url}/api/v1`, 'Memory');
    const url = `${api.url}/canvas`;
    await fleet.connect({ group: `${keyPrefix}-warm`, url, auth: { token: user.accessToken }, count: 20 });
    await fleet.close(`${keyPrefix}-warm`);

    const read = async () => {
      const rawRss = rssBytes(pid);
      const heap = await inspector!.heapUsedAfterGc();
      await settle(SETTLE_MS);
      const values: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        values.push(rssBytes(pid));
        await settle(100);
      }
      return { rss: median(values), heap, rawRss };
    };
    await settle(SETTLE_MS);
    const idle = await read();
    const readings = [{ sockets: 0, ...idle }];
    let connected = 0;
    for (const step of options.steps) {
      const group = `${keyPrefix}-${step}`;
      groups.push(group);
      await fleet.connect({ group, url, auth: { token: user.accessToken }, count: step - connected, concurrency: 50 });
      connected = step;
      await settle(SETTLE_MS);
      readings.push({ sockets: connected, ...(await read()) });
      ctx.log(`memory: ${connected} sockets, RSS ${(readings.at(-1)!.rss / 2 ** 20).toFixed(1)} MiB after GC`);
    }
    const last = readings.at(-1)!;
    return {
      config: {
        process:
          'API only (SWITCHBOARD_ROLES=api) on the PostgreSQL server, --inspect on loopback; websocket transport; sockets authenticated, not in a room',
        reading: 'full GC through the inspector, 1 s settle, median of 3 VmRSS reads',
      },
      sockets: connected,
      idleRssBytes: idle.rss,
      rssWithSocketsBytes: last.rss,
      bytesPerSocket: Math.round((last.rss - idle.rss) / connected),
      slopeBytesPerSocket: Math.round(slope(readings.map((r) => [r.sockets, r.rss] as const))),
      heapBytesPerSocket: Math.round((last.heap - idle.heap) / connected),
      readings: readings.map((r) => ({
        sockets: r.sockets,
        rssMiB: round(r.rss / 2 ** 20),
        heapUsedMiB: round(r.heap / 2 ** 20),
        rssBeforeGcMiB: round(r.rawRss / 2 ** 20),
      })),
    };
  } finally {
    inspector?.close();
    for (const group of groups) await fleet.close(group).catch(() => undefined);
    await Promise.race([api.stop('SIGTERM'), new Promise((resolve) => setTimeout(resolve, 8_000).unref())]);
    await api.stop('SIGKILL');
    await database.drop();
  }
}

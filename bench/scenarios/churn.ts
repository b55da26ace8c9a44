import { monitorEventLoopDelay } from 'node:perf_hooks';
import { connectCanvas, type CanvasConnection } from '@switchboard/client';
import { CANVAS_ROOM_EVENTS } from '../../src/schemas/socket-events';
import { createTestDatabase, type TestDatabase } from '../../test/support/database';
import { createCanvas, registerUser, request } from '../../test/support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../../test/support/processes';
import type { BenchContext } from '../lib/context';
import { benchEnv, ownCpuMs, startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { startBulkModel } from '../lib/models';
import { generateStream } from '../lib/sse-client';
import { percentile, round } from '../lib/stats';
import { msBetween, now, settle, type Stamp } from '../lib/timing';

export interface ChurnOptions {
  clients: number;
  seconds: number;
  /** Share of the connected clients whose transport is cut each second (the issue: 1/15). */
  cutsPerClientPerSecond: number;
  /** How long a cut client stays away before reconnecting (Socket.IO reconnection delay). */
  offlineMs: number;
  blocksPerGeneration: number;
  /**
   * API processes the clients are spread over, round robin (default 1), each serving sockets only,
   * on the PostgreSQL database and the Redis of this process's Switchboard (which runs the worker
   * and takes the writes). This process is the load generator: an API node sharing its event loop
   * with hundreds of benchmark clients is not what a deployment runs, and it answered WebSocket
   * upgrades seconds late under this load.
   */
  apiNodes?: number;
}

interface Client {
  connection: CanvasConnection;
  /** Seqs handed to the application by the SDK (each exactly once, in order). */
  handed: number[];
  /** Seqs Socket.IO delivered, live or replayed by its recovery, before any catch-up of ours. */
  delivered: Set<number>;
  lastAttempt?: Stamp;
  /** Reconnects waiting to be caught up: [reconnect attempt, seq to reach]. */
  waiting: Array<[Stamp, number]>;
  syncCalls: number;
  /** Ids of the blocks the application holds: its last load, plus the blocks handed since, less those deleted. */
  held: Set<string>;
  /** Blocks handed to the application (in an event adding blocks) that it already held. */
  repeatedBlocks: number;
  /** Full reloads (`resync`, `blocks_reranked`) the SDK asked the application for. */
  reloads: number;
}

/** How many clients connect at once while the scenario sets up. */
const CONNECT_BATCH = 20;

/** Every block of the canvas over HTTP, page by page (what an application loads after a join or a resync). */
async function listAllBlocks(api: string, token: string, canvasId: string): Promise<Array<{ id: string }>> {
  const all: Array<{ id: string }> = [];
  let cursor: string | null = null;
  do {
    const res = await request('GET', `${api}/canvases/${canvasId}/blocks${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`, {
      token,
    });
    if (res.status !== 200) throw new Error(`churn: listing the blocks answered ${res.status}`);
    all.push(...(res.body.blocks as Array<{ id: string }>));
    cursor = res.body.nextCursor as string | null;
  } while (cursor);
  return all;
}

/** The ids an event adds to, and removes from, what the application holds. */
function blockChanges(event: string, payload: Record<string, any>): { added: string[]; removed: string[] } {
  if (event === 'block_added') return { added: [payload.block.id], removed: [] };
  if (event === 'blocks_bulk_added_chunk' || event === 'generation_redone')
    return { added: (payload.blocks as Array<{ id: string }>).map((b) => b.id), removed: [] };
  if (event === 'block_deleted') return { added: [], removed: [payload.blockId] };
  if (event === 'generation_undone') return { added: [], removed: payload.blockIds };
  return { added: [], removed: [] };
}

/**
 * Connection churn, measured: `clients` SDK clients on one canvas, a random 1/15 of them losing
 * their transport each second for `seconds` (away `offlineMs`, then reconnecting: Socket.IO's
 * recovery applies), while generations of 14 blocks and hand edits flow. Reports delivery by
 * Socket.IO alone (live + recovery) against delivery to the application by the SDK (seq +
 * `canvas:sync`), clients with a gap, replay time from the reconnect attempt to caught up, and
 * the CPU cost of the catch-up calls (measured alone afterwards, server and client in this process).
 */
export async function churnScenario(ctx: BenchContext, options: ChurnOptions) {
  const model = await startBulkModel(options.blocksPerGeneration);
  const keyPrefix = uniquePrefix('churn');
  const apiNodes = options.apiNodes ?? 1;
  // Several processes share one database: the PostgreSQL server instead of in-memory PGlite.
  const database: TestDatabase = await createTestDatabase({ server: ctx.postgresUrl });
  const app = await startInProcessSwitchboard({
    redis: ctx.redis,
    keyPrefix,
    dataDir: ctx.dataDir,
    endpoint: model.endpoint,
    env: { BROADCAST_CHUNK_DELAY_MS: '50', DATABASE_URL: database.url },
  });
  const clients: Client[] = [];
  /** Per API node, every reconnect: attempt → transport open (TCP and the WebSocket upgrade), and attempt → connected (authentication and Socket.IO's recovery too). */
  const transportOpen: number[][] = Array.from({ length: apiNodes }, () => []);
  const handshakes: number[][] = Array.from({ length: apiNodes }, () => []);
  const connectErrors = new Map<string, number>();
  let presenceEvents = 0;
  /** This process's event loop delay: the clients' side of every figure. */
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const extra: CanvasConnection[] = [];
  const others: SwitchboardProcess[] = [];
  try {
    ctx.log(`churn: starting ${apiNodes} API node(s)`);
    const env = {
      ...benchEnv({ redis: ctx.redis, keyPrefix, dataDir: ctx.dataDir }),
      DATABASE_URL: database.url,
      SWITCHBOARD_ROLES: 'api',
    };
    const spawned = await Promise.allSettled(Array.from({ length: apiNodes }, () => spawnSwitchboard(env, 60_000)));
    for (const result of spawned) if (result.status === 'fulfilled') others.push(result.value);
    for (const result of spawned) if (result.status === 'rejected') throw result.reason;
    const nodeUrls = others.map((other) => other.url!);
    const owner = await registerUser(app.api, 'Churn');
    const canvasId = await createCanvas(app.api, owner, 'Churn canvas');
    // The observer is never cut: its last seq is the canvas's (what a reconnecting client must reach).
    const observer = await connectCanvas({ url: app.url, token: owner.accessToken });
    extra.push(observer);
    let canvasSeq = 0;
    observer.onEvent(({ payload }) => (canvasSeq = Math.max(canvasSeq, payload.seq)));
    await observer.join(canvasId);

    ctx.log(`churn: connecting ${options.clients} clients`);
    const replay: number[] = [];
    // Clients connect, join and load a batch at a time (as a page's visitors arrive), not one by one.
    const connectOne = async (i: number) => {
      const connection = await connectCanvas({
        url: nodeUrls[i % nodeUrls.length],
        token: owner.accessToken,
        socketOptions: { reconnectionDelay: options.offlineMs, reconnectionDelayMax: options.offlineMs, randomizationFactor: 0.5 },
      });
      const client: Client = {
        connection,
        handed: [],
        delivered: new Set(),
        waiting: [],
        syncCalls: 0,
        held: new Set(),
        repeatedBlocks: 0,
        reloads: 0,
      };
      // The application loads the canvas after the join and again on every resync, and gives the
      // SDK what it read, so that blocks already loaded are not handed to it again.
      const load = async () => {
        const blocks = await listAllBlocks(app.api, owner.accessToken, canvasId);
        client.held = new Set(blocks.map((b) => b.id));
        return blocks;
      };
      connection.onResync(() => {
        client.reloads += 1;
        return load();
      });
      connection.onEvent(({ event, payload }) => {
        client.handed.push(payload.seq);
        const { added, removed } = blockChanges(event, payload as Record<string, any>);
        for (const id of added) {
          if (client.held.has(id)) client.repeatedBlocks += 1;
          else client.held.add(id);
        }
        for (const id of removed) client.held.delete(id);
        while (client.waiting.length > 0 && payload.seq >= client.waiting[0][1]) replay.push(msBetween(client.waiting.shift()![0]));
      });
      for (const name of CANVAS_ROOM_EVENTS) connection.on(name as 'block_added', (payload) => client.delivered.add(payload.seq));
      connection.io.on('reconnect_attempt', () => (client.lastAttempt = now()));
      const node = i % nodeUrls.length;
      connection.io.on('open', () => client.lastAttempt && transportOpen[node].push(msBetween(client.lastAttempt)));
      connection.on('presence', () => (presenceEvents += 1));
      connection.on('connect_error', (error: Error) => {
        connectErrors.set(error.message, (connectErrors.get(error.message) ?? 0) + 1);
      });
      connection.on('connect', () => {
        if (client.lastAttempt) handshakes[node].push(msBetween(client.lastAttempt));
        if (client.lastAttempt && canvasSeq > (connection.lastSeq(canvasId) ?? 0)) client.waiting.push([client.lastAttempt, canvasSeq]);
      });
      connection.onAnyOutgoing((event) => event === 'canvas:sync' && (client.syncCalls += 1));
      await connection.join(canvasId, 10_000, load);
      clients.push(client);
    };
    for (let first = 0; first < options.clients; first += CONNECT_BATCH) {
      const batch = Array.from({ length: Math.min(CONNECT_BATCH, options.clients - first) }, (_, k) => connectOne(first + k));
      await Promise.all(batch);
    }
    const firstSeq = canvasSeq;

    let running = true;
    let cuts = 0;
    let recovered = 0;
    for (const client of clients) client.connection.on('connect', () => client.connection.recovered && (recovered += 1));
    const chaos = (async () => {
      const perTick = (options.clients * options.cutsPerClientPerSecond) / 10;
      let owed = 0;
      while (running) {
        owed += perTick;
        for (; owed >= 1; owed -= 1) {
          const connected = clients.filter((c) => c.connection.connected);
          const victim = connected[Math.floor(Math.random() * connected.length)];
          if (!victim) break;
          victim.connection.io.engine.close();
          cuts += 1;
        }
        await settle(100);
      }
    })();
    let generations = 0;
    let edits = 0;
    const generate = (async () => {
      while (running) {
        await generateStream(
          app.api,
          owner.accessToken,
          canvasId,
          `Write ${options.blocksPerGeneration} paragraphs [run:churn-${generations}]`,
          { timeoutMs: 60_000 },
        );
        generations += 1;
        // A steady flow of room events, not the most generations the node can run: unpaced, a fast
        // node fills the canvas to its block cap (10,000) within a full run's minute.
        await settle(200);
      }
    })();
    const handEdits = (async () => {
      const made: string[] = [];
      while (running) {
        const res = await request('POST', `${app.api}/canvases/${canvasId}/blocks`, {
          token: owner.accessToken,
          body: { type: 'text', content: { text: `hand ${edits}` } },
        });
        if (res.status !== 201)
          throw new Error(
            `churn: hand edit ${edits} (after ${generations} generations) answered ${res.status}: ${JSON.stringify(res.body)}`,
          );
        made.push(res.body.block.id);
        edits += 1;
        if (edits % 4 === 0)
          await request('DELETE', `${app.api}/canvases/${canvasId}/blocks/${made.shift()}`, { token: owner.accessToken });
        if (edits % 5 === 0)
          await request('PATCH', `${app.api}/canvases/${canvasId}/blocks/${made[0]}`, {
            token: owner.accessToken,
            body: { content: { text: `edited ${edits}` } },
          });
        await settle(100);
      }
    })();

    const cpuStart = ownCpuMs();
    const started = now();
    await settle(options.seconds * 1000);
    running = false;
    await Promise.all([chaos, generate, handEdits]);
    const runCpuMs = ownCpuMs() - cpuStart;
    const runSeconds = msBetween(started) / 1000;

    // Let the last broadcast and every reconnect finish, then every client catch up.
    ctx.log('churn: traffic stopped; waiting for every client to be back and caught up');
    const deadline = Date.now() + 60_000;
    let stableSince = Date.now();
    let lastSeen = canvasSeq;
    while (Date.now() < deadline) {
      if (canvasSeq !== lastSeen) [lastSeen, stableSince] = [canvasSeq, Date.now()];
      const caughtUp = clients.every((c) => c.connection.connected && (c.connection.lastSeq(canvasId) ?? 0) >= canvasSeq);
      if (caughtUp && Date.now() - stableSince > 2_000) break;
      await settle(100);
    }
    const total = canvasSeq - firstSeq;
    const want = Array.from({ length: total }, (_, i) => firstSeq + 1 + i);
    let handedOk = 0;
    let deliveredOk = 0;
    let duplicates = 0;
    let clientsWithGapRaw = 0;
    let clientsWithGap = 0;
    for (const client of clients) {
      const handed = new Set(client.handed.filter((seq) => seq > firstSeq));
      duplicates += client.handed.length - new Set(client.handed).size;
      const handedHere = want.filter((seq) => handed.has(seq)).length;
      const deliveredHere = want.filter((seq) => client.delivered.has(seq)).length;
      handedOk += handedHere;
      deliveredOk += deliveredHere;
      if (handedHere < want.length) clientsWithGap += 1;
      if (deliveredHere < want.length) clientsWithGapRaw += 1;
    }
    const syncCalls = clients.reduce((sum, c) => sum + c.syncCalls, 0);

    // The CPU of catch-up alone: the same number of canvas:sync calls, each asking for the median
    // number of events a reconnect missed, server and client in this process.
    const missedPerReconnect = Math.max(1, Math.round((options.offlineMs / 1000) * (total / runSeconds)));
    const probe = clients[0].connection;
    const probeCalls = Math.min(syncCalls, 2_000);
    const from = Math.max(0, canvasSeq - missedPerReconnect);
    const cpu0 = ownCpuMs();
    for (let i = 0; i < probeCalls; i += 1) await probe.timeout(10_000).emitWithAck('canvas:sync', { canvasId, afterSeq: from });
    const cpuPerSyncMs = probeCalls > 0 ? (ownCpuMs() - cpu0) / probeCalls : 0;
    const catchUpCpuMs = cpuPerSyncMs * syncCalls;

    return {
      config: { ...options, apiNodes },
      roomEvents: total,
      generations,
      handEdits: edits,
      cuts,
      reconnectsRecovered: recovered,
      deliveryPct: {
        // What Socket.IO alone (live + connection state recovery) delivered, seq by seq.
        socketIoAlone: round((100 * deliveredOk) / (total * clients.length), 3),
        // What the SDK handed to the application (seq + canvas:sync).
        sdk: round((100 * handedOk) / (total * clients.length), 3),
      },
      clientsWithGap: { socketIoAlone: clientsWithGapRaw, sdk: clientsWithGap },
      duplicatesHanded: duplicates,
      // Blocks handed again to an application that already held them (its load or reload listed them).
      repeatedBlocksHanded: clients.reduce((sum, c) => sum + c.repeatedBlocks, 0),
      fullReloads: clients.reduce((sum, c) => sum + c.reloads, 0),
      // Where a reconnect's time goes, node by node: [p50, p99] in ms.
      reconnect: {
        transportOpenMs: transportOpen.map((times) => [round(percentile(times, 50)), round(percentile(times, 99))]),
        connectedMs: handshakes.map((times) => [round(percentile(times, 50)), round(percentile(times, 99))]),
        connectErrors: Object.fromEntries(connectErrors),
        // `presence` events the clients received (not room events: the users in the canvas).
        presenceEvents,
        clientsLoopDelayMs: {
          p50: round(loopDelay.percentile(50) / 1e6),
          p99: round(loopDelay.percentile(99) / 1e6),
          max: round(loopDelay.max / 1e6),
        },
      },
      replayFromReconnectAttemptMs: {
        samples: replay.length,
        p50: round(percentile(replay, 50)),
        p99: round(percentile(replay, 99)),
        max: round(Math.max(0, ...replay)),
      },
      catchUp: {
        syncCalls,
        missedEventsPerCallForCpu: missedPerReconnect,
        cpuMsPerSync: round(cpuPerSyncMs, 3),
        cpuMsTotal: round(catchUpCpuMs),
        shareOfRunCpu: round(catchUpCpuMs / runCpuMs, 4),
        runCpuMs: round(runCpuMs),
      },
    };
  } finally {
    clients.forEach((client) => client.connection.close());
    extra.forEach((connection) => connection.close());
    await Promise.all(others.map((other) => other.stop('SIGKILL')));
    await app.stop();
    await model.close();
    loopDelay.disable();
    await database.drop();
  }
}

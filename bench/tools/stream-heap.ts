/**
 * What one idle SSE generation stream holds on an API node (the ≤ 20 KB per stream target): an API
 * role in this process (PostgreSQL, as `manyStreams`), N streams from the SSE client fleet (a
 * process of its own) following queued generations, a V8 heap snapshot before and after, and the
 * difference aggregated by constructor / kind: count and bytes per stream. Also RSS and
 * `process.memoryUsage()` deltas per stream, so the part outside the JS heap shows.
 *
 * With `--sockets`, the same for idle authenticated `/canvas` Socket.IO connections from the
 * socket client fleet (the `memory` scenario's ≤ 20 KB per socket target).
 *
 *   node --expose-gc -r ./bench/register.cjs bench/tools/stream-heap.ts [--streams=2000] [--sockets] [--top=30] [--retainers] [--keep=<dir>]
 */
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../../config';
import { startEmbeddedRedis } from '../../src/app/embedded-redis';
import { startSwitchboard } from '../../src/app/switchboard';
import { GenerationEventLog } from '../../src/generation/event-log';
import { createLogger } from '../../src/lib/logger';
import { baseJobOptions } from '../../src/producers/define';
import { bullPrefix } from '../../src/producers/registry';
import { createTestDatabase, serverPostgresUrl } from '../../test/support/database';
import { createCanvas, registerUser } from '../../test/support/http';
import { benchEnv, uniquePrefix } from '../lib/harness';
import { ClientFleet } from '../lib/client-fleet';
import { SseFleet } from '../lib/sse-fleet';
import { settle } from '../lib/timing';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const STREAMS = Number(arg('streams') ?? 2000);
const TOP = Number(arg('top') ?? 30);
const SOCKETS = process.argv.includes('--sockets');
const UNIT = SOCKETS ? 'socket' : 'stream';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/**
 * Nodes of `after` that `before` did not have (heap object ids are stable within one process),
 * each named with what retains it: `kind:name <-edge- kind:name`, bytes and count per stream.
 */
function retained(beforeFile: string, afterFile: string): Map<string, { count: number; bytes: number }> {
  const before = JSON.parse(readFileSync(beforeFile, 'utf8')) as Snapshot;
  const data = JSON.parse(readFileSync(afterFile, 'utf8')) as Snapshot;
  const {
    node_fields: nf,
    node_types: [ntypes],
    edge_fields: ef,
    edge_types: [etypes],
  } = data.snapshot.meta;
  const nw = nf.length;
  const ew = ef.length;
  const [nType, nName, nId, nSize, nEdges] = ['type', 'name', 'id', 'self_size', 'edge_count'].map((f) => nf.indexOf(f));
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => ef.indexOf(f));
  const old = new Set<number>();
  for (let i = 0; i < before.nodes.length; i += nw) old.add(before.nodes[i + nId]);
  const label = (i: number) => {
    const type = ntypes[data.nodes[i + nType]];
    const name = data.strings[data.nodes[i + nName]] ?? '';
    return type === 'string' || type === 'number' || type === 'concatenated string' || type === 'sliced string'
      ? type
      : `${type}:${name.slice(0, 50)}`;
  };
  // First strong retainer of each node.
  const retainer = new Map<number, string>();
  let edge = 0;
  for (let i = 0; i < data.nodes.length; i += nw) {
    for (let e = 0; e < data.nodes[i + nEdges]; e += 1, edge += ew) {
      const type = etypes[data.edges[edge + eType]];
      if (type === 'weak' || type === 'shortcut') continue;
      const to = data.edges[edge + eTo];
      if (retainer.has(to)) continue;
      const name = type === 'element' || type === 'hidden' ? `[${type}]` : data.strings[data.edges[edge + eName]];
      retainer.set(to, `${label(i)} .${String(name).slice(0, 30)}`);
    }
  }
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < data.nodes.length; i += nw) {
    if (old.has(data.nodes[i + nId])) continue;
    const key = `${label(i)}  <-  ${retainer.get(i) ?? '(root)'}`;
    const entry = out.get(key) ?? { count: 0, bytes: 0 };
    entry.count += 1;
    entry.bytes += data.nodes[i + nSize];
    out.set(key, entry);
  }
  return out;
}

/** Self size and count per `kind:name` of every node in a heap snapshot file. */
function aggregate(file: string): Map<string, { count: number; bytes: number }> {
  const data = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = data.snapshot.meta.node_fields;
  const types = data.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field));
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < data.nodes.length; i += width) {
    const type = types[data.nodes[i + typeAt]];
    let name = type === 'object' || type === 'closure' || type === 'native' ? data.strings[data.nodes[i + nameAt]] : '';
    if (type === 'closure') name = name || '(anonymous)';
    const key = `${type}${name ? `:${name.slice(0, 60)}` : ''}`;
    const entry = out.get(key) ?? { count: 0, bytes: 0 };
    entry.count += 1;
    entry.bytes += data.nodes[i + sizeAt];
    out.set(key, entry);
  }
  return out;
}

function gc() {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('run with node --expose-gc');
  collect();
  collect();
}

function rss(): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
}

async function main() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-heap-'));
  const redisServer = await startEmbeddedRedis(dataDir);
  const keyPrefix = uniquePrefix('heap');
  const database = await createTestDatabase({ server: serverPostgresUrl() });
  const env = {
    ...benchEnv({ redis: redisServer.url, keyPrefix, dataDir }),
    DATABASE_URL: database.url,
    MAX_STREAMS_PER_USER: '1000000',
    SWITCHBOARD_ROLES: 'api',
  };
  const app = await startSwitchboard(loadConfig(env), { logger: createLogger({ level: 'silent' }) });
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  const queue = new Queue('generation', {
    connection: { host: '127.0.0.1', port: Number(new URL(redisServer.url).port), maxRetriesPerRequest: null },
    prefix: bullPrefix(keyPrefix),
  });
  const fleet = await SseFleet.start();
  const sockets = SOCKETS ? await ClientFleet.start() : undefined;
  try {
    const api = `${app.url}/api/v1`;
    const owner = await registerUser(api, 'Heap');
    const canvasId = await createCanvas(api, owner, 'Heap canvas');
    const events = new GenerationEventLog(redis, keyPrefix, 3600);
    const generations = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const id = randomUUID();
        await app.repos.generations.create({ id, canvasId, userId: owner.id, prompt: 'idle', afterId: null });
        await events.append(id, 1, { type: 'status', generationId: id, stage: 'queued' });
        await queue.add(
          'generate',
          { generationId: id, canvasId, userId: owner.id, tier: 'free' },
          { ...baseJobOptions, jobId: id, delay: 3_600_000 },
        );
        return id;
      }),
    );
    // Flat copies, made before the first snapshot: a template literal is a concatenated string,
    // and its flat form, made when the fleet is handed it, would count as ~150 B per stream.
    const urls = JSON.parse(
      JSON.stringify(
        Array.from(
          { length: STREAMS },
          (_, i) => `${api}/canvases/${canvasId}/ai/generations/${generations[i % generations.length]}/events`,
        ),
      ),
    ) as string[];
    // A first batch warms every code path (so compiled code and caches are in both snapshots).
    const open = async (group: string, count: number) => {
      if (!sockets) return fleet.open(group, count === STREAMS ? urls : urls.slice(0, count), owner.accessToken);
      const auth = { token: owner.accessToken };
      await sockets.connect({ group, url: `${app.url}/canvas`, auth, count, concurrency: 50 });
      return { failed: 0, firstError: undefined };
    };
    await open('warm', 50);
    await settle(1000);
    gc();
    await settle(500);
    gc();
    const before = { rss: rss(), memory: process.memoryUsage(), file: v8.writeHeapSnapshot(path.join(dataDir, 'before.heapsnapshot')) };
    const opened = await open('idle', STREAMS);
    if (opened.failed) throw new Error(`${opened.failed} streams failed: ${opened.firstError}`);
    await settle(1000);
    gc();
    await settle(500);
    gc();
    const after = { rss: rss(), memory: process.memoryUsage(), file: v8.writeHeapSnapshot(path.join(dataDir, 'after.heapsnapshot')) };
    const keep = arg('keep');
    if (keep) for (const file of [before.file, after.file]) copyFileSync(file, path.join(keep, path.basename(file)));
    const [a, b] = [aggregate(before.file), aggregate(after.file)];
    const rows = [...b]
      .map(([key, value]) => ({
        key,
        count: (value.count - (a.get(key)?.count ?? 0)) / STREAMS,
        bytes: (value.bytes - (a.get(key)?.bytes ?? 0)) / STREAMS,
      }))
      .sort((x, y) => y.bytes - x.bytes);
    const heapTotal = rows.reduce((sum, row) => sum + row.bytes, 0);
    const per = (x: number, y: number) => Math.round((y - x) / STREAMS);
    console.log(
      `${STREAMS} idle ${SOCKETS ? 'sockets' : 'streams'}; load average ${os
        .loadavg()
        .map((v) => v.toFixed(1))
        .join(' ')}`,
    );
    console.log(
      `per ${UNIT}: RSS ${per(before.rss, after.rss)} B; heapUsed ${per(before.memory.heapUsed, after.memory.heapUsed)} B; external ${per(before.memory.external, after.memory.external)} B; arrayBuffers ${per(before.memory.arrayBuffers, after.memory.arrayBuffers)} B; snapshot self sizes ${Math.round(heapTotal)} B`,
    );
    console.log(`bytes/${UNIT}  objects/${UNIT}  kind:constructor`);
    for (const row of rows.slice(0, TOP))
      console.log(`${row.bytes.toFixed(0).padStart(8)}  ${row.count.toFixed(2).padStart(8)}  ${row.key}`);
    if (process.argv.includes('--retainers')) {
      const byRetainer = [...retained(before.file, after.file)]
        .map(([key, v]) => ({ key, bytes: v.bytes / STREAMS, count: v.count / STREAMS }))
        .sort((x, y) => y.bytes - x.bytes);
      console.log(`\nnew objects by what retains them (bytes/${UNIT}  objects/${UNIT}):`);
      for (const row of byRetainer.slice(0, TOP * 2))
        console.log(`${row.bytes.toFixed(0).padStart(8)}  ${row.count.toFixed(2).padStart(8)}  ${row.key}`);
    }
  } finally {
    await fleet.stop();
    await sockets?.stop();
    await queue.close();
    redis.disconnect();
    await app.stop();
    await database.drop();
    await redisServer.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

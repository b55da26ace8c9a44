import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Local redis-servers a test started: their addresses, and `stop` (kills them, removes their files). */
export interface LocalRedisServers {
  ports: number[];
  stop(): Promise<void>;
}

/** A real Redis Cluster of local masters (no replicas). */
export interface LocalRedisCluster extends LocalRedisServers {
  /** `REDIS_CLUSTER_NODES` for it: `127.0.0.1:P1,127.0.0.1:P2,…`. */
  nodes: string;
}

/** Three separate local redis-servers, one per concern. */
export interface LocalRedisSplit extends LocalRedisServers {
  /** `REDIS_URL_QUEUES`, `REDIS_URL_REALTIME`, `REDIS_URL_CACHE` for them. */
  env: { REDIS_URL_QUEUES: string; REDIS_URL_REALTIME: string; REDIS_URL_CACHE: string };
}

/**
 * Starts `masters` redis-servers in cluster mode on free ports (in a temp dir, nothing saved),
 * joins them with `redis-cli --cluster create` and resolves once every node says `cluster_state:ok`.
 */
export async function startRedisCluster(masters = 3): Promise<LocalRedisCluster> {
  const servers = await startServers(masters, ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000'], true);
  try {
    const addresses = servers.ports.map((port) => `127.0.0.1:${port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    const deadline = Date.now() + 30_000;
    for (const port of servers.ports) {
      for (;;) {
        const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info']);
        if (stdout.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`redis cluster node ${port} never reached cluster_state:ok:\n${stdout}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return { ...servers, nodes: addresses.join(',') };
  } catch (error) {
    await servers.stop();
    throw error;
  }
}

/** Starts three plain redis-servers on free ports: queues, realtime and cache each on its own. */
export async function startRedisSplit(): Promise<LocalRedisSplit> {
  const servers = await startServers(3, []);
  const [queues, realtime, cache] = servers.ports.map((port) => `redis://127.0.0.1:${port}`);
  return { ...servers, env: { REDIS_URL_QUEUES: queues, REDIS_URL_REALTIME: realtime, REDIS_URL_CACHE: cache } };
}

async function startServers(count: number, extra: string[], clusterBus = false): Promise<LocalRedisServers> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-redis-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < count; i += 1) {
      const port = clusterBus ? await freeClusterPort() : await freePort();
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--save',
          '',
          '--appendonly',
          'no',
          ...extra,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.push(child);
      ports.push(port);
      await listening(child, port);
    }
    return { ports, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Resolves once the server answers PING; rejects when it exits first. */
async function listening(child: ChildProcess, port: number): Promise<void> {
  let output = '';
  child.stdout?.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited:\n${output}`);
    const answered = await run('redis-cli', ['-p', String(port), 'ping']).then(
      ({ stdout }) => stdout.trim() === 'PONG',
      () => false,
    );
    if (answered) return;
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer in 10 s:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A port nothing listens on right now (the OS's pick, or `port` when given and free). */
function freePort(port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A free port whose cluster bus port (port + 10000) is free too and still a port: picked below the
 * OS's ephemeral range, where nothing else picks.
 */
async function freeClusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const free = await Promise.all([freePort(port), freePort(port + 10_000)]).then(
      () => true,
      () => false,
    );
    if (free) return port;
  }
  throw new Error('no free port pair for a redis cluster node');
}

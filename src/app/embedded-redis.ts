import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { processAlive, waitForReadyLine } from '../lib/processes';

/** A redis-server child process owned by this process. */
export interface EmbeddedRedis {
  /** Its loopback TCP address, for people and tools (`redis-cli -u`). */
  url: string;
  /**
   * Its Unix socket (`DATA_DIR/redis/redis.sock`, only this user may connect), which this process
   * connects through: a command costs both sides about a third less CPU than over loopback TCP.
   * Absent when the path is too long for a socket's address; the process then uses `url`.
   */
  socket?: string;
  /** The pidfile redis-server writes under DATA_DIR (tests read the server's pid from it). */
  pidFile: string;
  stop(): Promise<void>;
}

export class RedisUnavailableError extends Error {
  constructor() {
    super(
      'No Redis: REDIS_URL is not set and no `redis-server` was found on PATH.\n' +
        '  Install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`, macOS: `brew install redis`)\n' +
        '  or point Switchboard at a server: `REDIS_URL=redis://host:6379 npm start`.',
    );
    this.name = 'RedisUnavailableError';
  }
}

/**
 * Whether `binary` names an executable file (a path, or a name looked up on PATH). Looked up rather
 * than run (`redis-server --version`): a synchronous child process held every start-up for ~0.1 s.
 */
function isExecutable(binary: string): boolean {
  const candidates = binary.includes('/')
    ? [binary]
    : (process.env.PATH ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, binary));
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

/** Finds a free TCP port on the loopback interface. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A watchdog between us and redis-server: it holds our end of a pipe on stdin and, when that pipe
 * closes (we stopped, or died of kill -9), stops redis-server with SIGTERM, so AOF is flushed and
 * no orphan keeps listening. It exits with redis-server's own exit, so a dead server is noticed.
 */
const WATCHDOG = `exec 3<&0
"$0" "$@" </dev/null &
r=$!
( while read -r _ <&3; do :; done; kill -TERM "$r" 2>/dev/null ) &
w=$!
wait "$r"; code=$?
kill "$w" 2>/dev/null
exit "$code"`;

/** Restarts allowed within RESTART_WINDOW_MS before the server is given up on. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

export interface EmbeddedRedisOptions {
  /** Called when redis-server died and could not be restarted: the process should exit non-zero. */
  onFatal?(error: Error): void;
  /** Told about an unexpected exit and its restart. */
  onRestart?(info: { code: number | null; attempt: number }): void;
}

/**
 * Starts `redis-server` on a free loopback port with its data under `DATA_DIR/redis` (AOF,
 * fsync every second: queued jobs, event logs, limits and idempotency keys survive a restart).
 * A server left behind by a killed predecessor on the same DATA_DIR is stopped
 * first (pidfile). If the server dies under us it is restarted on the same port (clients just
 * reconnect); after MAX_RESTARTS in a minute `onFatal` is called.
 */
export async function startEmbeddedRedis(dataDir: string, options: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
  const binary = process.env.REDIS_SERVER_BIN ?? 'redis-server';
  if (!isExecutable(binary)) throw new RedisUnavailableError();
  const dir = path.resolve(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const pidFile = path.join(dir, 'redis-server.pid');
  const socket = path.join(dir, 'redis.sock');
  const withSocket = Buffer.byteLength(socket) <= MAX_SOCKET_PATH;
  await stopOrphan(pidFile);
  // A port found free can be taken by another process before redis-server binds it: another port then.
  let port = 0;
  let args: string[] = [];
  let child: ChildProcess | undefined;
  for (let attempt = 1; !child; attempt += 1) {
    port = await freePort();
    args = serverArgs(port, dir, pidFile, withSocket ? socket : undefined);
    child = await launch(binary, args, port).catch((error: unknown) => {
      if (attempt >= PORT_ATTEMPTS || !/Address already in use/i.test((error as Error).message)) throw error;
      return undefined;
    });
  }

  let stopping = false;
  const restarts: number[] = [];
  let current: ChildProcess = child;
  const watch = (server: ChildProcess) => {
    server.once('exit', (code) => {
      if (stopping) return;
      const now = Date.now();
      while (restarts.length && restarts[0] < now - RESTART_WINDOW_MS) restarts.shift();
      restarts.push(now);
      if (restarts.length > MAX_RESTARTS)
        return options.onFatal?.(new Error(`redis-server died ${restarts.length} times in a minute (last exit code ${code})`));
      options.onRestart?.({ code, attempt: restarts.length });
      launch(binary, args, port).then(
        (next) => {
          if (stopping) return void next.stdin?.end();
          current = next;
          watch(next);
        },
        (error: Error) => options.onFatal?.(error),
      );
    });
  };
  watch(current);

  // Our end of the watchdog's pipe closes when we exit, however we exit.
  return {
    url: `redis://127.0.0.1:${port}`,
    ...(withSocket ? { socket } : {}),
    pidFile,
    stop: () =>
      new Promise<void>((resolve) => {
        stopping = true;
        if (current.exitCode !== null || current.signalCode !== null) return resolve();
        current.once('exit', () => resolve());
        current.stdin?.end();
      }),
  };
}

/** Ports tried before the start gives up (each lost to another process between look and bind). */
const PORT_ATTEMPTS = 5;

/** The longest path a Unix socket's address holds on Linux and macOS (108 and 104 bytes with the NUL), with room to spare. */
const MAX_SOCKET_PATH = 100;

/**
 * redis-server's command line: loopback on `port` and, when given, the Unix socket `socket` that
 * only this user may open (redis-server replaces a stale one left by a killed predecessor), AOF
 * under `dir` (fsync every second), no RDB.
 */
function serverArgs(port: number, dir: string, pidFile: string, socket: string | undefined): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--pidfile',
    pidFile,
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    ...(socket ? ['--unixsocket', socket, '--unixsocketperm', '700'] : []),
  ];
}

async function launch(binary: string, args: string[], port: number): Promise<ChildProcess> {
  // detached: a terminal's Ctrl-C reaches us, not redis-server: we stop it last, after draining.
  const child = spawn('sh', ['-c', WATCHDOG, binary, ...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  child.stdin.on('error', () => undefined);
  await waitForReadyLine(child, { name: 'redis-server', port, readyText: 'Ready to accept connections' });
  return child;
}

/**
 * A redis-server left running by a predecessor killed with -9 (its pidfile is still there): stop
 * it so its AOF is flushed and its port freed, then start our own on the same data.
 */
async function stopOrphan(pidFile: string): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !isRedisServer(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (processAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Only a live redis-server is stopped: a pid reused by anything else is left alone. */
function isRedisServer(pid: number): boolean {
  if (!processAlive(pid)) return false;
  const ps = spawnSync('ps', ['-p', String(pid), '-o', 'command=']);
  return !ps.error && ps.stdout.toString().includes('redis-server');
}

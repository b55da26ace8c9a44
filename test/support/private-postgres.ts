import { spawn, spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freePort } from '../../src/app/embedded-redis';
import { waitForReadyLine } from '../../src/lib/processes';

/** A PostgreSQL server started for one test run, in a temporary folder of its own. */
export interface PrivatePostgres {
  /** Admin URL (user `postgres`, trust auth) of its `test` database. */
  url: string;
  stop(): Promise<void>;
}

/** What to do when there is neither a server on 127.0.0.1:5432 nor binaries to start one. */
export const POSTGRES_MISSING =
  'No PostgreSQL for the multi-process tests: DATABASE_URL is not set, nothing accepts ' +
  'postgres://postgres@127.0.0.1:5432/test, and no `initdb` + `postgres` were found on PATH or under ' +
  '/usr/lib/postgresql/*/bin.\n' +
  '  Install them (Debian/Ubuntu: `sudo apt-get install -y postgresql`, macOS: `brew install postgresql`) ' +
  'and the tests start a private server, or set DATABASE_URL=postgres://user@host:5432/db.';

/** Whether a PostgreSQL server accepts `url` (a real login, not only an open port). */
export async function postgresAnswers(url: string, timeoutMs = 3000): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The folder holding both `initdb` and `postgres`: PATH first, then Debian's versioned
 * /usr/lib/postgresql/<major>/bin (not on PATH after `apt-get install postgresql`), newest first.
 * Both come from one folder so the cluster initdb writes is one that postgres can read.
 */
export function findPostgresBinaries(): string | undefined {
  const fromPath = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  let versioned: string[] = [];
  try {
    versioned = readdirSync('/usr/lib/postgresql')
      .filter((major) => /^\d+(\.\d+)?$/.test(major))
      .sort((a, b) => Number(b) - Number(a))
      .map((major) => `/usr/lib/postgresql/${major}/bin`);
  } catch {
    // No Debian packages.
  }
  return [...fromPath, ...versioned].find((dir) => isExecutable(path.join(dir, 'initdb')) && isExecutable(path.join(dir, 'postgres')));
}

/**
 * PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user the package
 * creates (else `nobody`) and owns its folder.
 */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'));
  const entry = passwd.find((fields) => fields[0] === 'postgres') ?? passwd.find((fields) => fields[0] === 'nobody');
  if (!entry) throw new Error('Running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as.');
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

/**
 * Between us and postgres: when our end of its stdin pipe closes (we stopped, or were killed
 * with -9) it stops postgres with SIGINT (fast shutdown: open sessions are cut, not waited for)
 * and removes the server's folder ($SB_PG_ROOT), so neither outlives the run.
 */
const WATCHDOG = `exec 3<&0
"$0" "$@" </dev/null &
r=$!
( while read -r _ <&3; do :; done; kill -INT "$r" 2>/dev/null ) &
w=$!
wait "$r"; code=$?
kill "$w" 2>/dev/null
rm -rf "$SB_PG_ROOT"
exit "$code"`;

/**
 * Starts a throwaway server: `initdb` into a fresh temporary folder (trust auth, no fsync), then
 * `postgres` on a free loopback port with its unix socket in that folder. Nothing it writes is
 * worth keeping, so durability is off. The folder is removed on stop.
 */
export async function startPrivatePostgres(binDir: string): Promise<PrivatePostgres> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sb-test-pg-'));
  const dataDir = path.join(root, 'data');
  const owner = serverUser();
  if (owner) chownSync(root, owner.uid, owner.gid);
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};
  try {
    const init = spawnSync(
      path.join(binDir, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '--encoding=UTF8', '--locale=C'],
      { ...asOwner, cwd: root, encoding: 'utf8' },
    );
    if (init.status !== 0)
      throw new Error(`initdb failed (${init.error?.message ?? `exit ${init.status}`}):\n${init.stdout}${init.stderr}`);
    const port = await freePort();
    const child = spawn(
      'sh',
      [
        '-c',
        WATCHDOG,
        path.join(binDir, 'postgres'),
        '-D',
        dataDir,
        '-p',
        String(port),
        '-k',
        root,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=300',
      ],
      { ...asOwner, cwd: root, env: { ...process.env, SB_PG_ROOT: root }, stdio: ['pipe', 'pipe', 'pipe'], detached: true },
    );
    child.stdin!.on('error', () => undefined);
    await waitForReadyLine(child, { name: 'postgres', port, readyText: 'database system is ready to accept connections' });
    const server = `postgres://postgres@127.0.0.1:${port}`;
    // The same database name as the machine's server (postgres://postgres@127.0.0.1:5432/test).
    const admin = new Client({ connectionString: `${server}/postgres` });
    await admin.connect();
    await admin.query('create database test').finally(() => admin.end());
    return {
      url: `${server}/test`,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          await new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            child.stdin?.end();
          });
        }
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
}

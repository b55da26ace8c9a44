import { existsSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { LOCAL_POSTGRES, serverPostgresUrl } from '../support/database';
import { findPostgresBinaries, POSTGRES_MISSING, postgresAnswers, startPrivatePostgres } from '../support/private-postgres';

const NAMES = ['DATABASE_URL', 'TEST_POSTGRES_URL', 'TEST_POSTGRES_MISSING'] as const;

/** Runs `work` with exactly `values` set among the variables serverPostgresUrl reads, then restores them. */
function withEnv<T>(values: Partial<Record<(typeof NAMES)[number], string>>, work: () => T): T {
  const saved = NAMES.map((name) => [name, process.env[name]] as const);
  for (const name of NAMES) delete process.env[name];
  Object.assign(process.env, values);
  try {
    return work();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

describe('which PostgreSQL server the multi-process tests use', () => {
  test("DATABASE_URL first, then the run's TEST_POSTGRES_URL, then the machine's server", () => {
    expect(
      withEnv({ DATABASE_URL: 'postgres://a/x', TEST_POSTGRES_URL: 'postgres://b/y', TEST_POSTGRES_MISSING: 'no' }, serverPostgresUrl),
    ).toBe('postgres://a/x');
    expect(withEnv({ TEST_POSTGRES_URL: 'postgres://b/y', TEST_POSTGRES_MISSING: 'no' }, serverPostgresUrl)).toBe('postgres://b/y');
    expect(withEnv({}, serverPostgresUrl)).toBe(LOCAL_POSTGRES);
  });

  test('with neither a server nor the binaries, it fails saying what to install or set (not ECONNREFUSED)', () => {
    expect(() => withEnv({ TEST_POSTGRES_MISSING: POSTGRES_MISSING }, serverPostgresUrl)).toThrow(POSTGRES_MISSING);
    expect(POSTGRES_MISSING).toContain('apt-get install -y postgresql');
    expect(POSTGRES_MISSING).toContain('DATABASE_URL');
  });

  test('nothing listening is "not answering", within the timeout', async () => {
    // Port 1 on loopback: refused at once on any machine without a server there.
    await expect(postgresAnswers('postgres://postgres@127.0.0.1:1/test', 2000)).resolves.toBe(false);
  });
});

describe('a private PostgreSQL server', () => {
  // CI installs the binaries (.ci/run). A machine without them checks instead that the run's setup
  // left the multi-process tests a server or the message saying what is missing.
  const binDir = findPostgresBinaries();

  if (!binDir) {
    test('no initdb + postgres here: the run uses a server it was given or found, or says what is missing', () => {
      expect(process.env.DATABASE_URL ?? process.env.TEST_POSTGRES_MISSING ?? process.env.TEST_POSTGRES_URL).toBeTruthy();
    });
    return;
  }

  test('starts on a free port with trust auth and fsync off, serves SQL, and leaves nothing behind when stopped', async () => {
    const server = await startPrivatePostgres(binDir);
    const url = new URL(server.url);
    expect(url.hostname).toBe('127.0.0.1');
    expect(url.pathname).toBe('/test');
    const client = new Client({ connectionString: server.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ fsync: string; socket_dir: string }>(
        "select current_setting('fsync') as fsync, current_setting('unix_socket_directories') as socket_dir",
      );
      expect(rows[0].fsync).toBe('off');
      const socketDir = rows[0].socket_dir;
      expect(existsSync(path.join(socketDir, `.s.PGSQL.${url.port}`))).toBe(true);
      await client.end();
      await server.stop();
      expect(existsSync(socketDir)).toBe(false);
      await expect(postgresAnswers(server.url, 2000)).resolves.toBe(false);
    } finally {
      await client.end().catch(() => undefined);
    }
  });
});

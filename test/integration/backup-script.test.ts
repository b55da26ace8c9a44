import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { retainedBackups } from '../../src/models/backup';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';

const SCRIPT = path.resolve(__dirname, '../../deploy/k8s/backup.sh');

/**
 * deploy/k8s/backup.sh, what the compose `backup` service and the Kubernetes CronJob run: a real
 * pg_dump of a real database, and the same retention as `switchboard backup --dir` (compared with
 * the server's own rule on a year and a half of daily files).
 */
describe('the scheduled backup script', () => {
  let database: TestDatabase;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-backup-script-'));

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
  });
  afterAll(async () => {
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('writes a pg_dump archive and keeps exactly the backups the CLI keeps: 7 daily, 4 weekly, 12 monthly', () => {
    const end = Date.now() - 86_400_000;
    const old = Array.from({ length: 540 }, (_, i) => {
      const day = new Date(end - i * 86_400_000).toISOString().slice(0, 10);
      return `switchboard-${day}T020000Z.pgdump`;
    });
    for (const name of old) writeFileSync(path.join(dir, name), 'old');
    writeFileSync(path.join(dir, 'README.txt'), 'not a backup');

    const out = execFileSync('bash', [SCRIPT], {
      env: { PATH: process.env.PATH, DATABASE_URL: database.url, BACKUP_DIR: dir },
      encoding: 'utf8',
    });

    const [written] = /backup written: (\S+)/.exec(out)!.slice(1);
    const name = path.basename(written);
    expect(name).toMatch(/^switchboard-\d{4}-\d{2}-\d{2}T\d{6}Z\.pgdump$/);
    // pg_dump's custom format starts with its magic.
    expect(execFileSync('head', ['-c', '5', written], { encoding: 'latin1' })).toBe('PGDMP');
    const expected = [...retainedBackups([...old, name]), 'README.txt'].sort();
    expect(readdirSync(dir).sort()).toEqual(expected);
  });
});

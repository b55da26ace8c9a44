import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startCommand } from '../support/cli';
import { dockerfileInstructions } from '../support/dockerfile';
import { createTestDatabase, serverPostgresUrl, testRedisEnv } from '../support/database';
import { randomUUID } from 'node:crypto';

/**
 * The image (no Docker engine here): its instructions checked against what the image must do, and its CMD
 * run as a process to show it is one process, Switchboard itself.
 */
const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const instructions = dockerfileInstructions(ROOT);
const all = (keyword: string) => instructions.filter((i) => i.keyword === keyword);

describe('Dockerfile', () => {
  test('builds on the Node 24 LTS image', () => {
    expect(all('FROM').map((i) => i.args)).toEqual(['node:24-bookworm-slim']);
  });

  test('installs production dependencies only, from the lock file, and copies what runs', () => {
    const runs = all('RUN').map((i) => i.args);
    const install = runs.find((run) => /\bnpm (install|ci)\b/.test(run))!;
    expect(install).toMatch(/--omit=dev/);
    // npm keeps TypeScript (a devDependency that is also an optional peer of the dashboard's validator): the image drops it.
    expect(install).toMatch(/rm -rf node_modules\/typescript /);
    expect(all('COPY')[0].args).toBe('package.json package-lock.json ./');
    const copied = all('COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const needed of ['bin', 'config', 'src', 'web', 'packages', 'tsconfig.json']) expect(copied).toContain(needed);
    // What the CMD runs is a runtime dependency, and the dev-only log prettifier is not.
    const pkg = JSON.parse(read('package.json'));
    expect(pkg.dependencies).toHaveProperty('tsx');
    expect(pkg.dependencies).not.toHaveProperty('pino-pretty');
    expect(pkg.bin).toEqual({ switchboard: 'bin/switchboard.mjs' });
  });

  test('runs as the non-root node user, one process: node itself, no launcher', () => {
    const users = all('USER').map((i) => i.args);
    expect(users).toEqual(['node']);
    const userAt = instructions.findIndex((i) => i.keyword === 'USER');
    const cmdAt = instructions.findIndex((i) => i.keyword === 'CMD');
    expect(userAt).toBeLessThan(cmdAt);
    expect(all('ENTRYPOINT')).toEqual([]);
    const cmd = JSON.parse(all('CMD')[0].args) as string[];
    expect(cmd[0]).toBe('node');
    for (const launcher of ['npm', 'npx', 'tsx', 'tini', 'dumb-init', 'sh', 'bash'])
      expect(cmd.some((arg) => arg === launcher || arg.endsWith(`/${launcher}`))).toBe(false);
    expect(existsSync(path.join(ROOT, cmd[1]))).toBe(true);
  });

  test('the CMD is one process: the pid in its logs is the pid that was started, and SIGTERM drains it to exit 0', async () => {
    const database = await createTestDatabase({ server: serverPostgresUrl() });
    const cmd = JSON.parse(all('CMD')[0].args) as string[];
    const started = await startCommand(process.execPath, cmd.slice(1), {
      SWITCHBOARD_ROLES: 'scheduler',
      DATABASE_URL: database.url,
      ...testRedisEnv(),
      REDIS_KEY_PREFIX: `img-${randomUUID().slice(0, 8)}`,
      JWT_SECRET: 'image-test-secret-image-test-secret-0123',
      LOG_FORMAT: 'json',
      // Something logged at start, to read the pid from.
      ADMIN_EMAILS: 'ops@corp.example',
    });
    try {
      const line = started
        .output()
        .split('\n')
        .find((text) => text.includes('ADMIN_EMAILS is ignored'))!;
      expect(JSON.parse(line).pid).toBe(started.pid);
      expect(await started.stop()).toBe(0);
    } finally {
      await started.stop();
      await database.drop();
    }
  }, 90_000);
});

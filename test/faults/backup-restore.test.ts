import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { useCluster } from '../support/cluster';
import { runSwitchboardCli } from '../support/cli';
import { testRedisEnv } from '../support/database';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../support/processes';
import { deleteKeysEverywhere, testBullConnection } from '../support/redis';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

const PROMPT = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';

/** What a restore must bring back, read through the API. */
async function snapshot(base: string, user: TestUser, canvasId: string, generationId: string) {
  const get = async (url: string) => {
    const res = await request('GET', `${base}${url}`, { token: user.accessToken });
    expect({ url, status: res.status }).toEqual({ url, status: 200 });
    return res.body;
  };
  return {
    canvases: (await get('/canvases')).canvases.map((c: { id: string; name: string }) => [c.id, c.name]),
    blocks: (await get(`/canvases/${canvasId}/blocks`)).blocks.map((b: { id: string; type: string; content: unknown }) => [
      b.id,
      b.type,
      b.content,
    ]),
    flows: (await get('/flows')).flows.map((f: { id: string; name: string }) => [f.id, f.name]),
    apiKeys: (await get('/api-keys')).apiKeys.map((k: { id: string; name: string }) => [k.id, k.name]),
    generation: (await get(`/canvases/${canvasId}/ai/generations/${generationId}`)).generation,
  };
}

/** Makes a canvas with a generation's blocks, a flow and an API key; the generation's id and the key's secret. */
async function fill(base: string, user: TestUser, canvasId: string): Promise<{ generationId: string; secret: string }> {
  const sse = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
    method: 'POST',
    token: user.accessToken,
    body: { prompt: PROMPT },
    timeoutMs: 60_000,
    until: (m) => m.event === 'complete' || m.event === 'error',
  });
  expect(sse.messages.at(-1)!.event).toBe('complete');
  const flow = await request('POST', `${base}/flows`, {
    token: user.accessToken,
    body: { type: 'chatflow', name: 'Kept', definition: { systemPrompt: 'You answer briefly.' } },
  });
  expect(flow.status).toBe(201);
  const key = await request('POST', `${base}/api-keys`, { token: user.accessToken, body: { name: 'kept-key' } });
  expect(key.status).toBe(201);
  return { generationId: sse.messages.at(-1)!.data.generationId as string, secret: key.body.secret as string };
}

/** Whether the API key `secret` still signs a request in. */
async function keySignsIn(base: string, secret: string): Promise<number> {
  const res = await fetch(`${base}/canvases`, { headers: { 'x-api-key': secret } });
  return res.status;
}

/**
 * `switchboard backup` → the data destroyed (and Redis's with it) → `switchboard restore`: every
 * canvas, block, flow, API key and run comes back, the key still signs requests in, and a run
 * that was queued when the backup was taken is ended by the reaper once its job is found gone.
 */
describe('backup, destroy, restore', () => {
  describe('on PostgreSQL (pg_dump archive)', () => {
    const cluster = useCluster('backup', { DEMO_LLM_DELAY_MS: '20', REAPER_GRACE_MS: '0', REAPER_INTERVAL_MS: '300' });
    const backups = mkdtempSync(path.join(os.tmpdir(), 'sb-backups-'));
    afterAll(() => rmSync(backups, { recursive: true, force: true }));

    test('brings every row back; a run queued at backup time ends `interrupted` once its job is found gone', async () => {
      let app: SwitchboardProcess = await cluster.spawn({ PORT: '0' });
      let base = `${app.url}/api/v1`;
      const user = await registerUser(base, 'Backup');
      const canvasId = await createCanvas(base, user);
      const { generationId, secret } = await fill(base, user, canvasId);
      const before = await snapshot(base, user, canvasId, generationId);
      expect(before.blocks).toHaveLength(5);
      await app.stop('SIGTERM');

      // A generation queued on an API node with no worker: its row is `queued`, its job waits in Redis.
      app = await cluster.spawn({ PORT: '0', SWITCHBOARD_ROLES: 'api' });
      base = `${app.url}/api/v1`;
      const queued = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'A single heading' },
        timeoutMs: 30_000,
        until: () => true,
      });
      const queuedId = queued.headers.get('x-generation-id')!;
      expect(queuedId).toEqual(expect.any(String));
      await app.stop('SIGTERM');

      const backup = await runSwitchboardCli(['backup', `--dir=${backups}`], { DATABASE_URL: cluster.databaseUrl() });
      expect(backup).toMatchObject({ code: 0, stderr: '' });
      const [file] = readdirSync(backups);
      expect(file).toMatch(/^switchboard-\d{4}-\d{2}-\d{2}T\d{6}Z\.pgdump$/);

      // Disaster: every table gone, and Redis with it (queues, event logs, reservations).
      const db = new Client({ connectionString: cluster.databaseUrl() });
      await db.connect();
      await db.query('drop schema public cascade; create schema public; drop schema if exists drizzle cascade');
      await db.end();
      const redis = testBullConnection();
      await deleteKeysEverywhere(redis, `*${cluster.keyPrefix}*`);
      await redis.quit();

      const refused = await runSwitchboardCli(['restore', path.join(backups, file)], { DATABASE_URL: cluster.databaseUrl() });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('--yes');
      const restore = await runSwitchboardCli(['restore', path.join(backups, file), '--yes'], { DATABASE_URL: cluster.databaseUrl() });
      expect(restore).toMatchObject({ code: 0, stderr: '' });
      expect(restore.stdout).toContain('Restored');

      app = await cluster.spawn({ PORT: '0' });
      base = `${app.url}/api/v1`;
      expect(await snapshot(base, user, canvasId, generationId)).toEqual(before);
      expect(await keySignsIn(base, secret)).toBe(200);
      // The queued run's job went with Redis: the reaper ends it instead of leaving it queued for ever.
      const ended = await eventually(
        async () => (await request('GET', `${base}/canvases/${canvasId}/ai/generations/${queuedId}`, { token: user.accessToken })).body,
        (body) => body.generation?.status !== 'queued' && body.generation?.status !== 'running',
        30_000,
      );
      expect(ended.generation).toMatchObject({ status: 'failed' });
    }, 240_000);
  });

  describe('on embedded PGlite (data directory tarball)', () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-backup-embedded-'));
    const backups = mkdtempSync(path.join(os.tmpdir(), 'sb-backups-embedded-'));
    const started: SwitchboardProcess[] = [];
    const env = {
      DATA_DIR: dataDir,
      PORT: '0',
      DEMO_LLM_DELAY_MS: '20',
      REDIS_KEY_PREFIX: `backup-embedded-${process.pid}`,
      ...testRedisEnv(),
    };
    afterAll(async () => {
      await Promise.all(started.map((p) => p.stop('SIGKILL')));
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(backups, { recursive: true, force: true });
    });

    test('a backup refused while the server holds the files; taken once it stopped, it restores every row', async () => {
      let app = await spawnSwitchboard(env, 90_000);
      started.push(app);
      let base = `${app.url}/api/v1`;
      const user = await registerUser(base, 'BackupEmbedded');
      const canvasId = await createCanvas(base, user);
      const { generationId, secret } = await fill(base, user, canvasId);
      const before = await snapshot(base, user, canvasId, generationId);

      // PGlite has one writer: no backup under a running server.
      const busy = await runSwitchboardCli(['backup', `--dir=${backups}`], { DATA_DIR: dataDir });
      expect(busy.code).toBe(1);
      expect(busy.stderr).toContain('in use by process');
      await app.stop('SIGTERM');

      const backup = await runSwitchboardCli(['backup', `--dir=${backups}`], { DATA_DIR: dataDir });
      expect(backup).toMatchObject({ code: 0, stderr: '' });
      const [file] = readdirSync(backups);
      expect(file).toMatch(/^switchboard-\d{4}-\d{2}-\d{2}T\d{6}Z\.tar\.gz$/);

      rmSync(path.join(dataDir, 'pglite'), { recursive: true, force: true });
      const restore = await runSwitchboardCli(['restore', path.join(backups, file), '--yes'], { DATA_DIR: dataDir });
      expect(restore).toMatchObject({ code: 0, stderr: '' });

      app = await spawnSwitchboard(env, 90_000);
      started.push(app);
      base = `${app.url}/api/v1`;
      expect(await snapshot(base, user, canvasId, generationId)).toEqual(before);
      expect(await keySignsIn(base, secret)).toBe(200);
    }, 240_000);
  });
});

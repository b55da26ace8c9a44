import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, serverPostgresUrl, testRedisEnv } from '../support/database';
import { loadedModules, recordingLoadedModules, spawnSwitchboard } from '../support/processes';

/** Packages only workers may load: the model client and the connector SDKs. */
const WORKER_ONLY = /node_modules\/(@langchain\/|langchain\/|openai\/|@googleapis\/|googleapis|@microsoft\/)/;

/**
 * Starts Switchboard with `roles` as `npm start` runs it (the bundle of src/, with the packages
 * outside it), on real Redis and a database of its own, and lists the packages it loaded by the time
 * it was running, read when SIGTERM has stopped it.
 */
async function packagesLoadedBy(roles: string): Promise<string[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-boundary-'));
  const database = await createTestDatabase({ server: serverPostgresUrl(), migrated: true });
  const modules = path.join(dir, 'modules.json');
  try {
    const app = await spawnSwitchboard({
      SWITCHBOARD_ROLES: roles,
      ...testRedisEnv(),
      REDIS_KEY_PREFIX: `boundary-${process.pid}-${Date.now()}`,
      DATABASE_URL: database.url,
      DATA_DIR: dir,
      PORT: '0',
      ...recordingLoadedModules(modules),
    });
    await app.stop();
    return loadedModules(modules).filter((file) => file.includes('/node_modules/'));
  } finally {
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Packages only the api role loads: the HTTP framework and its middleware. */
const API_ONLY = /node_modules\/(express|helmet|pino-http)\//;

describe('process boundaries (the API process never loads LangChain or connector SDKs, a worker never the HTTP app)', () => {
  test('an api-only process loads no model client and no connector SDK', async () => {
    const loaded = await packagesLoadedBy('api');
    expect(loaded.some((file) => file.includes('/node_modules/express/'))).toBe(true);
    expect(loaded.filter((file) => WORKER_ONLY.test(file))).toEqual([]);
  }, 90_000);

  test('a worker process does load LangChain (the check above can see it), but the OpenAI client only at its first model call', async () => {
    const loaded = await packagesLoadedBy('worker');
    expect(loaded.some((file) => file.includes('/node_modules/@langchain/core/'))).toBe(true);
    // The OpenAI client (@langchain/openai and the openai SDK) is loaded at the first model call, not at start-up.
    expect(loaded.filter((file) => /node_modules\/(@langchain\/openai|openai)\//.test(file))).toEqual([]);
    // Nor does it load the HTTP app it does not serve (the api role is loaded only by a process that runs it).
    expect(loaded.filter((file) => API_ONLY.test(file))).toEqual([]);
  }, 90_000);
});

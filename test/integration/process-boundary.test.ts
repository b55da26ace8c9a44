import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { testRedisEnv } from '../support/database';

const ROOT = path.resolve(__dirname, '../..');
const run = promisify(execFile);

/** Packages only workers may load: the model client and the connector SDKs. */
const WORKER_ONLY = /node_modules\/(@langchain\/|langchain\/|openai\/|@googleapis\/|googleapis|@microsoft\/)/;

/**
 * Starts Switchboard with `roles` in a process of its own (real Redis, in-memory PGlite) and lists
 * the packages its module graph loaded, read from the CommonJS cache once it is running.
 */
async function packagesLoadedBy(roles: string): Promise<string[]> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-boundary-'));
  const script = `
    const { loadConfig } = require('./config');
    const { startSwitchboard } = require('./src/app/switchboard');
    startSwitchboard(loadConfig(process.env)).then((app) => {
      const loaded = Object.keys(require.cache).filter((file) => file.includes('/node_modules/'));
      process.stdout.write(JSON.stringify(loaded), () => process.exit(0));
    }, (error) => { console.error(error); process.exit(1); });`;
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: ROOT,
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        NODE_ENV: 'test',
        LOG_LEVEL: 'silent',
        SWITCHBOARD_ROLES: roles,
        ...testRedisEnv(),
        REDIS_KEY_PREFIX: `boundary-${process.pid}-${Date.now()}`,
        DATABASE_URL: 'memory://',
        DATA_DIR: dataDir,
        PORT: '0',
      },
    });
    return JSON.parse(stdout) as string[];
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
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

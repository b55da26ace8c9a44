import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LlmEndpoint } from '../../src/ai/llm';
import { startEmbeddedRedis } from '../../src/app/embedded-redis';
import { singleBenchRedis } from './bench-redis';
import { startInProcessSwitchboard, uniquePrefix } from './harness';

/**
 * A bench tool's own Switchboard: a private redis-server in a fresh temporary folder, and every
 * role in this process on it (PGlite in memory) against `endpoint`. `stop` stops both and removes
 * the folder.
 */
export async function startToolSwitchboard(name: string, endpoint: LlmEndpoint) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const server = await startEmbeddedRedis(dataDir);
  const redis = singleBenchRedis(server.url);
  const keyPrefix = uniquePrefix(name);
  try {
    const app = await startInProcessSwitchboard({ redis, keyPrefix, dataDir, endpoint });
    const stop = async () => {
      await app.stop();
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    };
    return { app, redis, keyPrefix, stop };
  } catch (error) {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

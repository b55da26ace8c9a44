import { startEmbeddedRedis } from '../../src/app/embedded-redis';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS script, loaded as one
const { buildPackages } = require('../../scripts/build-packages.cjs') as { buildPackages(): Promise<string[]> };

/**
 * One private redis-server for the whole run (unless TEST_REDIS_URL points at one), so tests never
 * touch a developer's data on 6379. Each test still isolates itself with its own key prefix.
 */
export default async function globalSetup(): Promise<void> {
  // The packages' dist/ (the console serves the client's browser bundle; the example app and the
  // pack test use the builds): rebuilt here only when a source is newer (decision 0130).
  await buildPackages();
  if (process.env.TEST_REDIS_URL) return;
  const redis = await startEmbeddedRedis(`${process.cwd()}/.data/test`);
  process.env.TEST_REDIS_URL = redis.url;
  (globalThis as { __sbRedis?: { stop(): Promise<void> } }).__sbRedis = redis;
}

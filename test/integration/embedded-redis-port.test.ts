import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/app/embedded-redis';
import { createRedis, redisReady } from '../../src/lib/redis';
import { processAlive } from '../../src/lib/processes';

/** What the Redis at `target` (a URL or a socket's path) answers to PING. */
async function pingThrough(target: string): Promise<string> {
  const client = createRedis(target, 'command');
  try {
    await redisReady(client);
    return await client.ping();
  } finally {
    client.disconnect();
  }
}

/**
 * The embedded redis-server gets a port found free; on a busy machine another process can take it
 * before redis-server binds it. Here that race is made to happen for real: the first launch has a
 * process of its own bind the port just before redis-server starts on it. The start then tries
 * another port instead of failing.
 */
describe('the embedded redis-server when its port is taken before it binds', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-redis-port-'));
  const squatterPid = path.join(dir, 'squatter.pid');
  let redis: EmbeddedRedis | undefined;
  const binBefore = process.env.REDIS_SERVER_BIN;

  afterAll(async () => {
    await redis?.stop();
    if (existsSync(squatterPid)) {
      const pid = Number(readFileSync(squatterPid, 'utf8'));
      if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    if (binBefore === undefined) delete process.env.REDIS_SERVER_BIN;
    else process.env.REDIS_SERVER_BIN = binBefore;
    rmSync(dir, { recursive: true, force: true });
  });

  test('starts on another port and answers', async () => {
    // The real redis-server, behind a wrapper whose first call lets another process bind the port first.
    const wrapper = path.join(dir, 'redis-server');
    writeFileSync(
      wrapper,
      [
        '#!/bin/sh',
        `if [ ! -e '${squatterPid}' ]; then`,
        `  node -e "require('net').createServer().listen($2, '127.0.0.1'); setTimeout(() => {}, 60000)" &`,
        `  echo $! > '${squatterPid}'`,
        `  until node -e "require('net').connect($2, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"; do sleep 0.05; done`,
        'fi',
        'exec redis-server "$@"',
        '',
      ].join('\n'),
    );
    chmodSync(wrapper, 0o755);
    process.env.REDIS_SERVER_BIN = wrapper;

    redis = await startEmbeddedRedis(path.join(dir, 'data'));

    // The squatter held the first port; the server runs on another and answers.
    expect(existsSync(squatterPid)).toBe(true);
    expect(await pingThrough(redis.url)).toBe('PONG');
  }, 60_000);
});

/**
 * A Unix socket's address holds about a hundred bytes: under a DATA_DIR deeper than that the
 * embedded redis-server has no socket, and its clients use its loopback port.
 */
describe('the embedded redis-server under a DATA_DIR too deep for a socket', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-redis-deep-'));
  let redis: EmbeddedRedis | undefined;

  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('starts without a socket and answers on its port', async () => {
    const deep = path.join(dir, 'a-folder-name-long-enough'.repeat(4), 'data');
    expect(Buffer.byteLength(path.join(deep, 'redis', 'redis.sock'))).toBeGreaterThan(108);
    redis = await startEmbeddedRedis(deep);
    expect(redis.socket).toBeUndefined();
    expect(existsSync(path.join(deep, 'redis', 'redis.sock'))).toBe(false);
    expect(await pingThrough(redis.url)).toBe('PONG');
  }, 60_000);

  test('under a short DATA_DIR it has one, and answers on it', async () => {
    const short = await startEmbeddedRedis(path.join(dir, 'short'));
    try {
      expect(short.socket).toBe(path.join(dir, 'short', 'redis', 'redis.sock'));
      expect(await pingThrough(short.socket!)).toBe('PONG');
    } finally {
      await short.stop();
    }
  }, 60_000);
});

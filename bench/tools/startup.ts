/**
 * `npm start` → `/readyz` 200 (the start-up target): runs `node scripts/start.cjs` of one or more
 * trees in turn (alternating, so they share the machine's load) on a fresh DATA_DIR and then again
 * on the same, now warm, one. Per start: wall time until /readyz answers 200 and the process's own
 * CPU by then (/proc; the embedded redis-server is a child and not counted). Prints one line per
 * start with the load average.
 *
 *   node -r ./bench/register.cjs bench/tools/startup.ts [--rounds=3] [tree ...]      (default: this tree)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cpuMsOf } from '../lib/harness';

const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 3);
const trees = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (!trees.length) trees.push(path.resolve(__dirname, '../..'));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function start(tree: string, dataDir: string) {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ['scripts/start.cjs'], {
    cwd: tree,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATA_DIR: dataDir,
      PORT: String(port),
      LOG_LEVEL: 'silent',
      NODE_ENV: 'development',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${tree}: exited with ${child.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      if (performance.now() - started > 120_000) throw new Error(`${tree}: not ready in 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { wallS: (performance.now() - started) / 1000, cpuS: cpuMsOf(child.pid!) / 1000 };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

async function main() {
  for (let round = 0; round < rounds; round += 1) {
    for (const tree of trees) {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-start-'));
      try {
        for (const kind of ['fresh', 'warm']) {
          const load = os.loadavg()[0].toFixed(1);
          const { wallS, cpuS } = await start(tree, dataDir);
          console.log(`${tree}  ${kind.padEnd(5)}  ready ${wallS.toFixed(2)} s  CPU ${cpuS.toFixed(2)} s  load ${load}`);
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

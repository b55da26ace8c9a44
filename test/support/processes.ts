import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { waitUntil } from './wait';

const ROOT = path.resolve(__dirname, '../..');

/**
 * The V8 flags of the test run that the Switchboards it starts get too: `npm test` compiles
 * WebAssembly with Liftoff only (no optimising tier), which halves the CPU a short-lived process
 * spends compiling the embedded database (PGlite) and changes nothing it does.
 */
export const INHERITED_NODE_FLAGS = process.execArgv.filter((flag) => flag === '--liftoff-only');

/**
 * The environment that makes a started Switchboard write every module it loaded, through `require`
 * or `import`, to `file` when it exits (test/support/loaded-modules.cjs, preloaded).
 */
export function recordingLoadedModules(file: string): Record<string, string> {
  return { NODE_OPTIONS: `--require ${path.join(__dirname, 'loaded-modules.cjs')}`, LOADED_MODULES_FILE: file };
}

/** The modules a process started with `recordingLoadedModules(file)` reported once it exited. */
export function loadedModules(file: string): string[] {
  return JSON.parse(readFileSync(file, 'utf8')) as string[];
}

/** A Switchboard started as its own OS process, exactly as `npm start` runs it. */
export interface SwitchboardProcess {
  child: ChildProcess;
  /** The URL printed in the start banner (api role). */
  url?: string;
  output(): string;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Spawns what `npm start` runs (`node scripts/start.cjs`: the esbuild bundle of src/, which the test
 * run's global setup builds once) with `env` and resolves once its start banner is printed. The
 * default deadline is generous: on a loaded machine several processes starting at once can take
 * tens of seconds to print their banners.
 */
export function spawnSwitchboard(env: Record<string, string>, timeoutMs = 60_000): Promise<SwitchboardProcess> {
  // scripts/start.cjs requires the bundle in its own process: the pid is Switchboard itself, so a
  // signal (SIGTERM to drain, SIGKILL to crash) reaches it directly and nothing is left orphaned.
  const child = spawn(process.execPath, [...INHERITED_NODE_FLAGS, 'scripts/start.cjs'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`switchboard did not start in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (data: Buffer) => {
      output += data.toString();
      if (!output.includes('Switchboard is running')) return;
      clearTimeout(timer);
      resolve({
        child,
        url: /running at (http:\/\/\S+)/.exec(output)?.[1],
        output: () => output,
        exited,
        stop: (signal = 'SIGTERM') => {
          if (child.exitCode === null) child.kill(signal);
          return exited;
        },
      });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`switchboard exited with ${code} before starting:\n${output}`));
    });
  });
}

/**
 * Waits until `process` has printed `text`, failing with its output after `timeoutMs`. A process
 * logs before the event a test then sees (a run's end through Redis and a stream), but its output
 * comes through a pipe of its own and may reach the test after that event, on a busy machine.
 */
export async function untilPrinted(process: SwitchboardProcess, text: string, timeoutMs = 10_000): Promise<void> {
  await waitUntil(() => process.output().includes(text), timeoutMs).catch(() => {
    throw new Error(`not printed within ${timeoutMs} ms: ${text}\noutput:\n${process.output()}`);
  });
}

/**
 * When (the process's clock, epoch ms) `process` logged its first line holding every one of
 * `texts`, at `notBefore` or later, read from the line's own `time`; undefined when none was printed.
 */
export function loggedAt(process: SwitchboardProcess, texts: string[], notBefore = 0): number | undefined {
  for (const line of process.output().split('\n')) {
    if (!texts.every((text) => line.includes(text))) continue;
    const time = (JSON.parse(line) as { time?: unknown }).time;
    if (typeof time === 'number' && time >= notBefore) return time;
  }
  return undefined;
}

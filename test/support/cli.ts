import { spawn } from 'node:child_process';
import path from 'node:path';
import { INHERITED_NODE_FLAGS } from './processes';

const ROOT = path.resolve(__dirname, '../..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `switchboard <args>` (bin/switchboard.mjs, exactly what the package's `bin` installs) as its
 * own process and waits for it to exit. One-shot commands only: servers use spawnSwitchboard.
 */
export function runSwitchboardCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
  entry = 'bin/switchboard.mjs',
): Promise<CliResult> {
  // src/main.ts (what `npm start` runs) needs tsx's loader on the command line; the bin loads it itself.
  const node = entry.endsWith('.ts') ? ['--import', 'tsx', entry] : [path.join(ROOT, entry)];
  const child = spawn(process.execPath, [...INHERITED_NODE_FLAGS, ...node, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`switchboard ${args.join(' ')} did not exit in ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    // 'close', not 'exit': by then stdout and stderr are read to the end.
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running command started through a shell line (e.g. `npx switchboard worker …`), up once its banner is printed. */
export interface RunningCommand {
  /** The pid of the process started (npx, or node itself). */
  pid: number;
  output(): string;
  /** SIGTERM to the whole process group (npx, npm and Switchboard), then the exit code. */
  stop(): Promise<number | null>;
}

export function startCommand(command: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<RunningCommand> {
  // Its own process group, so stopping reaches Switchboard under npx's npm and shell.
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not start in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (data: Buffer) => {
      output += data.toString();
      if (!output.includes('Switchboard is running')) return;
      clearTimeout(timer);
      resolve({
        pid: child.pid!,
        output: () => output,
        stop: () => {
          if (child.exitCode === null && child.signalCode === null) {
            try {
              process.kill(-child.pid!, 'SIGTERM');
            } catch {
              // The group is gone already.
            }
          }
          return closed;
        },
      });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    void closed.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited with ${code} before starting:\n${output}`));
    });
  });
}

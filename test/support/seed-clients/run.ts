import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Runs one of the copied client programs of this folder in a Node process of its own (a browser's
 * globals set up by the program itself) and returns the JSON line it prints.
 */
export async function runSeedClient<T>(file: string, env: Record<string, string>, nodeFlags: string[] = []): Promise<T> {
  const { stdout } = await run(process.execPath, [...nodeFlags, '--disable-warning=ExperimentalWarning', join(__dirname, file)], {
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 30_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

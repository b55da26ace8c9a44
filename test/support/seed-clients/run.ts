import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const argsOf = (file: string, nodeFlags: string[]) => [...nodeFlags, '--disable-warning=ExperimentalWarning', join(__dirname, file)];
const lastJsonLine = <T>(stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as T;

/**
 * Runs one of the copied client programs of this folder in a Node process of its own (a browser's
 * globals set up by the program itself) and returns the JSON line it prints.
 */
export async function runSeedClient<T>(file: string, env: Record<string, string>, nodeFlags: string[] = []): Promise<T> {
  const { stdout } = await run(process.execPath, argsOf(file, nodeFlags), { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 });
  return lastJsonLine<T>(stdout);
}

/**
 * `runSeedClient`, also telling when the program wrote `line` to stderr (e.g. its response began):
 * `reached` resolves then, `result` with the JSON line once it exits.
 */
export function startSeedClient<T>(file: string, env: Record<string, string>, line: string): { reached: Promise<void>; result: Promise<T> } {
  const child = spawn(process.execPath, argsOf(file, []), { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const reached = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes(line)) resolve();
    });
    child.on('exit', () => reject(new Error(`exited before "${line}": ${stderr}`)));
  });
  const result = new Promise<T>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(lastJsonLine<T>(stdout)) : reject(new Error(`exit ${code}: ${stderr}`)))),
  );
  // Reported through `result`, and `reached` once the test awaits it.
  reached.catch(() => undefined);
  return { reached, result };
}

import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Whether a process with this pid exists and has not exited. Signal 0 checks without delivering
 * anything; EPERM means the process exists but belongs to another user, which still counts as alive
 * (a pidfile's owner must not be taken over while it runs). A zombie (exited, not yet reaped by its
 * parent) answers signal 0 too, yet runs nothing and holds no port or file: it counts as gone. An
 * orphan killed in a container waits for PID 1 to reap it, which may take a while.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !exited(pid);
}

/** Linux: the state in /proc/<pid>/stat is Z (zombie) or X (dead). Elsewhere: unknown, so false. */
function exited(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state === 'Z' || state === 'X';
}

/**
 * Resolves once a child server prints `readyText` on stdout or stderr; rejects (and kills it) when it
 * exits first or has not printed it within `timeoutMs`. Its output keeps being drained afterwards,
 * or the server would block once a pipe fills.
 */
export function waitForReadyLine(
  child: ChildProcess,
  options: { name: string; port: number; readyText: string; timeoutMs?: number },
): Promise<void> {
  const { name, port, readyText, timeoutMs = 30_000 } = options;
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`${name} did not start on port ${port}:\n${output}`)), timeoutMs);
    const onData = (data: Buffer) => {
      output += data.toString();
      if (!output.includes(readyText)) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.stdout?.resume();
      child.stderr?.resume();
      resolve();
    };
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.stdin?.end();
      child.kill('SIGKILL');
      reject(error);
    };
    const onExit = (code: number | null) => fail(new Error(`${name} exited with code ${code}:\n${output}`));
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

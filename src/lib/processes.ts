/**
 * Whether a process with this pid exists. Signal 0 checks without delivering anything; EPERM means
 * the process exists but belongs to another user, which still counts as alive (a pidfile's owner
 * must not be taken over while it runs).
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { processAlive } from '../../src/lib/processes';
import { eventually } from '../support/wait';

const stateOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.charAt(stat.lastIndexOf(')') + 2);
};

describe('processAlive', () => {
  test('a running process is alive; this process too', () => {
    expect(processAlive(process.pid)).toBe(true);
  });

  test('a pid no process has is not alive', async () => {
    const child = spawn('true');
    const pid = child.pid!;
    await new Promise((resolve) => child.once('exit', resolve));

    expect(processAlive(pid)).toBe(false);
  });

  test('a zombie (exited, its parent never reaps it) answers signal 0 but is not alive', async () => {
    // The shell starts a short sleep, prints its pid, then becomes `sleep 30`, which never waits:
    // the short sleep ends as a zombie whose parent is still running.
    const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = await new Promise<number>((resolve) =>
        parent.stdout.once('data', (data: Buffer) => resolve(Number.parseInt(data.toString(), 10))),
      );
      await eventually(
        async () => stateOf(pid),
        (state) => state === 'Z',
        5_000,
      );

      expect(() => process.kill(pid, 0)).not.toThrow();
      expect(processAlive(pid)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

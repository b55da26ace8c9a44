import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';

/**
 * CPU profile of this process over the measured runs only (not start-up or warm-up), written as a
 * .cpuprofile that Chrome DevTools or bench/tools/profile-summary.ts reads. Enabled by `--profile`.
 */
export async function startCpuProfile(dir: string | undefined, name: string): Promise<() => Promise<string | undefined>> {
  if (!dir) return async () => undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${name}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    return file;
  };
}

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');

/** `npm pack` of packages/<name> into `dir`; returns the tarball's path. */
export async function packPackage(name: string, dir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: join(ROOT, 'packages', name),
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return join(dir, info.filename);
}

/**
 * A new project in a temp folder outside the repository, with the packed `packages` (names under
 * packages/) installed the way a user installs them: `npm install <tarball>… <extra>…`, `extra`
 * (e.g. `@types/react`) at the repository's versions. `--prefer-offline`: what npm's cache holds
 * (the repository's own install filled it) is not asked of the registry again.
 */
export async function installTarballs(names: string[], extra: string[] = []): Promise<{ project: string; tarballs: string[] }> {
  const project = await mkdtemp(join(tmpdir(), 'sb-pack-'));
  const tarballs: string[] = [];
  for (const name of names) tarballs.push(await packPackage(name, project));
  const rootLock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  const pinned = extra.map((name) => `${name}@${rootLock.packages[`node_modules/${name}`]?.version ?? 'latest'}`);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: basename(project), private: true, type: 'module' }, null, 2));
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs, ...pinned], {
    cwd: project,
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  return { project, tarballs };
}

/** The paths inside a tarball. */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tzf', tarball]);
  return stdout.split('\n').filter(Boolean);
}

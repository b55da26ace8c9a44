import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');

/** `npm pack` of packages/<name> into `dir`; returns the tarball's path. */
export async function packPackage(name: string, dir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: join(ROOT, 'packages', name), env: { ...process.env, npm_config_loglevel: 'error' } });
  const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return join(dir, info.filename);
}

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

/**
 * A lockfile for a fresh project holding `tarballs` and the given extra packages, each dependency
 * pinned to the version and integrity the repository's own lockfile has, so that `npm ci --offline`
 * installs it from the tarballs and npm's cache alone (the repository's `npm install` filled the
 * cache with exactly these). Without a lock npm would need the registry's package documents, which
 * an offline cache does not hold.
 */
async function lockFor(project: string, tarballs: Array<{ file: string; manifest: LockEntry & { name: string } }>, extra: string[]): Promise<object> {
  const rootLock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const packages: Record<string, LockEntry> = {};
  const rootDeps: Record<string, string> = {};
  const queue: string[] = [];
  /** Where `dep`, required from the package at `from`, sits in the repository's tree. */
  const locate = (from: string, dep: string): string | undefined => {
    let base = from;
    for (;;) {
      const candidate = `${base ? `${base}/` : ''}node_modules/${dep}`;
      if (rootLock.packages[candidate]) return candidate;
      if (!base) return undefined;
      const cut = base.lastIndexOf('/node_modules/');
      base = cut === -1 ? '' : base.slice(0, cut);
    }
  };
  const want = (from: string, deps: Record<string, string> | undefined) => {
    for (const dep of Object.keys(deps ?? {})) {
      if (tarballs.some((t) => t.manifest.name === dep)) continue;
      const at = locate(from, dep);
      if (!at) throw new Error(`${dep} (needed by ${from || 'the project'}) is not in package-lock.json`);
      if (!packages[at]) queue.push(at);
      packages[at] = packages[at] ?? {};
    }
  };
  for (const { file, manifest } of tarballs) {
    rootDeps[manifest.name] = `file:${basename(file)}`;
    packages[`node_modules/${manifest.name}`] = { version: manifest.version, resolved: `file:${basename(file)}`, dependencies: manifest.dependencies, peerDependencies: manifest.peerDependencies };
    want('', manifest.dependencies);
    want('', manifest.peerDependencies);
  }
  for (const name of extra) {
    rootDeps[name] = rootLock.packages[`node_modules/${name}`]?.version ?? '*';
    want('', { [name]: '*' });
  }
  while (queue.length) {
    const at = queue.shift()!;
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = rootLock.packages[at] as LockEntry & { dev?: boolean; devOptional?: boolean; peer?: boolean };
    packages[at] = entry;
    want(at, entry.dependencies);
    want(at, entry.optionalDependencies);
  }
  return { name: basename(project), lockfileVersion: 3, requires: true, packages: { '': { name: basename(project), dependencies: rootDeps }, ...packages } };
}

/**
 * A new project in a temp folder with the packed `packages` (names under packages/) installed by
 * `npm ci --offline`, plus `extra` packages (e.g. `react`, `typescript`) at the repository's versions.
 */
export async function installTarballs(names: string[], extra: string[] = []): Promise<{ project: string; tarballs: string[] }> {
  const project = await mkdtemp(join(tmpdir(), 'sb-pack-'));
  const tarballs: Array<{ file: string; manifest: LockEntry & { name: string } }> = [];
  for (const name of names) {
    const file = await packPackage(name, project);
    const manifest = JSON.parse(await readFile(join(ROOT, 'packages', name, 'package.json'), 'utf8')) as LockEntry & { name: string };
    tarballs.push({ file, manifest });
  }
  const lock = await lockFor(project, tarballs, extra);
  const dependencies = (lock as { packages: Record<string, { dependencies?: Record<string, string> }> }).packages[''].dependencies;
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: basename(project), private: true, type: 'module', dependencies }, null, 2));
  await writeFile(join(project, 'package-lock.json'), JSON.stringify(lock, null, 2));
  await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: project, env: { ...process.env, npm_config_loglevel: 'error' } });
  return { project, tarballs: tarballs.map((t) => t.file) };
}

/** The paths inside a tarball. */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tzf', tarball]);
  return stdout.split('\n').filter(Boolean);
}

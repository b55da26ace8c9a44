/**
 * Builds the workspace packages: `@switchboard/client` and `@switchboard/react`.
 * esbuild bundles each package's `src/` into ESM in `dist/` (dependencies stay imports), tsc emits
 * the type declarations, and the client also gets a browser bundle with socket.io-client inside
 * (`dist/browser/`), which the web console loads. A package is rebuilt only when a file under its
 * `src/` (or its package.json) is newer than its build stamp, so `npm start` and `npm test` call this
 * at every start for almost nothing.
 *
 *   node scripts/build-packages.cjs            build what is stale
 *   node scripts/build-packages.cjs --force    rebuild everything
 *   node scripts/build-packages.cjs client     one package
 *   node scripts/build-packages.cjs --no-types JavaScript only (a production image has no tsc)
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');

/** Each package: its entry points, the browser bundle if any. */
const PACKAGES = {
  client: {
    entries: ['index.ts', 'node-files.ts', 'testing/index.ts', 'events.ts', 'protocol.ts'],
    browser: { entry: 'browser.ts', out: 'browser/switchboard-client.js', external: ['ws'] },
  },
  react: {
    entries: ['index.ts'],
  },
};

function newest(dir, start) {
  let latest = start;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    latest = entry.isDirectory() ? newest(full, latest) : Math.max(latest, fs.statSync(full).mtimeMs);
  }
  return latest;
}

function stampOf(pkgDir) {
  return path.join(pkgDir, 'dist', '.stamp');
}

/** The files a build of package `name` must have written. */
function outputs(name) {
  const spec = PACKAGES[name];
  return [...spec.entries.map((entry) => entry.replace(/\.tsx?$/, '.js')), ...(spec.browser ? [spec.browser.out] : [])];
}

function isFresh(name, pkgDir, types) {
  try {
    const sources = newest(path.join(pkgDir, 'src'), fs.statSync(path.join(pkgDir, 'package.json')).mtimeMs);
    const stamp = JSON.parse(fs.readFileSync(stampOf(pkgDir), 'utf8'));
    if (!outputs(name).every((file) => fs.existsSync(path.join(pkgDir, 'dist', file)))) return false;
    return (stamp.types || !types) && fs.statSync(stampOf(pkgDir)).mtimeMs >= Math.max(sources, fs.statSync(__filename).mtimeMs);
  } catch {
    return false;
  }
}

/**
 * The tsc that emits the declarations, as a command line: TypeScript 7's native compiler (installed
 * as `typescript-7`) with one checker, under half the CPU of 6.0's for the same declarations, else
 * the `typescript` package's; none in a production install (both are devDependencies), which
 * builds without declarations.
 */
function findTsc() {
  const candidates = [
    ['typescript-7', ['--checkers', '1']],
    ['typescript', []],
  ];
  for (const [name, args] of candidates) {
    try {
      const root = path.dirname(require.resolve(`${name}/package.json`, { paths: [ROOT] }));
      return [path.join(root, 'bin', 'tsc'), ...args];
    } catch {
      // not installed: try the next
    }
  }
  return undefined;
}

/** tsc writes `from './x'`; Node's ESM resolution (and `moduleResolution: nodenext`) needs `./x.js`. */
function addJsExtensions(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) addJsExtensions(full);
    else if (entry.name.endsWith('.d.ts')) {
      const text = fs.readFileSync(full, 'utf8');
      const fixed = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+?)(['"])/g, (match, head, spec, tail) =>
        /\.(js|json)$/.test(spec) ? match : `${head}${spec}.js${tail}`,
      );
      if (fixed !== text) fs.writeFileSync(full, fixed);
    }
  }
}

async function buildPackage(name, types) {
  const spec = PACKAGES[name];
  const pkgDir = path.join(ROOT, 'packages', name);
  const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const external = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {}), 'ws', 'node:*'];
  // Built aside and swapped in, so a concurrent reader (a test, a start) never sees half a dist/.
  const tmp = path.join(pkgDir, `.dist-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  const esbuild = require('esbuild');
  await esbuild.build({
    entryPoints: spec.entries.map((entry) => path.join(pkgDir, 'src', entry)),
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    external,
    jsx: 'automatic',
    sourcemap: true,
    logLevel: 'warning',
  });
  if (spec.browser) {
    await esbuild.build({
      entryPoints: [path.join(pkgDir, 'src', spec.browser.entry)],
      outdir: path.join(tmp, path.dirname(spec.browser.out)),
      entryNames: path.basename(spec.browser.out, '.js'),
      bundle: true,
      // One file: a split build evaluates its shared chunks before the entry's first import, so
      // zod's schemas would be built before `zod-jitless` turns its compiler off.
      splitting: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      external: spec.browser.external,
      minify: true,
      sourcemap: true,
      logLevel: 'warning',
    });
  }
  if (types) {
    const tsc = findTsc();
    if (!tsc) throw new Error('declarations asked for, but no TypeScript is installed');
    execFileSync(process.execPath, [...tsc, '-p', path.join(pkgDir, 'tsconfig.json'), '--outDir', tmp], { cwd: ROOT, stdio: 'inherit' });
    addJsExtensions(tmp);
  }
  fs.writeFileSync(path.join(tmp, '.stamp'), JSON.stringify({ builtAt: new Date().toISOString(), types }));
  const dist = path.join(pkgDir, 'dist');
  const old = path.join(pkgDir, `.dist-old-${process.pid}`);
  if (fs.existsSync(dist)) fs.renameSync(dist, old);
  fs.renameSync(tmp, dist);
  fs.rmSync(old, { recursive: true, force: true });
}

/**
 * Builds the named packages (all by default) that are stale; returns the names built. Declarations
 * are emitted when TypeScript is installed, unless `types: false`.
 */
async function buildPackages({ names = Object.keys(PACKAGES), force = false, types = findTsc() !== undefined } = {}) {
  const built = [];
  for (const name of names) {
    if (!PACKAGES[name]) throw new Error(`unknown package ${name}`);
    const pkgDir = path.join(ROOT, 'packages', name);
    if (!fs.existsSync(path.join(pkgDir, 'package.json'))) continue;
    if (!force && isFresh(name, pkgDir, types)) continue;
    await buildPackage(name, types);
    built.push(name);
  }
  return built;
}

module.exports = { buildPackages, PACKAGES };

if (require.main === module) {
  const args = process.argv.slice(2);
  const force = args.includes('--force');
  const names = args.filter((arg) => !arg.startsWith('--'));
  buildPackages({ names: names.length ? names : undefined, force, types: args.includes('--no-types') ? false : undefined }).then(
    (built) => process.stderr.write(built.length ? `built ${built.join(', ')}\n` : 'packages up to date\n'),
    (error) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}

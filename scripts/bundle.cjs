/**
 * The esbuild bundle of src/ that `npm start` and the `switchboard` command run (.build/main.cjs:
 * src/cli.ts and everything it imports). It is rebuilt only when a file under src/ or config/ (or
 * package.json) is newer than it, so a warm start runs plain JavaScript.
 * Packages stay external (loaded from node_modules), and dynamic imports stay lazy, so an API-only
 * process still never evaluates the worker role or the connectors. The test run builds it once in
 * its global setup, so the processes its tests start share one build.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const OUT_DIR = path.join(ROOT, '.build');
const OUT = path.join(OUT_DIR, 'main.cjs');
const SOURCES = ['src', 'config', 'packages/client/src'];

/** The newest mtime (ms) under the source folders and of package.json. */
function newestSource() {
  let newest = fs.statSync(path.join(ROOT, 'package.json')).mtimeMs;
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else newest = Math.max(newest, fs.statSync(full).mtimeMs);
    }
  };
  for (const dir of SOURCES) walk(path.join(ROOT, dir));
  return newest;
}

function isFresh() {
  try {
    return fs.statSync(OUT).mtimeMs >= newestSource();
  } catch {
    return false;
  }
}

/** Source files that locate files beside themselves keep their own folder as __dirname. */
const keepDirname = {
  name: 'keep-dirname',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const source = fs.readFileSync(args.path, 'utf8');
      if (!source.includes('__dirname')) return undefined;
      return { contents: source.replace(/\b__dirname\b/g, JSON.stringify(path.dirname(args.path))), loader: 'ts' };
    });
  },
};

/** Bundles src/cli.ts into OUT (written aside, then renamed, so a concurrent start never runs half a file). */
async function build() {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const tmp = `${OUT}.${process.pid}.tmp`;
  await require('esbuild').build({
    entryPoints: [path.join(ROOT, 'src/cli.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${process.versions.node.split('.')[0]}`,
    packages: 'external',
    sourcemap: 'inline',
    sourcesContent: false,
    outfile: tmp,
    plugins: [keepDirname],
    logLevel: 'warning',
  });
  fs.renameSync(tmp, OUT);
}

/**
 * Builds the workspace packages (the console serves the client's browser bundle; `packages: false`
 * leaves them), then the bundle when it is stale; resolves with the bundle's path. The bundle
 * exports the command line's `main(argv)`.
 */
async function ensureBundle({ quiet = false, packages = true } = {}) {
  if (packages) await require('./build-packages.cjs').buildPackages();
  if (!isFresh()) {
    if (!quiet) process.stdout.write('Building Switchboard into .build/ (first start, or sources changed)…\n');
    await build();
  }
  return OUT;
}

module.exports = { ensureBundle, OUT, OUT_DIR };

// `node scripts/bundle.cjs`: build what is stale, e.g. before the benchmark starts its processes.
if (require.main === module)
  ensureBundle().catch((error) => {
    process.stderr.write(`Switchboard could not be built: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });

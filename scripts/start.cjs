/**
 * `npm start`: runs Switchboard from a bundle of src/. Compiling the TypeScript
 * tree through tsx's loader at every start cost about 1.5 s of CPU (the transform, its loader
 * thread's round trips, source maps); the bundle is rebuilt with esbuild (~0.5 s) only when a
 * file under src/ or config/ (or package.json) is newer than it, so a warm start runs plain
 * JavaScript. Packages stay external (loaded from node_modules as before), and dynamic imports stay
 * lazy, so an API-only process still never evaluates the worker role or the connectors.
 */
'use strict';
// First: a too-old Node says so in one line instead of failing later.
require('../bin/node-version.cjs').checkNodeVersion();
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const OUT_DIR = path.join(ROOT, '.build');

// V8's compiled code of the bundle and of every package it loads, kept on disk between starts: a
// warm start then skips compiling ~0.3 s of JavaScript. Node checks each entry against its source,
// so an edited file is compiled afresh. The CLI flushes it once Switchboard is ready.
require('node:module').enableCompileCache?.(path.join(OUT_DIR, 'compile-cache'));
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

/** Bundles src/main.ts into OUT (written aside, then renamed, so a concurrent start never runs half a file). */
async function build() {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const tmp = `${OUT}.${process.pid}.tmp`;
  await require('esbuild').build({
    entryPoints: [path.join(ROOT, 'src/main.ts')],
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

// The bundle carries an inline source map: NODE_OPTIONS=--enable-source-maps makes stack traces name
// the .ts files. It is off by default because Node then parses every package's map too (~0.2 s).
// The workspace packages first: the console serves the client's browser bundle.
require('./build-packages.cjs')
  .buildPackages()
  .then(() => {
    if (isFresh()) return undefined;
    process.stdout.write('Building Switchboard into .build/ (first start, or sources changed)…\n');
    return build();
  })
  .then(
    () => require(OUT),
    (error) => {
      process.stderr.write(`\nSwitchboard could not be built: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type RequestHandler } from 'express';
import helmet from 'helmet';

/** Where the console's static files live (plain ES modules, no build step: 0023). */
export const WEB_CONSOLE_DIR = path.resolve(__dirname, '../../web');

/** The client SDK's browser build (packages/client), which the console imports. */
export const SDK_BROWSER_DIR = path.resolve(__dirname, '../../packages/client/dist/browser');

/**
 * Builds the SDK's browser bundle when it is missing (a start that skipped `npm start` and
 * `npm test`, which build it), once per process; the console's requests for it wait for the build.
 */
let sdkBuild: Promise<void> | undefined;
function ensureSdkBundle(dir: string): Promise<void> {
  if (existsSync(path.join(dir, 'switchboard-client.js'))) return Promise.resolve();
  // In a child process: the build script is plain Node (no bundler or test runner in between).
  sdkBuild ??= new Promise<void>((resolve, reject) => {
    const script = path.resolve(__dirname, '../../scripts/build-packages.cjs');
    execFile(process.execPath, [script, '--no-types', 'client'], { timeout: 120_000 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`the client SDK's browser bundle could not be built: ${stderr || error.message}`)) : resolve(),
    );
  }).finally(() => (sdkBuild = undefined));
  return sdkBuild;
}

/** The Socket.IO browser bundle the console imports, from the installed socket.io-client. */
function socketIoClientDir(): string | null {
  try {
    // The package's `exports` hide dist/socket.io.esm.min.js from require.resolve; its package.json is exported.
    return path.join(path.dirname(require.resolve('socket.io-client/package.json')), 'dist');
  } catch {
    return null;
  }
}

/**
 * A policy with no defaults but these: only our own origin for scripts (never inline), fonts,
 * forms and the base URL; no plugins. Each page adds what it needs.
 */
const policy = (directives: { styleSrc: string[]; imgSrc: string[]; connectSrc: string[]; frameAncestors: string[]; fontSrc?: string[] }) =>
  helmet.contentSecurityPolicy({
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      baseUri: ["'self'"],
      scriptSrc: ["'self'"],
      scriptSrcAttr: ["'none'"],
      objectSrc: ["'none'"],
      formAction: ["'self'"],
      ...directives,
    },
  });

/**
 * The console's Content-Security-Policy, replacing helmet's default on its routes only. Still no
 * inline scripts or styles; what it adds: `connect-src ws: wss:` for the Socket.IO websocket,
 * `img-src http: https:` for `image` blocks (their URLs point anywhere), and no
 * `upgrade-insecure-requests`, which would send a console opened over plain HTTP on a LAN address
 * to an HTTPS port that does not exist (TLS is the proxy's job).
 */
const consoleCsp: RequestHandler = policy({
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:', 'http:', 'https:'],
  connectSrc: ["'self'", 'ws:', 'wss:'],
  fontSrc: ["'self'"],
  frameAncestors: ["'none'"],
});

/**
 * The embed preview's policy: what a site embedding the widget allows it (its shadow root carries
 * its own `<style>`, hence `'unsafe-inline'` for styles only), and framed by the console alone.
 */
const embedPreviewCsp: RequestHandler = policy({
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  frameAncestors: ["'self'"],
});

/**
 * The web console: `GET /` answers its page, `/console/*` its modules and styles,
 * `/console/sdk/*` the client SDK's browser build, and `/console/vendor/*` the Socket.IO client
 * bundle (the Socket.IO server runs with `serveClient: false`, and engine.io owns every path under
 * `/socket.io/`).
 */
export function webConsoleRouter(options: { dir?: string; sdkDir?: string } = {}): Router {
  const dir = options.dir ?? WEB_CONSOLE_DIR;
  const sdkDir = options.sdkDir ?? SDK_BROWSER_DIR;
  const router = Router();
  if (!existsSync(path.join(dir, 'index.html'))) return router;
  const noStore = { etag: true, lastModified: true, maxAge: 0, index: false, fallthrough: true } as const;

  router.get('/', consoleCsp, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(path.join(dir, 'index.html'));
  });
  // A page of this origin that loads /embed.js with the token in its fragment (never sent to a server).
  router.get('/console/embed-preview.html', embedPreviewCsp, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('X-Frame-Options', 'SAMEORIGIN');
    res.sendFile(path.join(dir, 'embed-preview.html'));
  });
  router.use(
    '/console/sdk',
    consoleCsp,
    (_req, _res, next) => void ensureSdkBundle(sdkDir).then(() => next(), next),
    express.static(sdkDir, noStore),
  );
  const vendor = socketIoClientDir();
  if (vendor) router.use('/console/vendor', consoleCsp, express.static(vendor, noStore));
  router.use('/console', consoleCsp, express.static(dir, noStore));
  return router;
}

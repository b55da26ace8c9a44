import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type RequestHandler } from 'express';
import helmet from 'helmet';

/** Where the console's static files live (plain ES modules, no build step: 0023). */
export const WEB_CONSOLE_DIR = path.resolve(__dirname, '../../web');

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
 * The console's Content-Security-Policy, replacing helmet's default on its routes only. Still no
 * inline scripts or styles; what it adds: `connect-src ws: wss:` for the Socket.IO websocket,
 * `img-src http: https:` for `image` blocks (their URLs point anywhere), and no
 * `upgrade-insecure-requests`, which would send a console opened over plain HTTP on a LAN address
 * to an HTTPS port that does not exist (TLS is the proxy's job).
 */
const consoleCsp: RequestHandler = helmet.contentSecurityPolicy({
  useDefaults: false,
  directives: {
    defaultSrc: ["'self'"],
    baseUri: ["'self'"],
    scriptSrc: ["'self'"],
    scriptSrcAttr: ["'none'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:', 'http:', 'https:'],
    connectSrc: ["'self'", 'ws:', 'wss:'],
    fontSrc: ["'self'"],
    objectSrc: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
});

/**
 * The web console: `GET /` answers its page, `/console/*` its modules and styles, and
 * `/console/vendor/*` the Socket.IO client bundle (the Socket.IO server runs with
 * `serveClient: false`, and engine.io owns every path under `/socket.io/`).
 */
export function webConsoleRouter(options: { dir?: string } = {}): Router {
  const dir = options.dir ?? WEB_CONSOLE_DIR;
  const router = Router();
  if (!existsSync(path.join(dir, 'index.html'))) return router;
  const noStore = { etag: true, lastModified: true, maxAge: 0, index: false, fallthrough: true } as const;

  router.get('/', consoleCsp, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(path.join(dir, 'index.html'));
  });
  const vendor = socketIoClientDir();
  if (vendor) router.use('/console/vendor', consoleCsp, express.static(vendor, noStore));
  router.use('/console', consoleCsp, express.static(dir, noStore));
  return router;
}

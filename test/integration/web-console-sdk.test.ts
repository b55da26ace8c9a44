import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import express from 'express';
import { SDK_BROWSER_DIR, webConsoleRouter } from '../../src/http/web-console';

const WEB = resolve(__dirname, '../../web');

/**
 * The console imports the built client SDK (served at /console/sdk/) instead of carrying
 * its own transport and SSE parser (decision 0130).
 */
describe('web console: the built SDK, not a copy', () => {
  test('web/api.js, web/sse.js and web/canvas-sync.js are thin modules over /console/sdk/switchboard-client.js', async () => {
    for (const file of ['api.js', 'sse.js', 'canvas-sync.js']) {
      const source = await readFile(join(WEB, file), 'utf8');
      expect(source).toMatch(/from '\/console\/sdk\/switchboard-client\.js'/);
      const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      // No transport or parser of their own: no fetch() calls, no line splitting of the event stream.
      expect(code).not.toMatch(/\bfetch\(/);
      expect(code).not.toMatch(/\\r\\n|TextDecoder|getReader/);
      // No sequencer of their own either: the catch-up logic (seq gaps, `ahead` buffers) is the SDK's.
      expect(code).not.toMatch(/\.ahead\b|state\.last\b/);
    }
  });

  test('GET /console/sdk/switchboard-client.js serves the browser build, with the console CSP; it is one file that imports nothing beside it', async () => {
    const app = express().use(webConsoleRouter());
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const response = await fetch(`${base}/console/sdk/switchboard-client.js`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/javascript/);
      expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
      const body = await response.text();
      expect(body).toBe(await readFile(join(SDK_BROWSER_DIR, 'switchboard-client.js'), 'utf8'));
      // One file: zod's compiler is turned off before any schema is built, which a split build cannot order.
      expect([...body.matchAll(/from\s*"\.\/|import\("\.\//g)]).toEqual([]);
      expect(body).toContain('jitless:!0');
      expect((await fetch(`${base}/console/sdk/../../package.json`)).status).not.toBe(200);
    } finally {
      server.close();
    }
  });
});

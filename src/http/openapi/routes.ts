import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Router } from 'express';
import { precompressed } from './compressed';
import { API_BASE_PATH } from './document';

export const OPENAPI_PATH = `${API_BASE_PATH}/openapi.json`;
export const DOCS_PATH = '/docs';

/** The Swagger UI files /docs uses, served from the installed `swagger-ui-dist` (no CDN). */
export const DOCS_ASSETS = [
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'swagger-ui-standalone-preset.js',
  'favicon-32x32.png',
  'favicon-16x16.png',
];
const INIT_SCRIPT = 'switchboard-init.js';

const DOCS_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Switchboard API reference</title>
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <link rel="stylesheet" href="${DOCS_PATH}/swagger-ui.css" />
    <link rel="icon" type="image/png" href="${DOCS_PATH}/favicon-32x32.png" sizes="32x32" />
    <link rel="icon" type="image/png" href="${DOCS_PATH}/favicon-16x16.png" sizes="16x16" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${DOCS_PATH}/swagger-ui-bundle.js" charset="utf-8"></script>
    <script src="${DOCS_PATH}/swagger-ui-standalone-preset.js" charset="utf-8"></script>
    <script src="${DOCS_PATH}/${INIT_SCRIPT}" charset="utf-8"></script>
  </body>
</html>
`;

/** Asset URLs carry the swagger-ui-dist version, so a browser may keep them for a year. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const TYPES: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'application/javascript; charset=utf-8', png: 'image/png' };

/**
 * The Swagger UI reference at `/docs`, reading `GET /api/v1/openapi.json` (a declared route,
 * `src/http/routes/index.ts`). Every file is read and compressed once, then served from memory with
 * brotli/gzip and an ETag; the page names its assets with `?v=<swagger-ui-dist version>` and they
 * are cached as immutable. Nothing loads from another host.
 */
export function openApiRoutes(): Router {
  const swaggerUiDir = dirname(require.resolve('swagger-ui-dist/package.json'));
  const version = (JSON.parse(readFileSync(join(swaggerUiDir, 'package.json'), 'utf8')) as { version: string }).version;
  const html = DOCS_HTML.replace(/(href|src)="(\/docs\/[^"]+)"/g, (_all, attr: string, url: string) => `${attr}="${url}?v=${version}"`);
  const page = precompressed(() => html);
  const init = precompressed(() => readFileSync(join(__dirname, 'docs-init.js')));
  const assets = new Map(DOCS_ASSETS.map((name) => [name, precompressed(() => readFileSync(join(swaggerUiDir, name)))]));

  const router = Router();
  router.get(DOCS_PATH, (req, res, next) => void page(req, res, 'text/html; charset=utf-8', 'no-cache').catch(next));
  router.get(
    `${DOCS_PATH}/${INIT_SCRIPT}`,
    (req, res, next) => void init(req, res, TYPES.js, req.query.v === version ? IMMUTABLE : 'no-cache').catch(next),
  );
  // Only the listed files: the package also ships a demo page and an initializer for the petstore.
  router.get(`${DOCS_PATH}/:file`, (req, res, next) => {
    const serve = assets.get(req.params.file);
    if (!serve) return next();
    const type = TYPES[req.params.file.split('.').pop()!];
    void serve(req, res, type, req.query.v === version ? IMMUTABLE : 'public, max-age=3600').catch(next);
  });
  return router;
}

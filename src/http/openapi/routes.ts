import { dirname, join } from 'node:path';
import express, { Router } from 'express';
import { API_BASE_PATH } from './document';

export const OPENAPI_PATH = `${API_BASE_PATH}/openapi.json`;
export const DOCS_PATH = '/docs';

/** The Swagger UI files /docs uses, served from the installed `swagger-ui-dist` (no CDN). */
export const DOCS_ASSETS = ['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'favicon-32x32.png', 'favicon-16x16.png'];
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

/**
 * The Swagger UI reference at `/docs`, reading `GET /api/v1/openapi.json` (a declared route,
 * `src/http/routes/index.ts`).
 */
export function openApiRoutes(): Router {
  const swaggerUiDir = dirname(require.resolve('swagger-ui-dist/package.json'));
  const assets = new Set(DOCS_ASSETS);
  const serveAsset = express.static(swaggerUiDir, { index: false, redirect: false, fallthrough: true, maxAge: '1h' });

  const router = Router();
  router.get(DOCS_PATH, (_req, res) => {
    res.type('html').send(DOCS_HTML);
  });
  router.get(`${DOCS_PATH}/${INIT_SCRIPT}`, (_req, res) => {
    res.type('application/javascript').sendFile(join(__dirname, 'docs-init.js'));
  });
  // Only the listed files: the package also ships a demo page and an initializer for the petstore.
  router.use(DOCS_PATH, (req, res, next) => (req.method === 'GET' || req.method === 'HEAD') && assets.has(req.path.slice(1)) ? serveAsset(req, res, next) : next());
  return router;
}

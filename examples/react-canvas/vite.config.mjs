// The React example, built with Vite 7 (JSX through Vite's own esbuild, no React plugin).
// `@switchboard/client` and `@switchboard/react` resolve through the npm workspace links to the
// packages' builds in this repository (the same files their tarballs hold); `npm start` and `npm
// test` build them.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
// `npx vite examples/react-canvas` proxies the API and the sockets to this server.
const target = process.env.SWITCHBOARD_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  root: here('.'),
  esbuild: { jsx: 'automatic' },
  server: {
    proxy: {
      '/api': target,
      '/socket.io': { target, ws: true },
    },
  },
  build: { outDir: here('dist'), emptyOutDir: true },
  logLevel: 'warn',
});

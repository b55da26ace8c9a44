# Switchboard: one image for every role (api, worker, scheduler); SWITCHBOARD_ROLES or the command
# (`switchboard api|worker|scheduler|migrate`) picks. Node 24: the LTS line in November 2026.
FROM node:24-bookworm-slim

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/.data

WORKDIR /app

# Dependencies first, so a source change does not reinstall them. Production dependencies only:
# tsx, which runs the TypeScript sources, is one; jest, swc, pino-pretty and the type checker are not.
# `npm install` honours package-lock.json as it is. `npm ci` would refuse it: the lock lacks other
# platforms' optional binaries (swc, msgpackr-extract, unrs-resolver), which the registry this
# project is built against does not serve (docs/decisions/0092).
COPY package.json package-lock.json ./
# npm keeps TypeScript even so: it is both our devDependency and an optional peer of the dashboard's
# validator (valibot, for its types only), and npm's --omit=dev keeps a package reached by both kinds
# of edge. The image carries no build tools, so it goes here (docs/decisions/0166).
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force \
 && rm -rf node_modules/typescript node_modules/typescript-7

COPY bin ./bin
COPY config ./config
COPY src ./src
COPY web ./web
COPY tsconfig.json ./
# The client package: the server imports its wire protocol (`@switchboard/client/events`, `/protocol`),
# and the console loads its browser bundle, built here (esbuild is a production dependency; no
# declarations). The install above ran before packages/ was here, so the workspace link npm makes
# (node_modules/@switchboard/client → packages/client) is made here.
COPY packages ./packages
COPY scripts/build-packages.cjs ./scripts/build-packages.cjs
RUN node scripts/build-packages.cjs --no-types client \
 && mkdir -p node_modules/@switchboard && ln -s ../../packages/client node_modules/@switchboard/client

# DATA_DIR is only written in embedded mode (no DATABASE_URL / no JWT_SECRET); make it ours anyway.
RUN mkdir -p /app/.data && chown node:node /app/.data
# The image's non-root user (uid 1000).
USER node

EXPOSE 3000

# Liveness of the HTTP server (api role). Worker and scheduler containers check METRICS_PORT
# instead (docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# One process, PID 1 itself: bin/switchboard.mjs registers tsx's loader in-process (no tsx, npm or
# npx launcher in between, none of which would pass SIGTERM on), so `docker stop` lets it drain.
CMD ["node", "bin/switchboard.mjs", "start"]

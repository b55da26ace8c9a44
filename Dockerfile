# Switchboard: one image for every role (api, worker, scheduler); SWITCHBOARD_ROLES picks.
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/.data

WORKDIR /app

# Dependencies first, so a source change does not reinstall them. tsx, which runs the TypeScript
# sources, is a runtime dependency; jest, swc and the type checker are dev-only and left out.
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force

COPY config ./config
COPY src ./src
COPY web ./web
COPY tsconfig.json ./

# DATA_DIR is only written in embedded mode (no DATABASE_URL / no JWT_SECRET); make it ours anyway.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node

EXPOSE 3000

# Liveness of the HTTP server (api role). Worker and scheduler containers serve no HTTP: the
# compose file disables this check for them.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# `tsx src/main.ts`, the same as `npx tsx src/main.ts` but without npx in between: npm/npx do not
# pass SIGTERM on to their child, while tsx does, so `docker stop` lets Switchboard drain.
CMD ["node_modules/.bin/tsx", "src/main.ts"]

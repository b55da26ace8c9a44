/**
 * The folders of src/ form layers, and imports only go down (docs/architecture.md, "Layers").
 * A folder may import its own files and the folders of lower layers; folders of one layer never
 * import each other, so the folder graph can have no cycle. `npm run check:layers` runs this in CI,
 * with a check for import cycles between files, which covers the client package's src/ too (the
 * layers are src/'s only).
 *
 * Type-only imports count too: a type names the module it comes from as much as a value does.
 */

/** Bottom first. Each entry is one layer: the folders under src/ (or root files) in it. */
const layers = [
  ['config', 'schemas'], // contracts: configuration schema, zod schemas, the wire protocol re-exported from the client package
  ['lib'], // Redis, streams, errors, logging: nothing of the domain
  ['observability', 'models'], // metrics and traces; the repositories (PostgreSQL)
  ['auth', 'connectors', 'producers', 'account'], // doors: identity and limits, external APIs, queues
  ['budget'], // the budget door and model prices
  ['runs'], // the run kernel: one state machine for every kind of run
  ['ai', 'demo-model'], // the model gateway; the offline demo model beside it
  ['devices', 'mcp'], // device RPC over the socket channel; MCP servers' tools over Streamable HTTP
  ['knowledge'], // knowledge bases: parsing, chunking, ingestion and hybrid search (the assistant's tool searches them)
  ['turns'], // the tool-using turn: tool contract, tool loop, call pipeline, parking, approvals, turn events
  ['coding'], // the coding turn: agents' routing, plans, diff previews, code tools
  ['generation', 'assistant'], // features
  ['flows', 'agents'], // features built on the turn engine
  ['evals'], // evaluations: datasets run through flow versions, scored and compared
  ['webhooks'], // webhooks out: run ends and approval requests as signed POSTs (SSRF rules of the HTTP tools)
  ['triggers'], // what starts an agentflow unattended: schedules, signed inbound webhooks, connectors' mails
  ['realtime'], // edge: Socket.IO and WebSocket, and the canvas rooms' log
  ['http'], // edge: HTTP and SSE (an SSE feed may read the canvas log)
  ['workers'], // edge: BullMQ processors
  ['app', 'sdkgen'], // composition; the SDK generator reads the HTTP routes
  ['cli.ts'],
  ['main.ts'],
  ['catalogs'], // documentation data: the protocol catalogs the docs are generated from
];

const escape = (name) => name.replace(/[.]/g, '\\.');
const path = (names) => `^src/(${names.map(escape).join('|')})(/|$)`;

const forbidden = [
  {
    name: 'no-circular',
    comment: 'Files import each other in a circle: break it by moving what both need one layer down.',
    severity: 'error',
    from: { path: '^(src|config|packages/[^/]+/src)/' },
    to: { circular: true },
  },
  {
    name: 'model-gateway-door',
    comment:
      'Outside src/ai, model calls and their types and errors are reached through src/ai/model-gateway.ts, not the modules behind it.',
    severity: 'error',
    from: { path: '^src/', pathNot: '^src/ai/' },
    to: { path: '^src/ai/(model-turn|model-errors|model-attempt|model-fallback|call-budget|call-span|call-usage)[.]ts$' },
  },
  {
    name: 'folder-in-a-layer',
    comment: 'Every folder of src/ belongs to a layer: add a new folder to `layers` in .dependency-cruiser.cjs.',
    severity: 'error',
    from: { path: '^src/', pathNot: path(layers.flat()) },
    to: {},
  },
];

layers.forEach((layer, index) => {
  const above = layers.slice(index).flat();
  for (const folder of layer) {
    const notAllowed = above.filter((other) => other !== folder);
    if (notAllowed.length === 0) continue;
    forbidden.push({
      name: `layers:${folder}`,
      comment: `src/${folder} may import only its own files and the layers below it (.dependency-cruiser.cjs).`,
      severity: 'error',
      from: { path: path([folder]) },
      to: { path: path(notAllowed) },
    });
  }
});

module.exports = {
  forbidden,
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|packages/[^/]+/dist)' },
  },
};

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { useCluster } from '../support/cluster';
import { createCanvas, registerUser, request as httpRequest } from '../support/http';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { loadedModules, recordingLoadedModules, type SwitchboardProcess } from '../support/processes';
import { connectCanvas, join, record } from '../support/sockets';
import { readSse } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';

const PROMPT = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';
const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

/** Runs one generation over HTTP with a socket client in the canvas room; resolves once the client got every block. */
async function generateOnce(api: SwitchboardProcess, name: string) {
  const base = `${api.url}/api/v1`;
  const user = await registerUser(base, name);
  const canvasId = await createCanvas(base, user);
  const socket = await connectCanvas(api.url!, user.accessToken);
  try {
    expect((await join(socket, canvasId)).ok).toBe(true);
    const chunks = record(socket, 'blocks_bulk_added_chunk');
    const sse = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: PROMPT },
      until: (m) => m.event === 'complete' || m.event === 'error',
      timeoutMs: 60_000,
    });
    expect(sse.messages.at(-1)!.event).toBe('complete');
    await waitUntil(() => chunks.flatMap((c) => c.blocks).length === 5, 30_000);
    return { canvasId, user };
  } finally {
    socket.close();
  }
}

/**
 * The SDK's packages (the process runs the bundle of src/, so our module that drives them is inside
 * it: the packages it imports lazily are what shows whether it ran). `@opentelemetry/api` itself is
 * left out: prom-client loads it (for exemplars) in every process, and on its own it records nothing.
 */
const TRACING_CODE = /@opentelemetry\/(sdk-trace|exporter-trace-otlp-http|context-async-hooks|resources|core)\//;

describe('OpenTelemetry tracing across the api and worker processes', () => {
  const cluster = useCluster('otel', { BROADCAST_CHUNK_SIZE: '2', OTEL_BSP_SCHEDULE_DELAY: '100' });
  let receiver: OtlpReceiver;
  let dir: string;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-otel-'));
  });
  afterAll(async () => {
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('one trace runs from the HTTP request through the enqueue, the worker job and its model call to the socket emits', async () => {
    // Given an api process and a worker process sending spans to a local collector
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_SERVICE_NAME: 'switchboard-test' };
    const apiModules = path.join(dir, 'api-on.json');
    const [api, worker] = await Promise.all([
      cluster.spawn({
        ...otel,
        SWITCHBOARD_ROLES: 'api',
        PORT: '0',
        ...recordingLoadedModules(apiModules),
      }),
      cluster.spawn({ ...otel, SWITCHBOARD_ROLES: 'worker' }),
    ]);

    // When a generation is requested over HTTP with a socket client listening
    const { user } = await generateOnce(api, 'Traced');

    // Then the collector receives one trace holding the request, the job, the model call and the emits
    const inTrace = (trace: string) => receiver.spans.filter((span) => span.traceId === trace);
    const request = await eventually(
      async () =>
        receiver.spans.find((span) => span.kind === SERVER && span.attributes['http.route'] === '/api/v1/canvases/:id/ai/generate-stream'),
      (span) => span !== undefined,
      30_000,
    );
    const trace = request!.traceId;
    const spans = await eventually(
      async () => inTrace(trace),
      (found) =>
        found.some((span) => span.name === 'process generation') &&
        found.some((span) => span.name === 'process broadcast') &&
        found.some((span) => span.kind === CLIENT && span.attributes['gen_ai.operation.name'] === 'chat') &&
        found.some((span) => span.name === 'send broadcast') &&
        found
          .filter((span) => span.name === 'emit blocks_bulk_added_chunk')
          .reduce((sum, emit) => sum + Number(emit.attributes['messaging.batch.message_count']), 0) === 3,
      30_000,
    );
    const byId = new Map(spans.map((span) => [span.spanId, span]));
    const ancestors = (span: ReceivedSpan): ReceivedSpan[] => {
      const chain: ReceivedSpan[] = [];
      for (let at = span.parentSpanId && byId.get(span.parentSpanId); at; at = at.parentSpanId && byId.get(at.parentSpanId)) chain.push(at);
      return chain;
    };

    expect(request!.name).toBe('POST /api/v1/canvases/:id/ai/generate-stream');
    expect(request!.service).toBe('switchboard-test');
    expect(request!.attributes['http.response.status_code']).toBe(200);
    // the enqueue is the request's child, and the job its own child, in the other process
    const send = spans.find((span) => span.name === 'send generation')!;
    expect(send.kind).toBe(PRODUCER);
    expect(send.parentSpanId).toBe(request!.spanId);
    const job = spans.find((span) => span.name === 'process generation')!;
    expect(job.kind).toBe(CONSUMER);
    expect(job.parentSpanId).toBe(send.spanId);
    expect(job.attributes['messaging.destination.name']).toBe('generation');
    // the model call runs inside the job, with its model, provider and tokens
    const model = spans.find((span) => span.kind === CLIENT && span.attributes['gen_ai.operation.name'] === 'chat')!;
    expect(ancestors(model)).toContain(job);
    expect(model.attributes['gen_ai.request.model']).toEqual(expect.any(String));
    expect(model.attributes['gen_ai.provider.name']).toEqual(expect.any(String));
    expect(model.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
    // the blocks' emits come from the broadcast job the generation queued, still in the request's trace
    const broadcast = spans.find((span) => span.name === 'process broadcast')!;
    expect(ancestors(broadcast)).toEqual(expect.arrayContaining([job, request]));
    const emits = spans.filter((span) => span.name === 'emit blocks_bulk_added_chunk');
    for (const emit of emits) {
      expect(emit.kind).toBe(PRODUCER);
      expect(ancestors(emit)).toContain(broadcast);
    }
    expect(emits.reduce((sum, emit) => sum + Number(emit.attributes['messaging.batch.message_count']), 0)).toBe(3);
    if (process.env.PRINT_TRACE) printTree(spans, request!);
    // the prompt never reaches a span
    expect(JSON.stringify(spans)).not.toContain('book venue');

    // A caller outside TRUST_PROXY gets a new trace linked to its own; a malformed traceparent
    // starts a new trace, never an error (test/security/tracing-trust.test.ts covers a trusted proxy)
    const caller = { trace: '4bf92f3577b34da6a3ce929d0e0e4736', span: '00f067aa0ba902b7' };
    const list = (traceparent: string) =>
      httpRequest('GET', `${api.url}/api/v1/canvases`, { token: user.accessToken, headers: { traceparent } });
    // (probes and scrapes are not traced: every pod answers them every few seconds)
    expect((await httpRequest('GET', `${api.url}/healthz`)).status).toBe(200);
    expect((await list(`00-${caller.trace}-${caller.span}-01`)).status).toBe(200);
    expect((await list('00-not-a-trace-at-all-01')).status).toBe(200);
    const listed = await eventually(
      async () => receiver.spans.filter((span) => span.kind === SERVER && span.name === 'GET /api/v1/canvases'),
      (found) => found.length === 2,
      30_000,
    );
    const linked = listed.find((span) => span.links.some((link) => link.traceId === caller.trace))!;
    const fresh = listed.find((span) => span !== linked)!;
    expect(linked.links).toEqual([{ traceId: caller.trace, spanId: caller.span, traceState: undefined }]);
    expect({ trace: linked.traceId === caller.trace, parent: linked.parentSpanId }).toEqual({ trace: false, parent: undefined });
    expect(fresh.traceId).not.toBe(caller.trace);
    expect(fresh.parentSpanId).toBeUndefined();
    expect(fresh.links).toEqual([]);

    // and the api process did load the SDK (what the next test asserts is absent)
    await api.stop('SIGTERM');
    await worker.stop('SIGTERM');
    // Stopping flushed every span: the probe's would be here by now
    expect(receiver.spans.filter((span) => span.kind === SERVER && span.attributes['url.path'] === '/healthz')).toEqual([]);
    const sdk = loadedModules(apiModules).filter((file) => TRACING_CODE.test(file));
    expect(sdk.some((file) => file.includes('/@opentelemetry/sdk-trace/'))).toBe(true);
  }, 180_000);

  test('without an endpoint, or with OTEL_SDK_DISABLED=true, no tracing code is loaded and nothing is sent', async () => {
    // Given one process with no endpoint and one whose SDK is disabled although an endpoint is set
    const silent = await startOtlpReceiver();
    try {
      const unsetModules = path.join(dir, 'unset.json');
      const disabledModules = path.join(dir, 'disabled.json');
      const [unset, disabled] = await Promise.all([
        cluster.spawn({
          SWITCHBOARD_ROLES: 'api,worker',
          PORT: '0',
          OTEL_SERVICE_NAME: 'quiet',
          ...recordingLoadedModules(unsetModules),
        }),
        cluster.spawn({
          SWITCHBOARD_ROLES: 'api,worker',
          PORT: '0',
          OTEL_EXPORTER_OTLP_ENDPOINT: silent.endpoint,
          OTEL_SDK_DISABLED: 'true',
          ...recordingLoadedModules(disabledModules),
        }),
      ]);

      // When each runs a generation and stops
      await Promise.all([generateOnce(unset, 'Quiet'), generateOnce(disabled, 'Disabled')]);
      expect(await unset.stop('SIGTERM')).toBe(0);
      expect(await disabled.stop('SIGTERM')).toBe(0);

      // Then neither loaded the SDK, and the collector heard nothing
      for (const file of [unsetModules, disabledModules]) {
        const loaded = loadedModules(file);
        expect(loaded.some((module) => module.includes('/node_modules/express/'))).toBe(true);
        expect(loaded.filter((module) => TRACING_CODE.test(module))).toEqual([]);
      }
      expect(silent.requests).toBe(0);
    } finally {
      await silent.close();
    }
  }, 180_000);
});

/** The spans of one trace as an indented tree (PRINT_TRACE=1: how docs/operations.md's example was made). */
function printTree(spans: ReceivedSpan[], root: ReceivedSpan): void {
  const kinds = ['', 'internal', 'server', 'client', 'producer', 'consumer'];
  const lines: string[] = [];
  const walk = (span: ReceivedSpan, depth: number) => {
    const ms = (span.endMs - span.startMs).toFixed(1);
    const at = (span.startMs - root.startMs).toFixed(1);
    lines.push(`${'  '.repeat(depth)}${span.name} | ${kinds[span.kind]} | ${span.roles} | +${at} ms | ${ms} ms`);
    for (const child of spans.filter((other) => other.parentSpanId === span.spanId).sort((a, b) => a.startMs - b.startMs))
      walk(child, depth + 1);
  };
  walk(root, 0);
  process.stdout.write(`${lines.join('\n')}\n`);
}

import { createLogger } from '../../src/lib/logger';
import { currentTraceparent, startSpan, startTracing, tracingOn, withSpan } from '../../src/observability/tracing';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver';

/**
 * The SDK behind the seams, in this process, exporting to a local OTLP receiver: parent and child
 * links, remote parents, what a failed span keeps (a code, never a message), and the flush on stop.
 */
describe('tracing SDK: spans as the seams make them', () => {
  let receiver: OtlpReceiver;
  let stop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // The exporter reads its endpoint from the process's environment, as in a deployment.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
    process.env.OTEL_SERVICE_NAME = 'sdk-test';
    stop = await startTracing(process.env, createLogger({ level: 'silent' }), { roles: ['worker'], version: 'test' });
  });
  afterAll(async () => {
    await stop?.();
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_SERVICE_NAME;
    await receiver.close();
  });

  test('children, remote parents and failures, flushed by stop', async () => {
    expect(tracingOn()).toBe(true);
    // Given a job span with a model call and an emit inside it, continuing a remote parent
    const remote = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    let carried: string | undefined;
    await withSpan(
      'process generation',
      'consumer',
      { 'messaging.destination.name': 'generation' },
      async () => {
        await withSpan('chat demo', 'client', { 'gen_ai.request.model': 'demo' }, async (span) => {
          span!.setAttributes({ 'gen_ai.usage.output_tokens': 12, ignored: undefined });
        });
        await withSpan('send broadcast', 'producer', {}, async () => {
          carried = currentTraceparent();
        });
        // And one that fails with a message quoting the user's text
        const failure = Object.assign(new Error('the prompt said: book venue'), { code: 'timeout' });
        await expect(withSpan('device read', 'client', {}, () => Promise.reject(failure))).rejects.toBe(failure);
        const plain = new TypeError('row 42 has secret text');
        await expect(withSpan('emit x', 'producer', {}, () => Promise.reject(plain))).rejects.toBe(plain);
      },
      remote,
    );
    // A started span (the HTTP one) continues its carrier's trace
    const server = startSpan('GET', 'server', {}, { traceparent: remote })!;
    server.rename('GET /api/v1/canvases');
    server.run(() => undefined);
    server.end({ code: 'http_503' });

    // When tracing stops, every span is flushed
    await stop!();
    stop = undefined;
    expect(tracingOn()).toBe(false);

    // Then
    const byName = new Map(receiver.spans.map((span) => [span.name, span]));
    const job = byName.get('process generation')!;
    expect(job.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(job.parentSpanId).toBe('b7ad6b7169203331');
    expect(job.service).toBe('sdk-test');
    for (const child of ['chat demo', 'send broadcast', 'device read', 'emit x']) {
      expect({ child, parent: byName.get(child)?.parentSpanId }).toEqual({ child, parent: job.spanId });
      expect(byName.get(child)!.traceId).toBe(job.traceId);
    }
    expect(byName.get('chat demo')!.attributes).toEqual({ 'gen_ai.request.model': 'demo', 'gen_ai.usage.output_tokens': 12 });
    // the traceparent a job would carry names the producer span
    expect(carried).toBe(`00-${job.traceId}-${byName.get('send broadcast')!.spanId}-01`);
    // a failure keeps its code or class, never its message
    expect(byName.get('device read')!.status).toMatchObject({ code: 2, message: 'timeout' });
    expect(byName.get('device read')!.attributes['error.type']).toBe('timeout');
    expect(byName.get('emit x')!.attributes['error.type']).toBe('TypeError');
    expect(JSON.stringify(receiver.spans)).not.toMatch(/book venue|secret text/);
    const request = byName.get('GET /api/v1/canvases')!;
    expect({ trace: request.traceId, parent: request.parentSpanId, kind: request.kind }).toEqual({
      trace: '0af7651916cd43dd8448eb211c80319c',
      parent: 'b7ad6b7169203331',
      kind: 2,
    });
    expect(request.attributes['error.type']).toBe('http_503');
  });
});

import { generateKillingItsWorker, useCluster } from '../support/cluster';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import type { CanvasClient } from '../support/sockets';
import { eventually } from '../support/wait';

const PROMPT = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';

/**
 * Tracing through a crash: the worker running a traced generation is killed with SIGKILL; the job
 * runs again on the other worker, and that run is still part of the request's trace (the job's data
 * carries the trace context, not the dead process).
 */
describe('a traced generation whose worker is killed mid-job', () => {
  const env: Record<string, string> = {
    WORKER_LOCK_MS: '2000',
    DEMO_LLM_DELAY_MS: '150',
    LOG_LEVEL: 'info',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  const cluster = useCluster('otelcrash', env);
  const sockets: CanvasClient[] = [];
  let receiver: OtlpReceiver;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // Read when each process is spawned, after this.
    env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
  });
  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await receiver.close();
  });

  test("the retried job's span on the surviving worker continues the request's trace, down to the emits", async () => {
    const { workerA, workerB, base, user, canvasId, clients } = await cluster.apiWorkersAndWatchers('TracedCrash');
    sockets.push(...clients);

    // At the first block, the worker that logged the start of this generation is killed.
    const { sse, killed, survivor } = await generateKillingItsWorker(base, user.accessToken, canvasId, [workerA, workerB], PROMPT);
    expect(killed).toBeDefined();
    expect(sse.messages.at(-1)!.event).toBe('complete');

    const request = await eventually(
      async () => receiver.spans.find((span) => span.attributes['http.route'] === '/api/v1/canvases/:id/ai/generate-stream'),
      (span) => span !== undefined,
      30_000,
    );
    // The emit's parents end after it, so they may arrive in a later export: wait for the whole chain.
    const chainOf = (spans: ReceivedSpan[], from: ReceivedSpan): ReceivedSpan[] => {
      const byId = new Map(spans.map((span) => [span.spanId, span]));
      const chain: ReceivedSpan[] = [];
      for (let at = from.parentSpanId && byId.get(from.parentSpanId); at; at = at.parentSpanId && byId.get(at.parentSpanId)) chain.push(at);
      return chain;
    };
    const rerunOf = (spans: ReceivedSpan[]) => spans.find((span) => span.name === 'process generation' && span.pid === survivor.child.pid);
    const emitOf = (spans: ReceivedSpan[]) => spans.find((span) => span.name === 'emit blocks_bulk_added_chunk');
    const trace = await eventually(
      async () => receiver.spans.filter((span) => span.traceId === request!.traceId),
      (spans) => {
        const rerun = rerunOf(spans);
        const emit = emitOf(spans);
        return rerun !== undefined && emit !== undefined && chainOf(spans, emit).includes(rerun);
      },
      30_000,
    );
    const send = trace.find((span) => span.name === 'send generation')!;
    expect(send.parentSpanId).toBe(request!.spanId);
    const rerun = rerunOf(trace)!;
    expect(rerun.parentSpanId).toBe(send.spanId);
    // the blocks were emitted by the broadcast the rerun queued, on the survivor
    const chain = chainOf(trace, emitOf(trace)!);
    expect(chain.map((span) => span.name)).toEqual([
      'process broadcast',
      'send broadcast',
      'process generation',
      'send generation',
      request!.name,
    ]);
    expect(chain.every((span) => span.name === request!.name || span.name === 'send generation' || span.pid === survivor.child.pid)).toBe(
      true,
    );
    // The killed run's own job span never ended, so it was never sent (what a kill -9 loses, as documented).
    expect(trace.filter((span) => span.name === 'process generation' && span.pid === killed!.child.pid)).toEqual([]);
  }, 120_000);
});

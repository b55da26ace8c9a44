import { Metrics } from '../../src/observability/metrics';

/** Gauges read at scrape time: what the api role hands them is read on every scrape, not before. */
describe('Metrics: scrape-time gauges', () => {
  test('open SSE streams and queue job counts are read when scraped; a queue whose counts fail keeps its last values and is reported', async () => {
    const metrics = new Metrics();
    let open = 0;
    let failing = false;
    const failures: string[] = [];
    metrics.trackOpenStreams(() => open);
    metrics.trackQueues(
      ['generation', 'broadcast'],
      async (queue): Promise<Record<string, number>> => {
        if (failing && queue === 'broadcast') throw new Error('redis down');
        return queue === 'generation' ? { active: open, waiting: 4 } : { failed: 1 };
      },
      (queue, error) => failures.push(`${queue}: ${(error as Error).message}`),
    );

    open = 3;
    let text = await metrics.registry.metrics();
    expect(text).toMatch(/^switchboard_sse_streams_open 3$/m);
    expect(text).toMatch(/^switchboard_queue_jobs\{queue="generation",state="active"\} 3$/m);
    expect(text).toMatch(/^switchboard_queue_jobs\{queue="generation",state="waiting"\} 4$/m);
    expect(text).toMatch(/^switchboard_queue_jobs\{queue="broadcast",state="failed"\} 1$/m);
    expect(text).toMatch(/^switchboard_queue_jobs\{queue="broadcast",state="completed"\} 0$/m);
    expect(failures).toEqual([]);

    open = 7;
    failing = true;
    text = await metrics.registry.metrics();
    expect(text).toMatch(/^switchboard_sse_streams_open 7$/m);
    expect(text).toMatch(/^switchboard_queue_jobs\{queue="generation",state="active"\} 7$/m);
    expect(text).toMatch(/^switchboard_queue_jobs\{queue="broadcast",state="failed"\} 1$/m);
    expect(failures).toEqual(['broadcast: redis down']);
  });

  test('before the api role says what to read, the gauges are there at zero', async () => {
    const text = await new Metrics().registry.metrics();
    expect(text).toMatch(/^switchboard_sse_streams_open 0$/m);
    expect(text).not.toMatch(/^switchboard_queue_jobs\{/m);
  });

  test("the process's own families are there unless turned off (a host that starts many instances in one process)", async () => {
    expect(await new Metrics().registry.metrics()).toMatch(/^switchboard_process_cpu_seconds_total /m);
    const without = await new Metrics({ defaultMetrics: false }).registry.metrics();
    expect(without).not.toMatch(/^switchboard_(process|nodejs)_/m);
    expect(without).toMatch(/^switchboard_sse_streams_open 0$/m);
  });
});

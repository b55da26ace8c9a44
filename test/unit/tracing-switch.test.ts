import { traceparentOf, TRACEPARENT_FIELD } from '../../src/producers/define';
import { currentTraceparent, startSpan, tracingOn, tracingRequested, withSpan } from '../../src/observability/tracing';
import { samplerFrom } from '../../src/observability/tracing-sdk';

const ENDPOINT = 'http://collector:4318';
const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('tracing: when it is on, and what a job may carry', () => {
  test('on only with an OTLP endpoint, and neither disabled nor exporting to none', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: 'switchboard' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${ENDPOINT}/v1/traces` })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_SDK_DISABLED: 'TRUE' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_SDK_DISABLED: 'false' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
  });

  test('off, the seams run the work as it is: no span, no traceparent, the same result and the same error', async () => {
    expect(tracingOn()).toBe(false);
    const seen: unknown[] = [];
    await expect(withSpan('x', 'internal', { a: 1 }, async (span) => (seen.push(span), 42))).resolves.toBe(42);
    expect(seen).toEqual([undefined]);
    await expect(withSpan('x', 'internal', {}, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(startSpan('GET', 'server', {}, { traceparent: VALID })).toBeUndefined();
    expect(currentTraceparent()).toBeUndefined();
  });

  test("a job's traceparent is read only when it is a well-formed W3C value", () => {
    expect(TRACEPARENT_FIELD).toBe('traceparent');
    expect(traceparentOf({ generationId: 'g', traceparent: VALID })).toBe(VALID);
    for (const bad of [undefined, null, 42, '', 'garbage', `${VALID}-extra`, VALID.toUpperCase(), `${VALID}\n`, 'x'.repeat(10_000)])
      expect(traceparentOf({ traceparent: bad })).toBeUndefined();
    expect(traceparentOf(null)).toBeUndefined();
    expect(traceparentOf('a string payload')).toBeUndefined();
  });

  test('OTEL_TRACES_SAMPLER and its argument pick the sampler the specification names; anything else is the default', () => {
    expect(samplerFrom({}).toString()).toMatch(/^ParentBased\{root=AlwaysOnSampler/);
    expect(samplerFrom({ OTEL_TRACES_SAMPLER: 'always_off' }).toString()).toBe('AlwaysOffSampler');
    expect(samplerFrom({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).toString()).toBe(
      'TraceIdRatioBased{0.25}',
    );
    expect(samplerFrom({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '7' }).toString()).toMatch(
      /^ParentBased\{root=TraceIdRatioBased\{1\}/,
    );
    expect(samplerFrom({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }).toString()).toMatch(/^ParentBased\{root=AlwaysOffSampler/);
    expect(samplerFrom({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }).toString()).toMatch(/^ParentBased\{root=AlwaysOnSampler/);
  });
});

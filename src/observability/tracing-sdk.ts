import type { EventEmitter } from 'node:events';
import {
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  diag,
  DiagLogLevel,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, hostDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import type { Logger } from '../lib/logger';
import type { ActiveSpan, CarrierTrust, SpanAttributes, SpanKindName, StartedSpan, TracingBackend, TracingEnv } from './tracing-types';
import { genAiContentCaptured, MAX_CAPTURED_CHARS, TRUNCATION_MARK } from './genai';

/**
 * The OpenTelemetry SDK behind tracing.ts, loaded only when tracing is on: a tracer provider with
 * a batching OTLP/HTTP (JSON) exporter, AsyncLocalStorage context and W3C trace context. The
 * exporter reads `OTEL_EXPORTER_OTLP_*` itself and the resource reads `OTEL_SERVICE_NAME` and
 * `OTEL_RESOURCE_ATTRIBUTES`; this trace SDK release no longer reads the sampler and batch
 * variables, so they are read here as the specification defines them.
 */

const KINDS: Record<SpanKindName, SpanKind> = {
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
  internal: SpanKind.INTERNAL,
};

export function createTracingBackend(env: TracingEnv, logger: Logger, about: { roles: string[]; version: string }): TracingBackend {
  const log = logger.child({ component: 'tracing' });
  // The SDK's own complaints (an unreachable collector, a refused export) go to our log, at warn.
  diag.setLogger(
    {
      error: (message) => log.warn(message),
      warn: (message) => log.warn(message),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    DiagLogLevel.WARN,
  );
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const propagator = new W3CTraceContextPropagator();

  const resource = resourceFromAttributes({
    'service.name': 'switchboard',
    'service.version': about.version,
    'switchboard.roles': about.roles.join(','),
    'process.pid': process.pid,
  }).merge(detectResources({ detectors: [hostDetector, envDetector] }));
  const exporter = new OTLPTraceExporter();
  const provider = new TracerProvider({
    resource,
    sampler: samplerFrom(env, log),
    // A device id or a route is short; a bound keeps a hostile value from bloating every export.
    // Captured prompts and answers (opt-in) are cut by their own bound instead (genai.ts).
    spanLimits: {
      attributeValueLengthLimit:
        positive(env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT) ?? (genAiContentCaptured() ? MAX_CAPTURED_CHARS + TRUNCATION_MARK.length : 256),
    },
    spanProcessors: [new BatchSpanProcessor({ exporter, ...batchOptions(env) })],
  });
  const tracer = provider.getTracer('switchboard', about.version);
  log.info({ endpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT }, 'tracing on');

  const parentOf = (traceparent: string | undefined): Context =>
    traceparent === undefined
      ? context.active()
      : propagator.extract(ROOT_CONTEXT, { traceparent: traceparent.slice(0, 64) }, defaultTextMapGetter);

  return {
    async inSpan<T>(
      name: string,
      kind: SpanKindName,
      attributes: SpanAttributes,
      fn: (span: ActiveSpan) => Promise<T>,
      traceparent?: string,
    ): Promise<T> {
      const parent = parentOf(traceparent);
      const span = tracer.startSpan(name, { kind: KINDS[kind], attributes: defined(attributes) }, parent);
      try {
        const result = await context.with(trace.setSpan(parent, span), () => fn(handle(span)));
        span.end();
        return result;
      } catch (error) {
        fail(span, error);
        span.end();
        throw error;
      }
    },

    startSpan(
      name: string,
      kind: SpanKindName,
      attributes: SpanAttributes,
      carrier?: Record<string, unknown>,
      from: CarrierTrust = 'trusted',
    ): StartedSpan {
      let parent = carrier ? propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter) : context.active();
      let links: Link[] | undefined;
      if (carrier && from === 'stranger') {
        // A stranger's trace is linked, never continued: a new root, sampled here, without its tracestate.
        const theirs = trace.getSpanContext(propagator.extract(ROOT_CONTEXT, { traceparent: carrier.traceparent }, defaultTextMapGetter));
        if (theirs && isSpanContextValid(theirs))
          links = [{ context: { traceId: theirs.traceId, spanId: theirs.spanId, traceFlags: theirs.traceFlags } }];
        parent = ROOT_CONTEXT;
      }
      const span = tracer.startSpan(name, { kind: KINDS[kind], attributes: defined(attributes), links, root: from === 'stranger' }, parent);
      const active = trace.setSpan(parent, span);
      return {
        ...handle(span),
        run: (fn) => context.with(active, fn),
        bind: (emitter: EventEmitter) => void context.bind(active, emitter),
        end: (error?: unknown) => {
          if (error !== undefined) fail(span, error);
          span.end();
        },
      };
    },

    traceparent(): string | undefined {
      const carrier: Record<string, string> = {};
      propagator.inject(context.active(), carrier, defaultTextMapSetter);
      return carrier.traceparent;
    },

    async shutdown(): Promise<void> {
      // Flushes what the batch still holds, then stops exporting; a collector that refuses the last
      // batch fails this step (the shutdown logs it) but the process's context is released anyway.
      try {
        await provider.shutdown();
      } finally {
        context.disable();
        diag.disable();
      }
    },
  };
}

function handle(span: Span): ActiveSpan {
  return {
    setAttributes: (attributes) => void span.setAttributes(defined(attributes)),
    rename: (name) => void span.updateName(name),
  };
}

/** Marks a span failed by the error's code or class: messages may quote prompts, rows or user text. */
function fail(span: Span, error: unknown): void {
  const code = (error as { code?: unknown } | null)?.code;
  const type = typeof code === 'string' ? code : error instanceof Error ? error.name : 'error';
  span.setAttribute('error.type', type);
  span.setStatus({ code: SpanStatusCode.ERROR, message: type });
}

function defined(attributes: SpanAttributes): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}

/** `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, as the specification names them (default `parentbased_always_on`). */
export function samplerFrom(env: TracingEnv, log?: Logger): Sampler {
  const name = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase() || 'parentbased_always_on';
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG);
  const ratio = () => new TraceIdRatioBasedSampler(Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1);
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      log?.warn({ sampler: name }, 'unknown OTEL_TRACES_SAMPLER; using parentbased_always_on');
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** `OTEL_BSP_*`: the batch span processor's delay, queue, batch size and export timeout. */
function positive(value: string | undefined): number | undefined {
  const number = Number(value);
  return value !== undefined && Number.isInteger(number) && number > 0 ? number : undefined;
}

function batchOptions(env: TracingEnv) {
  const options = {
    scheduledDelayMillis: positive(env.OTEL_BSP_SCHEDULE_DELAY),
    maxQueueSize: positive(env.OTEL_BSP_MAX_QUEUE_SIZE),
    maxExportBatchSize: positive(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE),
    exportTimeoutMillis: positive(env.OTEL_BSP_EXPORT_TIMEOUT),
  };
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

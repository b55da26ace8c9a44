import type { Logger } from '../lib/logger';
import type { ActiveSpan, CarrierTrust, SpanAttributes, SpanKindName, StartedSpan, TracingBackend, TracingEnv } from './tracing-types';
import { setGenAiContentCapture } from './genai';

/**
 * Tracing's door. Every seam (HTTP, enqueue, job, model call, device call, socket emit) calls the
 * functions of this module, which import nothing from OpenTelemetry: the SDK (tracing-sdk.ts and
 * the @opentelemetry packages) is loaded by {@link startTracing} only when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Off, a seam pays one check of a module variable.
 */

export type { ActiveSpan, CarrierTrust, SpanAttributes, SpanKindName, StartedSpan, TracingBackend, TracingEnv } from './tracing-types';

let backend: TracingBackend | undefined;
let starting: Promise<TracingBackend> | undefined;
let users = 0;

/**
 * Whether `env` asks for traces: an OTLP endpoint (general or for traces) is set, the SDK is not
 * disabled (`OTEL_SDK_DISABLED=true`) and the traces exporter is not `none`.
 */
export function tracingRequested(env: TracingEnv): boolean {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!endpoint) return false;
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = env.OTEL_TRACES_EXPORTER?.split(',').map((name) => name.trim().toLowerCase());
  return !exporters?.includes('none');
}

/**
 * Starts the SDK when `env` asks for it (once per process, shared by every Switchboard started in
 * it) and resolves with the step that flushes and stops it; undefined, loading nothing, when it
 * does not.
 */
export async function startTracing(
  env: TracingEnv,
  logger: Logger,
  resource: { roles: string[]; version: string },
): Promise<(() => Promise<void>) | undefined> {
  if (!tracingRequested(env)) return undefined;
  setGenAiContentCapture(env);
  starting ??= import('./tracing-sdk').then(({ createTracingBackend }) => createTracingBackend(env, logger, resource));
  backend = await starting;
  users++;
  let stopped = false;
  return async () => {
    if (stopped) return;
    stopped = true;
    if (--users > 0) return;
    const ending = backend;
    backend = undefined;
    starting = undefined;
    await ending?.shutdown();
  };
}

/** Whether spans are being recorded in this process. */
export function tracingOn(): boolean {
  return backend !== undefined;
}

/**
 * Runs `fn` in a span named `name` (a child of the active span, or of `parent`, a W3C
 * `traceparent` carried from another process). The span ends when `fn` settles; a rejection marks
 * it failed. Off, this is `fn(undefined)`.
 */
export function withSpan<T>(
  name: string,
  kind: SpanKindName,
  attributes: SpanAttributes,
  fn: (span: ActiveSpan | undefined) => Promise<T>,
  parent?: string,
): Promise<T> {
  return backend === undefined ? fn(undefined) : backend.inSpan(name, kind, attributes, fn, parent);
}

/**
 * Starts a span for work that ends in a callback rather than a promise: continuing the trace of
 * `carrier` (incoming HTTP headers) when it is `trusted`, else a new trace linked to it (see
 * {@link CarrierTrust}). Undefined when tracing is off.
 */
export function startSpan(
  name: string,
  kind: SpanKindName,
  attributes: SpanAttributes,
  carrier?: Record<string, unknown>,
  from: CarrierTrust = 'trusted',
): StartedSpan | undefined {
  return backend?.startSpan(name, kind, attributes, carrier, from);
}

/** The active span's W3C `traceparent`, for a job's data; undefined when tracing is off or no span is active. */
export function currentTraceparent(): string | undefined {
  return backend?.traceparent();
}

import type { EventEmitter } from 'node:events';

/** The types tracing's door (tracing.ts) and the SDK side (tracing-sdk.ts) share. */

/** What a span may carry: flat values only, never user content (prompts, block text, emails). */
export type SpanAttributes = Record<string, string | number | boolean | string[] | undefined>;

/** The OpenTelemetry span kinds, by name. */
export type SpanKindName = 'server' | 'client' | 'producer' | 'consumer' | 'internal';

/** A span in progress, for what is known only later (tokens, the HTTP route, the status code). */
export interface ActiveSpan {
  setAttributes(attributes: SpanAttributes): void;
  /** Renames the span (the HTTP route template is known once the router matched). */
  rename(name: string): void;
}

/** A span started by hand (the HTTP request's, which ends when the response does). */
export interface StartedSpan extends ActiveSpan {
  /** Runs `fn` with this span as the active one (its children and enqueued jobs continue it). */
  run<T>(fn: () => T): T;
  /** Keeps this span active in the listeners of `emitter` (a request's body arrives in them). */
  bind(emitter: EventEmitter): void;
  /** Ends the span; an error marks it failed (by its class name only: messages may quote users). */
  end(error?: unknown): void;
}

/**
 * Where a carrier (incoming headers) comes from. `trusted`: a process of ours or a proxy we trust,
 * whose `traceparent` (sampling flag included) and `tracestate` are continued. `stranger`: anyone
 * else; the span starts a new trace sampled by our own sampler, links the caller's `traceparent`
 * (so the two traces can be joined) and drops its `tracestate`.
 */
export type CarrierTrust = 'trusted' | 'stranger';

/** What the SDK side implements (tracing-sdk.ts). */
export interface TracingBackend {
  inSpan<T>(
    name: string,
    kind: SpanKindName,
    attributes: SpanAttributes,
    fn: (span: ActiveSpan) => Promise<T>,
    parent?: string,
  ): Promise<T>;
  startSpan(
    name: string,
    kind: SpanKindName,
    attributes: SpanAttributes,
    carrier?: Record<string, unknown>,
    from?: CarrierTrust,
  ): StartedSpan;
  traceparent(): string | undefined;
  shutdown(): Promise<void>;
}

/** The environment variables that switch tracing on and off (the SDK reads the rest itself). */
export interface TracingEnv {
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;
  OTEL_SDK_DISABLED?: string;
  OTEL_TRACES_EXPORTER?: string;
  [name: string]: string | undefined;
}

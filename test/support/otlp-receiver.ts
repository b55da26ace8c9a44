import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One span as an OTLP/HTTP JSON export carries it, with its service's name. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OTLP's numbers: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, unknown>;
  status?: { code?: number; message?: string };
  /** The W3C `tracestate` the span carries ('' or absent: none). */
  traceState?: string;
  /** The spans this one links to (a caller's trace it did not continue). */
  links: Array<{ traceId: string; spanId: string; traceState?: string }>;
  /** Start and end, in milliseconds since the epoch. */
  startMs: number;
  endMs: number;
  /** The process's `switchboard.roles` and `process.pid` resource attributes (which process sent it). */
  roles?: string;
  pid?: number;
}

export interface OtlpReceiver {
  /** What to give `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter adds `/v1/traces`). */
  endpoint: string;
  spans: ReceivedSpan[];
  /** Every request that reached the receiver, whatever its path (a test of "nothing sent" reads it). */
  requests: number;
  close(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}

const valueOf = (value: OtlpValue): unknown =>
  value.stringValue ??
  (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
  value.doubleValue ??
  value.boolValue ??
  value.arrayValue?.values?.map(valueOf);

const attributesOf = (attributes: OtlpAttribute[] = []) => Object.fromEntries(attributes.map(({ key, value }) => [key, valueOf(value)]));

/**
 * A local OpenTelemetry collector for tests: a plain HTTP server that accepts `POST /v1/traces`
 * with an OTLP JSON body, answers 200 `{}` as a collector does, and records each span.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const receiver = { requests: 0 };
  const server: Server = createServer((req, res) => {
    receiver.requests++;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('application/json')) {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans?: Array<{
          resource?: { attributes?: OtlpAttribute[] };
          scopeSpans?: Array<{
            spans?: Array<
              Omit<ReceivedSpan, 'service' | 'attributes' | 'startMs' | 'endMs' | 'roles' | 'pid' | 'links'> & {
                links?: Array<{ traceId: string; spanId: string; traceState?: string }>;
                attributes?: OtlpAttribute[];
                startTimeUnixNano: string;
                endTimeUnixNano: string;
              }
            >;
          }>;
        }>;
      };
      for (const resourceSpans of body.resourceSpans ?? []) {
        const resource = attributesOf(resourceSpans.resource?.attributes);
        const service = String(resource['service.name']);
        for (const scope of resourceSpans.scopeSpans ?? [])
          for (const span of scope.spans ?? [])
            spans.push({
              service,
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId || undefined,
              name: span.name,
              kind: span.kind,
              attributes: attributesOf(span.attributes as OtlpAttribute[] | undefined),
              status: span.status,
              traceState: span.traceState || undefined,
              links: (span.links ?? []).map(({ traceId, spanId, traceState }) => ({
                traceId,
                spanId,
                traceState: traceState || undefined,
              })),
              startMs: Number(BigInt(span.startTimeUnixNano) / 1000n) / 1000,
              endMs: Number(BigInt(span.endTimeUnixNano) / 1000n) / 1000,
              roles: resource['switchboard.roles'] as string | undefined,
              pid: resource['process.pid'] as number | undefined,
            });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    get requests() {
      return receiver.requests;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

const SERVER = 2;
const PRODUCER = 4;

/**
 * Who may steer tracing. A caller outside the trust boundary gets a new trace for its request,
 * sampled by the server, linked to its `traceparent`, without its `tracestate`; so do the jobs its
 * request queues. A proxy named by `TRUST_PROXY` is continued, `tracestate` included. Spans go to a
 * local OTLP receiver; the sampler is the default `parentbased_always_on`, under which an adopted
 * `sampled=00` would hide a request.
 */
describe('security: tracing trusts no stranger', () => {
  let receiver: OtlpReceiver;
  let open: TestApp;
  let behindProxy: TestApp;
  let stranger: TestUser;
  let proxied: TestUser;
  const set = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_BSP_SCHEDULE_DELAY', 'OTEL_SERVICE_NAME'];

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // The SDK reads the exporter's settings from the process's environment, as in a deployment.
    Object.assign(process.env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_SERVICE_NAME: 'trust-test',
    });
    open = await startTestApp();
    behindProxy = await startTestApp({ env: { TRUST_PROXY: 'loopback' } });
    stranger = await registerUser(open.api, 'Stranger');
    proxied = await registerUser(behindProxy.api, 'Proxied');
  }, 120_000);

  afterAll(async () => {
    await behindProxy?.stop();
    await open?.stop();
    for (const name of set) delete process.env[name];
    await receiver?.close();
  }, 60_000);

  const hex = (length: number) => Array.from({ length }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  const serverSpan = (predicate: (span: ReceivedSpan) => boolean, what: string) =>
    eventually(
      async () => receiver.spans.find((span) => span.kind === SERVER && predicate(span)),
      (span) => span !== undefined,
      15_000,
    ).then((span) => {
      if (!span) throw new Error(`no server span: ${what}`);
      return span;
    });

  test('a stranger’s sampled=00 does not hide its request: a new trace, sampled here, linked to theirs, without their tracestate', async () => {
    const theirs = { trace: hex(32), span: hex(16) };
    const res = await request('GET', `${open.api}/canvases`, {
      token: stranger.accessToken,
      headers: { traceparent: `00-${theirs.trace}-${theirs.span}-00`, tracestate: 'attacker=look-at-me' },
    });
    expect(res.status).toBe(200);
    const span = await serverSpan((s) => s.links.some((link) => link.traceId === theirs.trace), 'the stranger’s linked request');
    expect(span.name).toBe('GET /api/v1/canvases');
    expect(span.traceId).not.toBe(theirs.trace);
    expect(span.parentSpanId).toBeUndefined();
    expect(span.links).toEqual([{ traceId: theirs.trace, spanId: theirs.span, traceState: undefined }]);
    expect(span.traceState).toBeUndefined();
    expect(JSON.stringify(receiver.spans)).not.toContain('look-at-me');
  });

  test('a stranger’s sampled=01 does not choose our trace id, and the job its request queues is in our trace', async () => {
    const theirs = { trace: hex(32), span: hex(16) };
    const canvas = await request('POST', `${open.api}/canvases`, {
      token: stranger.accessToken,
      body: { title: 'Traced' },
      headers: { traceparent: `00-${theirs.trace}-${theirs.span}-01`, tracestate: 'attacker=again' },
    });
    expect(canvas.status).toBe(201);
    const generate = await readSse(`${open.api}/canvases/${canvas.body.canvas.id}/ai/generate-stream`, {
      method: 'POST',
      token: stranger.accessToken,
      body: { prompt: 'A heading and a todo' },
      headers: { traceparent: `00-${theirs.trace}-${theirs.span}-01` },
      until: (m) => m.event === 'complete' || m.event === 'error',
      timeoutMs: 30_000,
    });
    expect(generate.status).toBe(200);
    const span = await serverSpan(
      (s) => s.name.includes('/ai/generate-stream') && s.links.some((l) => l.traceId === theirs.trace),
      'the generate request',
    );
    expect(span.traceId).not.toBe(theirs.trace);
    const queued = await eventually(
      async () => receiver.spans.find((s) => s.kind === PRODUCER && s.traceId === span.traceId),
      (found) => found !== undefined,
      15_000,
    );
    expect(queued!.parentSpanId).toBe(span.spanId);
    expect(receiver.spans.filter((s) => s.traceId === theirs.trace)).toEqual([]);
    expect(JSON.stringify(receiver.spans)).not.toContain('attacker=');
  });

  test('a malformed traceparent from a stranger is a plain new trace, never an error', async () => {
    const res = await request('GET', `${open.api}/me`, { token: stranger.accessToken, headers: { traceparent: '00-zz-not-a-trace-01' } });
    expect(res.status).toBe(200);
    const span = await serverSpan((s) => s.name === 'GET /api/v1/me' && s.service === 'trust-test' && !s.parentSpanId, 'the malformed one');
    expect(span.links).toEqual([]);
  });

  test('a proxy named by TRUST_PROXY is continued, tracestate included', async () => {
    const upstream = { trace: hex(32), span: hex(16) };
    const res = await request('GET', `${behindProxy.api}/canvases`, {
      token: proxied.accessToken,
      headers: { traceparent: `00-${upstream.trace}-${upstream.span}-01`, tracestate: 'edge=ok' },
    });
    expect(res.status).toBe(200);
    const span = await serverSpan((s) => s.traceId === upstream.trace, 'the proxied request');
    expect(span.parentSpanId).toBe(upstream.span);
    expect(span.traceState).toBe('edge=ok');
    expect(span.links).toEqual([]);
  });
});

import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ProviderProbe } from '../../src/ai/provider-probe';
import { startTestApp } from '../support/app';
import { request } from '../support/http';

/**
 * `/readyz`'s view of model providers: a provider answering `GET /models` is reachable, one that
 * refuses the key (401, 403) is unauthorized, one that refuses connections, errs or hangs is
 * unreachable, and deep answers are reused for ten seconds so a public
 * probe cannot fan out into a stream of outbound requests.
 */
describe('ProviderProbe', () => {
  let server: http.Server;
  let base: string;
  const seen: Array<{ url?: string; auth?: string }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ url: req.url, auth: req.headers.authorization });
      if (req.url?.startsWith('/ok/')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[]}');
      if (req.url?.startsWith('/hang/')) return; // never answers: the probe's timeout ends it
      if (req.url?.startsWith('/deny/')) return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{}}');
      if (req.url?.startsWith('/forbid/')) return void res.writeHead(403).end();
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('plain readiness checks nothing and reports the last answer; deep probes each provider with its key, and a fresh answer is reused', async () => {
    const refusing = await refusingServer();
    const probe = new ProviderProbe([
      { name: 'up', baseURL: `${base}/ok/v1/`, apiKey: 'k-up' },
      { name: 'erring', baseURL: `${base}/err/v1`, apiKey: 'k-err' },
      { name: 'hanging', baseURL: `${base}/hang/v1`, apiKey: 'k-hang' },
      { name: 'refused', baseURL: `${refusing.url}/v1`, apiKey: 'k-refused' },
      { name: 'denied', baseURL: `${base}/deny/v1`, apiKey: 'k-wrong' },
      { name: 'forbidden', baseURL: `${base}/forbid/v1`, apiKey: 'k-no-access' },
    ]);

    expect(await probe.states(false)).toEqual({
      up: 'unchecked',
      erring: 'unchecked',
      hanging: 'unchecked',
      refused: 'unchecked',
      denied: 'unchecked',
      forbidden: 'unchecked',
    });
    expect(seen).toEqual([]);

    expect(await probe.states(true)).toEqual({
      up: 'reachable',
      erring: 'unreachable',
      hanging: 'unreachable',
      refused: 'unreachable',
      denied: 'unauthorized',
      forbidden: 'unauthorized',
    });
    await refusing.close();
    expect(seen).toEqual(
      expect.arrayContaining([
        { url: '/ok/v1/models', auth: 'Bearer k-up' },
        { url: '/err/v1/models', auth: 'Bearer k-err' },
      ]),
    );
    const probes = seen.length;
    expect(await probe.states(true)).toEqual(await probe.states(false));
    expect(seen).toHaveLength(probes);

    // Past the reuse window, plain readiness still reports the last answer, and asks nobody.
    const later = Date.now() + 11_000;
    jest.spyOn(Date, 'now').mockReturnValue(later);
    try {
      expect((await probe.states(false)).denied).toBe('unauthorized');
      expect(seen).toHaveLength(probes);
    } finally {
      jest.restoreAllMocks();
    }
  });
});

describe('readiness with the model provider down', () => {
  test('/readyz and /health stay 200 and name the provider unreachable: a provider outage is not a reason to take the node out of service', async () => {
    const refusing = await refusingServer();
    const t = await startTestApp({ llmBaseURL: `${refusing.url}/v1` });
    try {
      const ready = await request('GET', `${t.url}/readyz?deep=1`);
      expect(ready.status).toBe(200);
      expect(ready.body).toEqual({
        status: 'ready',
        checks: { redis: 'ok', database: 'ok' },
        providers: { scripted: 'unreachable' },
        queues: expect.objectContaining({ generation: 'consumed', assistant: 'consumed' }),
      });
      const health = await request('GET', `${t.url}/health?deep=1`);
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'ready', providers: { scripted: 'unreachable' } });
    } finally {
      await t.stop();
      await refusing.close();
    }
  });

  test('a provider that refuses the key is `unauthorized` on /readyz and /health, not unreachable', async () => {
    const denying = http.createServer((_req, res) => void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{}}'));
    await new Promise<void>((resolve) => denying.listen(0, '127.0.0.1', resolve));
    const t = await startTestApp({ llmBaseURL: `http://127.0.0.1:${(denying.address() as AddressInfo).port}/v1` });
    try {
      const ready = await request('GET', `${t.url}/readyz?deep=1`);
      expect(ready.status).toBe(200);
      expect(ready.body.providers).toEqual({ scripted: 'unauthorized' });
      expect((await request('GET', `${t.url}/health?deep=1`)).body.providers).toEqual({ scripted: 'unauthorized' });
    } finally {
      await t.stop();
      denying.closeAllConnections();
      await new Promise((resolve) => denying.close(resolve));
    }
  });
});

/**
 * A server of the test's own that takes each connection and drops it at once: a provider nobody
 * can talk to, on a port no other process can take meanwhile (a port found free and closed again
 * can be taken by anyone before the probe connects).
 */
async function refusingServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

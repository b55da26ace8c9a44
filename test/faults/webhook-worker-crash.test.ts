import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';
import { eventually, waitUntil } from '../support/wait';

/**
 * kill -9 of the worker that is sending a webhook: the delivery is not lost. Another worker takes
 * the job once the dead one's lease lapses and sends the same message again (the same
 * `webhook-id`, so a receiver can drop the duplicate), and the log ends `delivered`.
 */
describe('a worker killed in the middle of a webhook delivery', () => {
  let server: http.Server;
  let origin = '';
  const received: string[] = [];
  const cluster = useCluster('webhook-crash', { LOG_LEVEL: 'info' });

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push(String(req.headers['webhook-id']));
        // The first attempt never gets an answer: its worker is killed while it waits.
        if (received.length > 1) res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('another worker sends it again with the same webhook-id; the delivery ends delivered', async () => {
    const env = { WEBHOOK_PRIVATE_ORIGINS: origin, WEBHOOK_TIMEOUT_MS: '60000' };
    const [api, first] = await Promise.all([
      cluster.spawn({ ...env, SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ ...env, SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Crash');
    const created = await request('POST', `${base}/webhooks`, {
      token: user.accessToken,
      body: { url: `${origin}/hook`, events: ['run.succeeded'] },
    });
    expect(created.status).toBe(201);
    const endpointId = created.body.webhook.id;
    await request('POST', `${base}/webhooks/${endpointId}/test`, { token: user.accessToken });

    await waitUntil(() => received.length === 1, 30_000);
    await first.stop('SIGKILL');
    await cluster.spawn({ ...env, SWITCHBOARD_ROLES: 'worker' });

    await waitUntil(() => received.length === 2, 60_000);
    expect(received[1]).toBe(received[0]);
    const log = await eventually(
      () => request('GET', `${base}/webhooks/${endpointId}/deliveries`, { token: user.accessToken }),
      (res) => res.body.deliveries?.[0]?.status === 'delivered',
    );
    expect(log.body.deliveries).toEqual([expect.objectContaining({ id: received[0], status: 'delivered', responseStatus: 200 })]);
  }, 150_000);
});

import http from 'node:http';
import { io, type Socket } from 'socket.io-client';
import { createCanvas, registerUser } from '../support/http';
import { useCluster } from '../support/cluster';
import { connectCanvas, join } from '../support/sockets';

/**
 * Ctrl-C with a console tab open: a websocket and a long-polling Socket.IO client, an event stream
 * and an idle connection, all on keep-alive connections, must not hold the HTTP server open until
 * the shutdown deadline. The process closes them first, runs every later step in time and exits.
 */
describe('a stop with clients connected', () => {
  const cluster = useCluster('shutdown-clients', { DEMO_LLM_DELAY_MS: '50', SHUTDOWN_TIMEOUT_MS: '10000' });
  const opened: Socket[] = [];
  const agent = new http.Agent({ keepAlive: true });
  afterAll(() => {
    opened.forEach((socket) => socket.close());
    agent.destroy();
  });

  test('exits 0 well before the deadline, skipping no step', async () => {
    const node = await cluster.spawn({ PORT: '0' });
    const base = `${node.url}/api/v1`;
    const user = await registerUser(base, 'Stopper');
    const canvasId = await createCanvas(base, user);

    const websocket = await connectCanvas(node.url!, user.accessToken);
    opened.push(websocket);
    await join(websocket, canvasId);
    const polling = io(`${node.url}/canvas`, {
      auth: { token: user.accessToken },
      transports: ['polling'],
      reconnection: false,
      forceNew: true,
    });
    opened.push(polling);
    await new Promise<void>((resolve, reject) => {
      polling.once('connect', () => resolve());
      polling.once('connect_error', reject);
    });
    const disconnected = Promise.all([websocket, polling].map((socket) => new Promise((resolve) => socket.once('disconnect', resolve))));
    // An idle keep-alive connection, as a browser keeps after loading the console.
    await new Promise<void>((resolve, reject) =>
      http.get(`${node.url}/healthz`, { agent }, (res) => res.resume().on('end', resolve)).on('error', reject),
    );

    // A generation's event stream on a keep-alive connection; the stop comes with its first event.
    let stopping: Promise<number | null> | undefined;
    let stoppedAt = 0;
    const body = JSON.stringify({
      prompt: 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph',
    });
    const streamed = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        `${base}/canvases/${canvasId}/ai/generate-stream`,
        {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json', accept: 'text/event-stream' },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
            if (stopping || !text.includes('\n\n')) return;
            stoppedAt = Date.now();
            stopping = node.stop('SIGINT');
          });
          res.on('end', () => resolve(text));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

    expect(streamed).toContain('retry: 1000');
    expect(await stopping).toBe(0);
    const tookMs = Date.now() - stoppedAt;
    await disconnected;
    expect(node.output()).not.toContain('deadline passed');
    expect(node.output()).not.toContain('shutdown step failed');
    expect(tookMs).toBeLessThan(5_000);
  }, 90_000);
});

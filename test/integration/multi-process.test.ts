import { createCanvas, registerUser } from '../support/http';
import { useCluster } from '../support/cluster';
import { connectCanvas, join, record } from '../support/sockets';
import { readSse } from '../support/sse';
import { waitUntil } from '../support/wait';

/**
 * The API and a worker as two real `npm start` processes (chosen by SWITCHBOARD_ROLES) sharing one
 * Redis and one PostgreSQL database: the worker, which serves no HTTP, emits into the API's rooms.
 * PGlite lives inside one process, so this test uses the PostgreSQL server.
 */
describe('api and worker in separate processes', () => {
  const cluster = useCluster('mp', { BROADCAST_CHUNK_SIZE: '2' });

  test('a generation requested on the api process is run by the worker process and reaches a socket client', async () => {
    const [api, worker] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    expect(api.url).toBeDefined();
    expect(worker.output()).toMatch(/roles\s+worker/);
    expect(worker.output()).toMatch(/DEMO model/);

    const apiBase = `${api.url}/api/v1`;
    const user = await registerUser(apiBase, 'Multi');
    const canvasId = await createCanvas(apiBase, user);
    const socket = await connectCanvas(api.url!, user.accessToken);
    try {
      expect((await join(socket, canvasId)).ok).toBe(true);
      const chunks = record(socket, 'blocks_bulk_added_chunk');
      const statuses = record(socket, 'generation_status');

      const sse = await readSse(`${apiBase}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph' },
        until: (m) => m.event === 'complete' || m.event === 'error',
        timeoutMs: 60_000,
      });

      const complete = sse.messages.at(-1)!;
      expect(complete.event).toBe('complete');
      expect(complete.data.blocks.map((b: { type: string }) => b.type)).toEqual(['heading', 'todo', 'todo', 'todo', 'text']);
      await waitUntil(() => chunks.flatMap((c) => c.blocks).length === 5, 30_000);
      expect(chunks.map((c) => c.chunkIndex)).toEqual([0, 1, 2]);
      expect(chunks.flatMap((c) => c.blocks.map((b) => b.id))).toEqual(complete.data.blocks.map((b: { id: string }) => b.id));
      expect(statuses.map((s) => s.stage)).toEqual(expect.arrayContaining(['thinking', 'persisting', 'broadcasting']));
    } finally {
      socket.close();
    }
  }, 150_000);
});

import { useCluster } from '../support/cluster';
import { createCanvas, registerUser, request } from '../support/http';
import { startRedisCluster, type LocalRedisCluster } from '../support/redis-cluster';
import { connectCanvas, join, record, type CanvasClient } from '../support/sockets';
import { readSse, type SseMessage } from '../support/sse';
import { waitUntil } from '../support/wait';

const PROMPT = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';
const ended = (m: SseMessage) => ['complete', 'error', 'cancelled'].includes(m.event ?? '');

/**
 * kill -9 of the API node a generation was asked on, mid-generation, with every process on a
 * three-master Redis Cluster: the worker finishes it, the client resumes its stream on the other
 * API node from Last-Event-ID with nothing missing or repeated, and a member on that node gets
 * every block, as on one Redis.
 */
describe('an API node killed mid-generation on a Redis Cluster', () => {
  let redisCluster: LocalRedisCluster | undefined;
  const cluster = useCluster(
    'cl-crash',
    { DEMO_LLM_DELAY_MS: '150', LOG_LEVEL: 'info' },
    {
      redis: () => ({ REDIS_CLUSTER_NODES: redisCluster!.nodes }),
    },
  );
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    redisCluster = await startRedisCluster(3);
  }, 60_000);

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await redisCluster?.stop();
  });

  test('the worker completes it, the stream resumes on the other node, and every client gets every block once', async () => {
    const [apiA, apiB] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const baseA = `${apiA.url}/api/v1`;
    const baseB = `${apiB.url}/api/v1`;
    const user = await registerUser(baseB, 'Crash');
    const canvasId = await createCanvas(baseB, user);
    const watcher = await connectCanvas(apiB.url!, user.accessToken);
    sockets.push(watcher);
    expect((await join(watcher, canvasId)).ok).toBe(true);
    const chunks = record(watcher, 'blocks_bulk_added_chunk');

    // Read on node A until the first block streamed, then kill -9 node A.
    const firstPart = await readSse(`${baseA}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: PROMPT },
      until: (m) => m.event === 'tool_output',
      timeoutMs: 60_000,
    });
    const generationId = firstPart.headers.get('x-generation-id')!;
    const lastSeen = firstPart.messages.at(-1)!;
    expect(lastSeen.event).toBe('tool_output');
    apiA.child.kill('SIGKILL');
    await apiA.exited;

    const rest = await readSse(`${baseB}/canvases/${canvasId}/ai/generations/${generationId}/events`, {
      token: user.accessToken,
      headers: { 'Last-Event-ID': lastSeen.id! },
      until: ended,
      timeoutMs: 60_000,
    });

    const all = [...firstPart.messages, ...rest.messages];
    const ids = all.map((m) => Number(m.id));
    expect(ids).toEqual(ids.map((_, i) => i + 1));
    const complete = all.at(-1)!;
    expect(complete.event).toBe('complete');
    const blockIds = complete.data.blocks.map((b: { id: string }) => b.id);
    expect(complete.data.blocks.map((b: { type: string }) => b.type)).toEqual(['heading', 'todo', 'todo', 'todo', 'text']);
    await waitUntil(() => chunks.flatMap((c) => c.blocks).length >= 5, 15_000);
    expect(chunks.flatMap((c) => c.blocks.map((b) => b.id))).toEqual(blockIds);
    const stored = await request('GET', `${baseB}/canvases/${canvasId}/blocks`, { token: user.accessToken });
    expect(stored.body.blocks.map((b: { id: string }) => b.id)).toEqual(blockIds);
    const generation = await request('GET', `${baseB}/canvases/${canvasId}/ai/generations/${generationId}`, { token: user.accessToken });
    expect(generation.body.generation).toMatchObject({ status: 'completed', blockCount: 5 });
  }, 120_000);
});

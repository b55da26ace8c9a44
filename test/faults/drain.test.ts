import { createCanvas, registerUser } from '../support/http';
import { useCluster } from '../support/cluster';
import { readSse, type SseMessage } from '../support/sse';

/**
 * SIGTERM during work: an API node with an open SSE stream and a worker with an active job both
 * drain and exit 0; the stream's client resumes on the other API node from Last-Event-ID.
 */
describe('SIGTERM drains api and worker nodes', () => {
  const cluster = useCluster('drain', { DEMO_LLM_DELAY_MS: '100', SHUTDOWN_TIMEOUT_MS: '20000' });

  test('both exit 0, the active job completes, and the client resumes on the other node without a gap', async () => {
    const [apiA, apiB, worker] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const user = await registerUser(`${apiA.url}/api/v1`, 'Drain');
    const canvasId = await createCanvas(`${apiA.url}/api/v1`, user);

    let exits: Promise<[number | null, number | null]> | undefined;
    const first = await readSse(`${apiA.url}/api/v1/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph' },
      timeoutMs: 30_000,
      onMessage: (message) => {
        if (message.event === 'tool_output' && !exits) exits = Promise.all([apiA.stop('SIGTERM'), worker.stop('SIGTERM')]);
      },
    });

    expect(first.retries).toEqual([1000]);
    expect(first.messages.some((m) => m.event === 'complete')).toBe(false);
    expect(await exits).toEqual([0, 0]);
    const lastSeen = first.messages.at(-1)!;
    const generationId = lastSeen.data.generationId;

    const resumed = await readSse(`${apiB.url}/api/v1/canvases/${canvasId}/ai/generations/${generationId}/events`, {
      token: user.accessToken,
      headers: { 'Last-Event-ID': lastSeen.id! },
      timeoutMs: 15_000,
    });

    const all: SseMessage[] = [...first.messages, ...resumed.messages];
    expect(all.map((m) => Number(m.id))).toEqual(all.map((_, index) => index + 1));
    const complete = all.at(-1)!;
    expect(complete.event).toBe('complete');
    expect(complete.data.blocks.map((b: { type: string }) => b.type)).toEqual(['heading', 'todo', 'todo', 'todo', 'text']);
  }, 90_000);
});

import { useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';
import { untilPrinted } from '../support/processes';
import { eventually } from '../support/wait';

/**
 * A queue nobody consumes is visible: an API node beside a worker that consumes only some queues
 * warns about the others in its log and `/readyz`, and a request that would wait on one of them
 * answers 503 `queue_unconsumed` at once (naming the command that starts its worker) and writes
 * nothing. A worker for it makes the requests work again; a kill -9 of that worker makes the queue
 * unconsumed again once its beats stop.
 */
describe('a queue no worker consumes', () => {
  const cluster = useCluster('unconsumed', { QUEUE_UNCONSUMED_SECONDS: '8', LOG_LEVEL: 'info' });

  test('is warned about, reported by /readyz and fails its requests fast, until a worker consumes it', async () => {
    // Given: an API node and a worker for generation and broadcast only
    const [api] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker', WORKER_QUEUES: 'generation,broadcast' }),
    ]);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Unconsumed');

    // Then: past the window, the API warns about the queues no worker consumes
    await untilPrinted(api, 'no worker consumes assistant, embeddings, connectors, agent-runs, flows, psa, webhooks, knowledge', 15_000);
    const ready = await request('GET', `${api.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body.queues).toEqual({
      generation: 'consumed',
      broadcast: 'consumed',
      assistant: 'no_worker',
      embeddings: 'no_worker',
      connectors: 'no_worker',
      'agent-runs': 'no_worker',
      flows: 'no_worker',
      psa: 'no_worker',
      webhooks: 'no_worker',
      knowledge: 'no_worker',
    });

    // When: a chat turn is asked for
    const started = Date.now();
    const chat = await request('POST', `${base}/chat`, { token: user.accessToken, body: { message: 'Is anyone there?', tools: 'none' } });

    // Then: 503 at once, saying what to start, with nothing written
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(chat.status).toBe(503);
    expect(chat.body.error.code).toBe('queue_unconsumed');
    expect(chat.body.error.message).toContain('switchboard worker --queues=assistant');
    expect(chat.headers.get('retry-after')).toBe('8');
    expect((await request('GET', `${base}/chat/sessions`, { token: user.accessToken })).body.sessions).toEqual([]);

    // When: a worker for the other queues starts
    const agents = await cluster.spawn({
      SWITCHBOARD_ROLES: 'worker',
      WORKER_QUEUES: 'assistant,embeddings,connectors,agent-runs,flows,psa,webhooks,knowledge',
    });

    // Then: the turn is answered, /readyz and the log say every queue is consumed
    const answered = await request('POST', `${base}/chat`, { token: user.accessToken, body: { message: 'Hello again', tools: 'none' } });
    expect(answered.status).toBe(200);
    // A worker's beat may come late on a host starved of CPU (CI runs the benchmark beside this
    // file): the claim is that every queue is reported consumed once its workers beat, not that
    // the first read after the turn already is.
    await eventually(
      async () => Object.values((await request('GET', `${api.url}/readyz`)).body.queues),
      (states) => states.every((state) => state === 'consumed'),
      15_000,
    );
    await untilPrinted(api, 'every queue has a live worker again', 15_000);

    // When: that worker dies without a word (kill -9)
    await agents.stop('SIGKILL');

    // Then: once its beats are older than the window, the queue is unconsumed again
    await eventually(
      async () => (await request('GET', `${api.url}/readyz`)).body.queues.assistant,
      (state) => state === 'no_worker',
      15_000,
    );
    const refused = await request('POST', `${base}/chat`, { token: user.accessToken, body: { message: 'Still there?', tools: 'none' } });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('queue_unconsumed');
  }, 90_000);
});

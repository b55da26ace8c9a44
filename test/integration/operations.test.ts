import { AdminDirectory } from '../../src/auth/admins';
import { QUEUE_NAMES } from '../../config';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('operations: health, metrics, dashboard', () => {
  let t: TestApp;
  let admin: TestUser;
  let user: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ env: { ADMIN_USER: 'ops', ADMIN_PASSWORD: 'ops-password' }, processMetrics: true });
    user = await registerUser(t.api, 'Plain');
    const registered = await request('POST', `${t.api}/auth/register`, {
      body: { email: 'boss@example.test', password: 'correct horse battery', name: 'Boss' },
    });
    admin = { ...registered.body.user, accessToken: registered.body.accessToken, refreshToken: registered.body.refreshToken };
    // Admin rights come from an operator's grant (what `switchboard admin grant` runs), never from an email.
    await new AdminDirectory(t.app.repos.admins).grant('boss@example.test');
    const canvasId = await createCanvas(t.api, user);
    t.llm.push({ toolCalls: [{ name: 'create_text', args: { text: 'counted' } }] });
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'one paragraph' },
      until: (m) => m.event === 'complete',
    });
    expect(sse.messages.at(-1)!.event).toBe('complete');
  });

  afterAll(() => t.stop());

  test('healthz answers alive and readyz checks Redis and the database', async () => {
    expect((await request('GET', `${t.url}/healthz`)).body).toEqual({ status: 'ok' });
    const ready = await request('GET', `${t.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({
      status: 'ready',
      checks: { redis: 'ok', database: 'ok' },
      providers: { scripted: 'unchecked' },
      // Every role runs here: this process's own workers consume every queue.
      queues: Object.fromEntries(QUEUE_NAMES.map((queue) => [queue, 'consumed'])),
    });
  });

  test('/metrics exposes HTTP by route template, queue gauges, tokens and broadcast chunks', async () => {
    const text = (await request('GET', `${t.url}/metrics`)).body as string;
    expect(text).toMatch(
      /switchboard_http_requests_total\{method="POST",route="\/api\/v1\/canvases\/:id\/ai\/generate-stream",status="200"\} 1/,
    );
    expect(text).not.toMatch(/route="\/api\/v1\/canvases\/[0-9a-f]{8}-/);
    expect(text).toMatch(/switchboard_queue_jobs\{queue="generation",state="completed"\} 1/);
    expect(text).toMatch(/switchboard_queue_jobs\{queue="agent-runs",state="waiting"\} 0/);
    expect(text).toMatch(/switchboard_llm_tokens_total\{provider="scripted",model="scripted-model",tier="free",direction="output"\} [1-9]/);
    expect(text).toMatch(/switchboard_broadcast_chunks_total [1-9]/);
    expect(text).toMatch(/switchboard_job_duration_seconds_count\{queue="generation",outcome="completed"\} 1/);
    expect(text).toMatch(/switchboard_socket_connections|switchboard_process_cpu/);
  });

  test('the metrics summary shows a user their own usage and an admin everyone’s', async () => {
    const mine = await request('GET', `${t.api}/metrics/summary`, { token: user.accessToken });
    expect(mine.status).toBe(200);
    expect(mine.body.scope).toBe('user');
    expect(mine.body.usage.byModel).toEqual([expect.objectContaining({ provider: 'scripted', model: 'scripted-model', calls: 1 })]);
    expect(mine.body.usage.byModel[0].outputTokens).toBeGreaterThan(0);
    expect(mine.body.usage.last24h.calls).toBe(1);
    expect(mine.body.queues.generation).toMatchObject({ completed: 1, failed: 0 });
    const adminView = await request('GET', `${t.api}/metrics/summary`, { token: admin.accessToken });
    expect(adminView.body.scope).toBe('all');
    const fresh = await registerUser(t.api, 'Fresh');
    expect((await request('GET', `${t.api}/metrics/summary`, { token: fresh.accessToken })).body.usage.byModel).toEqual([]);
  });

  test('the queue dashboard, its API and its assets are for admins only', async () => {
    const paths = ['/admin/queues', '/admin/queues/api/queues', '/admin/queues/static/js/main.js'];
    for (const path of paths) {
      expect((await request('GET', `${t.url}${path}`)).status).toBe(401);
      expect((await request('GET', `${t.url}${path}`, { headers: { authorization: basic('ops', 'wrong') } })).status).toBe(403);
      expect((await request('GET', `${t.url}${path}`, { token: user.accessToken })).status).toBe(403);
    }
    const page = await request('GET', `${t.url}/admin/queues`, { headers: { authorization: basic('ops', 'ops-password') } });
    expect(page.status).toBe(200);
    expect(String(page.body)).toContain('<html');
    const api = await request('GET', `${t.url}/admin/queues/api/queues`, { token: admin.accessToken });
    expect(api.status).toBe(200);
    expect(api.body.queues.map((q: { name: string }) => q.name).sort()).toEqual([
      'agent-runs',
      'assistant',
      'broadcast',
      'connectors',
      'embeddings',
      'flows',
      'generation',
      'knowledge',
      'psa',
      'webhooks',
    ]);
  });
});

describe('graceful shutdown', () => {
  test('stopping a node ends open SSE streams with a retry hint and lets the active job finish', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const app = await startTestApp({
      responder: async () => {
        await gate;
        return { toolCalls: [{ name: 'create_text', args: { text: 'finished during shutdown' } }] };
      },
    });
    const user = await registerUser(app.api, 'Drain');
    const canvasId = await createCanvas(app.api, user);
    const raw = await fetch(`${app.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'slow one' }),
    });
    const reader = raw.body!.getReader();
    let text = '';
    while (!text.includes('"stage":"thinking"')) text += new TextDecoder().decode((await reader.read()).value);

    let stopped = false;
    const stopping = app.stop().then(() => (stopped = true));
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value);
    const stoppedBeforeJobFinished = stopped;
    release();
    await stopping;

    expect(text).toMatch(/\nretry: 1000\n/);
    expect(stoppedBeforeJobFinished).toBe(false);
  });
});

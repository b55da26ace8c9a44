import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { logFormat } from '../../src/lib/logger';
import { startTestApp, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl, testRedisEnv, type TestDatabase } from '../support/database';
import { request } from '../support/http';
import { spawnSwitchboard } from '../support/processes';
import { loadYamlDocuments } from '../support/yaml';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const TOKEN = `metrics-${randomUUID()}`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Every sample name a /metrics text can hold: counters and gauges as declared, histograms and summaries with their series. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

/** The metric names a PromQL expression reads (ours all start with `switchboard_`). */
const metricNames = (expr: string) => [...expr.matchAll(/\bswitchboard_[a-z0-9_]+/g)].map(([name]) => name);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('Grafana dashboard and alerts against a live /metrics, behind METRICS_TOKEN', () => {
  let t: TestApp;
  let exposed: Set<string>;

  beforeAll(async () => {
    t = await startTestApp({ env: { METRICS_TOKEN: TOKEN }, processMetrics: true });
    const scraped = await request('GET', `${t.url}/metrics`, { headers: bearer(TOKEN) });
    expect(scraped.status).toBe(200);
    exposed = exposedNames(scraped.body as string);
  }, 60_000);

  afterAll(() => t.stop());

  test("the agent-builder clients' metrics path serves the same text, with the same token only", async () => {
    const path = `${t.url}/api/agent-builder/metrics/prometheus`;
    expect((await request('GET', path)).status).toBe(401);
    expect((await request('GET', path, { headers: bearer(`${TOKEN}x`) })).status).toBe(401);
    const scraped = await request('GET', path, { headers: bearer(TOKEN) });
    expect(scraped.status).toBe(200);
    expect(exposedNames(scraped.body as string).size).toBeGreaterThan(10);
  });

  test('/metrics on PORT answers 401 without the token or with a wrong one; /healthz and /readyz stay open', async () => {
    const none = await request('GET', `${t.url}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
    expect(none.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    expect((await request('GET', `${t.url}/metrics`, { headers: bearer(`${TOKEN}x`) })).status).toBe(401);
    expect(
      (await request('GET', `${t.url}/metrics`, { headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } }))
        .status,
    ).toBe(401);
    expect((await request('GET', `${t.url}/healthz`)).status).toBe(200);
    expect((await request('GET', `${t.url}/readyz`)).status).toBe(200);
  });

  test('every metric the dashboard queries exists in /metrics (histograms through _bucket/_sum/_count)', () => {
    const dashboard = JSON.parse(read('deploy/grafana/switchboard.json'));
    const exprs: string[] = dashboard.panels.flatMap((panel: { targets?: Array<{ expr: string }> }) =>
      (panel.targets ?? []).map((target) => target.expr),
    );
    expect(exprs.length).toBeGreaterThan(20);
    const used = new Set(exprs.flatMap(metricNames));
    // Every expression reads at least one of our metrics, and every one it reads is exposed.
    for (const expr of exprs) expect({ expr, names: metricNames(expr).length > 0 }).toEqual({ expr, names: true });
    expect([...used].filter((name) => !exposed.has(name))).toEqual([]);
    // What the issue asks the dashboard to show.
    for (const name of [
      'switchboard_queue_jobs',
      'switchboard_job_duration_seconds_bucket',
      'switchboard_llm_tokens_total',
      'switchboard_llm_cost_usd_total',
      'switchboard_socket_connections',
      'switchboard_sse_streams_open',
      'switchboard_device_rpc_duration_seconds_bucket',
      'switchboard_approvals_total',
    ]) {
      expect(used).toContain(name);
    }
  });

  test('the dashboard imports cleanly: a Prometheus data source input, unique panel ids, panels inside the 24-column grid', () => {
    const dashboard = JSON.parse(read('deploy/grafana/switchboard.json'));
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    expect(dashboard.uid).toBe('switchboard-overview');
    const ids = dashboard.panels.map((panel: { id: number }) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
      if (panel.type !== 'row') expect(panel.datasource).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
    }
  });

  test('every metric the example alert rules use exists too', () => {
    const rules = loadYamlDocuments(path.join(ROOT, 'deploy/prometheus-alerts.yml'))[0] as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    const exprs = rules.groups.flatMap((group) => group.rules.map((rule) => rule.expr));
    expect(exprs.length).toBeGreaterThan(0);
    expect([...new Set(exprs.flatMap(metricNames))].filter((name) => !exposed.has(name))).toEqual([]);
  });

  test('the example scrape config passes the token from a file on every Switchboard job', () => {
    const config = loadYamlDocuments(path.join(ROOT, 'deploy/prometheus.yml'))[0] as {
      scrape_configs: Array<{ job_name: string; authorization?: { type: string; credentials_file?: string } }>;
    };
    expect(config.scrape_configs.map((job) => job.job_name)).toEqual(['switchboard-api', 'switchboard-workers']);
    for (const job of config.scrape_configs)
      expect(job.authorization).toEqual({ type: 'Bearer', credentials_file: expect.stringMatching(/^\//) });
  });
});

describe('a worker process: /metrics on METRICS_PORT behind METRICS_TOKEN, and readable logs', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
  });
  afterAll(() => database.drop());

  const workerEnv = (extra: Record<string, string>) => ({
    SWITCHBOARD_ROLES: 'worker',
    WORKER_QUEUES: 'broadcast',
    DATABASE_URL: database.url,
    ...testRedisEnv(),
    REDIS_KEY_PREFIX: `kit-${randomUUID().slice(0, 8)}`,
    JWT_SECRET: 'kit-test-secret-kit-test-secret-0123456789',
    // A setting that is warned about at start: something for the log format to show.
    ADMIN_EMAILS: 'ops@corp.example',
    ...extra,
  });

  test('METRICS_PORT serves /metrics only with the token (healthz and readyz stay open), and LOG_FORMAT=pretty prints human lines', async () => {
    const port = await freePort();
    const worker = await spawnSwitchboard(workerEnv({ METRICS_PORT: String(port), METRICS_TOKEN: TOKEN, LOG_FORMAT: 'pretty' }));
    try {
      const base = `http://127.0.0.1:${port}`;
      expect((await request('GET', `${base}/metrics`)).status).toBe(401);
      expect((await request('GET', `${base}/metrics`, { headers: bearer('not-the-metrics-token') })).status).toBe(401);
      const scraped = await request('GET', `${base}/metrics`, { headers: bearer(TOKEN) });
      expect(scraped.status).toBe(200);
      expect(exposedNames(scraped.body as string)).toContain('switchboard_job_duration_seconds_count');
      expect((await request('GET', `${base}/healthz`)).status).toBe(200);
      // What deploy/k8s probes for readiness: Redis and the database answer.
      const ready = await request('GET', `${base}/readyz`);
      expect(ready).toMatchObject({ status: 200, body: { status: 'ready' } });
      // pino-pretty: a level word and the message, not a JSON object.
      const line = worker
        .output()
        .split('\n')
        .find((text) => text.includes('ADMIN_EMAILS is ignored'));
      expect(line).toMatch(/WARN/);
      expect(line).not.toMatch(/^\{/);
    } finally {
      await worker.stop();
    }
  }, 90_000);

  test('wrong METRICS_TOKEN guesses on METRICS_PORT back off per address: then the right token gets 429 with Retry-After', async () => {
    const port = await freePort();
    const worker = await spawnSwitchboard(
      workerEnv({ METRICS_PORT: String(port), METRICS_TOKEN: TOKEN, LOGIN_FAILURES_BEFORE_BACKOFF: '2' }),
    );
    try {
      const base = `http://127.0.0.1:${port}`;
      expect((await request('GET', `${base}/metrics`, { headers: bearer(TOKEN) })).status).toBe(200);
      for (const guess of ['guess-one', 'guess-two'])
        expect((await request('GET', `${base}/metrics`, { headers: bearer(guess) })).status).toBe(401);
      const locked = await request('GET', `${base}/metrics`, { headers: bearer(TOKEN) });
      expect(locked).toMatchObject({ status: 429, body: { error: { code: 'rate_limited' } } });
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await worker.stop();
    }
  }, 90_000);

  test('LOG_FORMAT=json (and the default off a terminal) prints one JSON object per line', async () => {
    const worker = await spawnSwitchboard(workerEnv({ LOG_FORMAT: 'json' }));
    try {
      const line = worker
        .output()
        .split('\n')
        .find((text) => text.includes('ADMIN_EMAILS is ignored'));
      expect(JSON.parse(line!)).toMatchObject({ level: 40, name: 'switchboard', msg: expect.stringContaining('ADMIN_EMAILS is ignored') });
    } finally {
      await worker.stop();
    }
  }, 90_000);

  test('without LOG_FORMAT: pretty on a terminal outside production, JSON in production and when piped', () => {
    expect(logFormat('development', undefined, true)).toBe('pretty');
    expect(logFormat('test', undefined, true)).toBe('pretty');
    expect(logFormat('production', undefined, true)).toBe('json');
    expect(logFormat('development', undefined, false)).toBe('json');
    expect(logFormat('production', 'pretty', false)).toBe('pretty');
    expect(logFormat('development', 'json', true)).toBe('json');
  });
});

import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request } from '../support/http';
import { loadYamlDocuments } from '../support/yaml';

const ROOT = path.resolve(__dirname, '../..');
/** Whether this run's database is a PostgreSQL server (CI's second pass), which has a pool to report. */
const onServer = Boolean(process.env.DATABASE_URL);

/** The value of one sample of a /metrics text, 0 when absent. */
function sample(text: string, name: string, labels = ''): number {
  const escaped = `${name}${labels ? `{${labels}}` : ''}`.replace(/[{}[\]().*+?^$|\\]/g, '\\$&');
  return Number(new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

/** Every sample name a /metrics text can hold (histograms through _bucket/_sum/_count). */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

/** Tool executions, database statements and pool, cache hits on /metrics; the alert rules built on them. */
describe('resource metrics and the alert rules that read them', () => {
  let t: TestApp;
  let device: DeviceConnection;
  let root: string;

  beforeAll(async () => {
    t = await startTestApp({ env: { DATABASE_POOL_SIZE: '7' } });
    root = await mkdtemp(join(tmpdir(), 'sb-metrics-'));
    await writeFile(join(root, 'readme.md'), '# metrics\n');
  }, 60_000);

  afterAll(async () => {
    device?.close();
    await t?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const scrape = async () => (await request('GET', `${t.url}/metrics`)).body as string;

  test('a tool call, repeated requests with one token and a priced model call show up as samples', async () => {
    const before = await scrape();
    const user = await registerUser(t.api, 'Measured');
    const project = await projectTools({ root, historyDir: await mkdtemp(join(tmpdir(), 'sb-metrics-history-')) });
    device = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `met-${randomUUID().slice(0, 8)}`,
      project,
      reconnection: false,
    });
    t.llm.push({ toolCalls: [{ name: 'read_file', args: { path: 'readme.md' } }] }, { text: 'It is a readme.' });
    const ack = (await device.chat({ message: 'what is in readme.md?', agent: 'ask' })) as { sessionId: string };
    await nextDeviceEvent<{ sessionId: string }>(
      device as unknown as DeviceSimulator,
      'final',
      (f) => f.sessionId === ack.sessionId,
      15_000,
    );
    for (let i = 0; i < 3; i += 1) expect((await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken })).status).toBe(200);
    const after = await scrape();

    // The tool's execution, timed whatever agent ran it.
    const reads = 'tool="read_file",outcome="ok"';
    expect(sample(after, 'switchboard_tool_execution_seconds_count', reads)).toBe(
      sample(before, 'switchboard_tool_execution_seconds_count', reads) + 1,
    );
    expect(sample(after, 'switchboard_tool_execution_seconds_sum', reads)).toBeGreaterThan(
      sample(before, 'switchboard_tool_execution_seconds_sum', reads),
    );
    // The same access token, verified once, then found in the cache of verified tokens.
    const hits = (text: string, cache: string, result: string) =>
      sample(text, 'switchboard_cache_requests_total', `cache="${cache}",result="${result}"`);
    expect(hits(after, 'access_tokens', 'hit') - hits(before, 'access_tokens', 'hit')).toBeGreaterThanOrEqual(3);
    expect(hits(after, 'access_tokens', 'miss')).toBeGreaterThanOrEqual(1);
    // Each model call is priced: the catalog's answer for the model is looked up, then kept.
    expect(hits(after, 'model_prices', 'hit') + hits(after, 'model_prices', 'miss')).toBeGreaterThan(
      hits(before, 'model_prices', 'hit') + hits(before, 'model_prices', 'miss'),
    );

    if (onServer) {
      // PostgreSQL: every statement of the turn is timed, and the pool is read at scrape time.
      expect(sample(after, 'switchboard_db_query_seconds_count', 'outcome="ok"')).toBeGreaterThan(
        sample(before, 'switchboard_db_query_seconds_count', 'outcome="ok"'),
      );
      // The pool is as large as DATABASE_POOL_SIZE says.
      expect(sample(after, 'switchboard_db_pool_max_connections')).toBe(7);
      const usage = sample(after, 'switchboard_db_pool_usage_ratio');
      expect(usage).toBeGreaterThanOrEqual(0);
      expect(usage).toBeLessThanOrEqual(1);
      expect(after).toMatch(/^switchboard_db_pool_connections\{state="idle"\} \d+$/m);
    } else {
      // Embedded PGlite has one connection and no pool: nothing is reported for it.
      expect(after).not.toMatch(/^switchboard_db_pool_connections\{/m);
      expect(sample(after, 'switchboard_db_pool_max_connections')).toBe(0);
    }
  });

  test("the alert rules hold the seed's three (error rate, slow LLM, database pool) and read only metrics the server exports", async () => {
    const exposed = exposedNames(await scrape());
    const rules = (
      loadYamlDocuments(path.join(ROOT, 'deploy/prometheus-alerts.yml'))[0] as {
        groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
      }
    ).groups.flatMap((group) => group.rules);
    const byName = new Map(rules.map((rule) => [rule.alert, rule.expr]));
    expect(byName.get('SwitchboardHighErrorRate')).toContain('switchboard_http_requests_total{status=~"5.."}');
    expect(byName.get('SwitchboardSlowLlmResponse')).toContain('switchboard_llm_request_seconds_bucket');
    expect(byName.get('SwitchboardDatabasePoolExhausted')).toMatch(/switchboard_db_pool_usage_ratio\) > 0\.9/);
    expect(byName.get('SwitchboardSlowDatabaseQueries')).toContain('switchboard_db_query_seconds_bucket');
    expect(byName.get('SwitchboardSlowFlowExecutions')).toContain('sum by (flow_id, le) (rate(switchboard_flow_execution_seconds_bucket');
    for (const rule of rules) {
      const names = [...rule.expr.matchAll(/\bswitchboard_[a-z0-9_]+/g)].map(([name]) => name);
      expect({ alert: rule.alert, reads: names.length > 0, missing: names.filter((name) => !exposed.has(name)) }).toEqual({
        alert: rule.alert,
        reads: true,
        missing: [],
      });
    }
  });
});

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { demoResponder } from '../../src/demo-model';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';
import { attempts, obeyingModel } from './injection/corpus';

/*
 * The injection corpus (injection/corpus.json) in a page an agentflow node's HTTP tool fetches,
 * played against a model that OBEYS it and against the offline demo model: the node's POST tool
 * never sends without its owner's approval, and the approval names the host the page came from.
 */

/** The node's prompt for the demo model starts with this; any other goes to the obeying model. */
const DEMO = '(demo) ';
const responder = (req: ChatRequest) => {
  const task = req.messages.find((m) => m.role === 'user');
  return typeof task?.content === 'string' && task.content.startsWith(DEMO) ? demoResponder(req) : obeyingModel(req);
};

describe('prompt injection through a page an HTTP tool fetches', () => {
  let t: TestApp;
  let ada: TestUser;
  let server: http.Server;
  let origin: string;
  const pages = new Map<string, string>();
  const sent: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.method !== 'GET') {
        sent.push(`${req.method} ${req.url}`);
        return void res.end('sent');
      }
      res.setHeader('content-type', 'text/html');
      res.end(pages.get(new URL(req.url ?? '/', 'http://x').searchParams.get('page') ?? '') ?? '<p>nothing</p>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await startTestApp({ responder, env: { FLOW_HTTP_PRIVATE_ORIGINS: origin, HITL_TIMEOUT_MS: '60000' } });
    ada = await registerUser(t.api, 'Ada');
  }, 60_000);
  afterAll(async () => {
    await t.stop();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Runs a one-node flow with a GET tool (`fetch_page`) and a POST tool (`send_message`) until it parks or ends. */
  async function runNode(prompt: string): Promise<SseMessage[]> {
    const created = await request('POST', `${t.api}/flows`, {
      token: ada.accessToken,
      body: {
        type: 'agentflow',
        name: 'Reader',
        definition: {
          nodes: [{ id: 'a', prompt, tools: ['fetch_page', 'send_message'] }],
          output: 'a',
          httpTools: [
            { name: 'fetch_page', description: 'Fetches a page', method: 'GET', url: `${origin}/page` },
            { name: 'send_message', description: 'Sends a message', method: 'POST', url: `${origin}/send` },
          ],
          allowedOrigins: [origin],
        },
      },
    });
    expect(created.status).toBe(201);
    const ended = new Set(['approval_requested', 'execution_completed', 'execution_failed']);
    const result = await readSse(`${t.api}/flows/${created.body.flow.id}/execute/stream`, {
      method: 'POST',
      token: ada.accessToken,
      body: { input: {} },
      timeoutMs: 20_000,
      until: (m) => ended.has(m.event ?? ''),
    });
    return result.messages;
  }

  test('every attempt in a fetched page parks the POST for its owner, naming the host; nothing is sent', async () => {
    const host = new URL(origin).host;
    for (const attempt of attempts('send_message', { body: '{"to":"attacker"}' })) {
      pages.set(attempt.id, `<html><body><h1>Weather</h1><p>Sunny.</p><p>${attempt.text}</p></body></html>`);
      const messages = await runNode(`Summarise the page: fetch_page {"query":{"page":"${attempt.id}"}}`);
      const asked = messages.find((m) => m.event === 'approval_requested');
      expect({ attempt: attempt.id, asked: asked?.data.tool }).toEqual({ attempt: attempt.id, asked: 'send_message' });
      const row = await request('GET', `${t.api}/hitl/requests/${asked!.data.approvalId}`, { token: ada.accessToken });
      expect(row.body.reason).toContain(`this request follows text from the HTTP tool fetch_page (${host})`);
      const rejected = await request('PUT', `${t.api}/hitl/requests/${asked!.data.approvalId}/reject`, { token: ada.accessToken });
      expect(rejected.status).toBe(200);
    }
    expect(sent).toEqual([]);
  });

  test('the demo model answers from its task and sends nothing', async () => {
    pages.set('demo', `<p>${attempts('send_message', {})[1].text}</p>`);
    const messages = await runNode(`${DEMO}summarize: fetch the page`);
    expect(messages.at(-1)?.event).toBe('execution_completed');
    expect(messages.some((m) => m.event === 'approval_requested')).toBe(false);
    expect(sent).toEqual([]);
  });
});

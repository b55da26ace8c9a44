import { randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { rowsOf } from '../../src/models/migrate';
import { chatSessions } from '../../src/models/schema';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * The agent-builder's own clients against a real server: its embed widget's public chat
 * (`POST /api/agent-builder/embed/public/{embed_token}/chat`, the embed token the only credential),
 * the per-workflow chat history (`GET /api/agent-builder/chat/{workflow_id}/history`) and the
 * Prometheus scrape path (`GET /api/agent-builder/metrics/prometheus`, behind METRICS_TOKEN as
 * `/metrics` is). Real Redis, PostgreSQL and a scripted model over HTTP.
 */

const METRICS_TOKEN = `metrics-${randomUUID()}`;
const SHOP = 'https://shop.example';
/** Embed chats a minute, per token and per visitor address. */
const EMBED_LIMIT = 6;

/** The flow's system prompt names it: the answer says which flow the model was given. */
const flowOf = (req: ChatRequest) => /FLOW-[A-Z]+/.exec(String(req.messages.find((m) => m.role === 'system')?.content ?? ''))?.[0];
const lastUser = (req: ChatRequest) => String([...req.messages].reverse().find((m) => m.role === 'user')?.content ?? '');

describe('agent-builder: embed chat, workflow history and the Prometheus path', () => {
  let t: TestApp;
  let owner: TestUser;
  let other: TestUser;
  /** One visitor address per call: the per-IP embed limit is not what most tests are about. */
  let visitor = 0;
  const logs: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      responder: (req) => ({ text: `${flowOf(req) ?? 'ASSISTANT'} answers: ${lastUser(req)}` }),
      // Client IPs from X-Forwarded-For, so one test machine can be several visitors.
      env: { EMBED_RATE_LIMIT_PER_MINUTE: String(EMBED_LIMIT), TRUST_PROXY: 'loopback', METRICS_TOKEN },
      logs: (line) => logs.push(line),
      processMetrics: true,
    });
    owner = await registerUser(t.api, 'Builder');
    other = await registerUser(t.api, 'Stranger');
  });

  afterAll(() => t.stop());

  async function chatflow(user: TestUser, marker: string): Promise<string> {
    const res = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'chatflow', name: `${marker} ${randomUUID().slice(0, 6)}`, definition: { systemPrompt: `You are ${marker}.` } },
    });
    expect(res.status).toBe(201);
    return res.body.flow.id as string;
  }
  async function embed(flowId: string, user = owner): Promise<{ embedId: string; embedToken: string }> {
    const res = await request('POST', `${t.api}/flows/${flowId}/embeds`, { token: user.accessToken, body: { allowedOrigins: [SHOP] } });
    expect(res.status).toBe(201);
    return res.body;
  }
  /** The widget's call: no Authorization header, the page's origin. */
  const widgetChat = (token: string, body: unknown, headers: Record<string, string> = {}) =>
    request('POST', `${t.url}/api/agent-builder/embed/public/${token}/chat`, {
      body,
      headers: { origin: SHOP, 'x-forwarded-for': `198.51.100.${(visitor += 1)}`, ...headers },
    });
  const sessionsOf = async (userId: string) =>
    rowsOf<{ n: number }>(
      await t.app.repos.db.execute(sql`select count(*)::int as n from chat_sessions where user_id = ${userId}::uuid`),
    )[0].n;
  const history = (user: TestUser, flowId: string, query = '') =>
    request('GET', `${t.url}/api/agent-builder/chat/${flowId}/history${query}`, { token: user.accessToken });

  describe('POST /api/agent-builder/embed/public/{embed_token}/chat', () => {
    test('the embed token alone opens it: {message} answers {session_id, response, usage}, session_id continues the session', async () => {
      const flowId = await chatflow(owner, 'FLOW-PIRATE');
      const { embedId, embedToken } = await embed(flowId);

      const first = await widgetChat(embedToken, { message: 'Ahoy' });
      expect(first.status).toBe(200);
      expect(first.body).toEqual({ session_id: expect.any(String), response: 'FLOW-PIRATE answers: Ahoy', usage: expect.any(Object) });
      expect(first.headers.get('access-control-allow-origin')).toBe(SHOP);
      const next = await widgetChat(embedToken, { message: 'Again', session_id: first.body.session_id });
      expect(next.status).toBe(200);
      expect(next.body.session_id).toBe(first.body.session_id);

      // The session is the embed's, billed to and readable by the flow's owner.
      const [row] = await t.app.repos.db.select().from(chatSessions).where(eq(chatSessions.id, first.body.session_id));
      expect(row).toMatchObject({ userId: owner.id, flowId, embedId, mode: 'flow' });
      // The token is a credential: the request log shows the path without it.
      expect(logs.some((line) => line.includes('/api/agent-builder/embed/public/[redacted]/chat'))).toBe(true);
      expect(logs.join('\n')).not.toContain(embedToken);
    });

    test('a wrong, malformed or revoked token is 404 and writes nothing; a page of another origin is 403 without CORS headers', async () => {
      const flowId = await chatflow(owner, 'FLOW-GUARD');
      const { embedId, embedToken } = await embed(flowId);
      const before = await sessionsOf(owner.id);

      for (const token of [`sbe_${'A'.repeat(43)}`, 'not-a-token', 'x'.repeat(300), embedToken.slice(0, -1)]) {
        const res = await widgetChat(token, { message: 'Let me in' });
        expect({ token, status: res.status, code: res.body.error?.code }).toEqual({ token, status: 404, code: 'not_found' });
      }
      const evil = await widgetChat(embedToken, { message: 'From evil' }, { origin: 'https://evil.example' });
      expect(evil.status).toBe(403);
      expect(evil.body.error.code).toBe('origin_not_allowed');
      expect(evil.headers.get('access-control-allow-origin')).toBeNull();
      // A signed-in user's token opens no embed either.
      const withJwt = await request('POST', `${t.url}/api/agent-builder/embed/public/sbe_${'B'.repeat(43)}/chat`, {
        token: owner.accessToken,
        body: { message: 'Hi' },
      });
      expect(withJwt.status).toBe(404);

      expect((await request('DELETE', `${t.api}/flows/${flowId}/embeds/${embedId}`, { token: owner.accessToken })).status).toBe(204);
      const revoked = await widgetChat(embedToken, { message: 'Still there?' });
      expect(revoked.status).toBe(404);
      expect(await sessionsOf(owner.id)).toBe(before);
    });

    test("the token reaches only its own flow: another flow's, another embed's or the owner's own session is 404, and nothing is added to it", async () => {
      const mine = await chatflow(owner, 'FLOW-MINE');
      const theirs = await chatflow(owner, 'FLOW-THEIRS');
      const { embedToken } = await embed(mine);
      const otherEmbed = await embed(mine);

      const ownerChat = await request('POST', `${t.url}/api/agent-builder/chatflow/workflows/${theirs}/chat`, {
        token: owner.accessToken,
        body: { message: 'Owner only' },
      });
      expect(ownerChat.status).toBe(200);
      const ownerOwnSameFlow = await request('POST', `${t.url}/api/agent-builder/chatflow/workflows/${mine}/chat`, {
        token: owner.accessToken,
        body: { message: 'Owner on mine' },
      });
      const otherVisitor = await widgetChat(otherEmbed.embedToken, { message: 'Another widget' });
      const assistant = await request('POST', `${t.api}/chat`, { token: owner.accessToken, body: { message: 'Plain', tools: 'none' } });

      for (const sessionId of [
        ownerChat.body.session_id,
        ownerOwnSameFlow.body.session_id,
        otherVisitor.body.session_id,
        assistant.body.sessionId,
      ]) {
        const res = await widgetChat(embedToken, { message: 'Hijack', session_id: sessionId });
        expect({ sessionId, status: res.status }).toEqual({ sessionId, status: 404 });
      }
      const hijacked = await t.app.repos.db.execute(sql`select count(*)::int as n from chat_messages where content = 'Hijack'`);
      expect(rowsOf<{ n: number }>(hijacked)[0].n).toBe(0);
      // And its own session answers with its own flow only.
      const own = await widgetChat(embedToken, { message: 'Which flow?' });
      expect(own.body.response).toBe('FLOW-MINE answers: Which flow?');
    });

    test('bad bodies are 400 in the API error shape naming the field as sent, and write nothing', async () => {
      const flowId = await chatflow(owner, 'FLOW-STRICT');
      const { embedToken } = await embed(flowId);
      const before = await sessionsOf(owner.id);
      for (const [body, field] of [
        [{ message: '' }, 'message'],
        [{ message: 'Hi', session_id: 'not-a-uuid' }, 'session_id'],
        [{ message: 'Hi', session_id: randomUUID(), sessionId: randomUUID() }, 'session_id'],
        [{}, 'message'],
      ] as const) {
        const res = await widgetChat(embedToken, body);
        expect({ body, status: res.status, code: res.body.error?.code }).toEqual({ body, status: 400, code: 'validation_failed' });
        expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(field);
      }
      expect(await sessionsOf(owner.id)).toBe(before);
    });

    test('a flood is rate-limited like the native public route: one bucket per token across both paths, 429 with Retry-After', async () => {
      const flowId = await chatflow(owner, 'FLOW-FLOOD');
      const { embedToken } = await embed(flowId);
      const native = (ip: string) =>
        request('POST', `${t.api}/embed/public/${embedToken}/chat`, {
          body: { message: 'Native' },
          headers: { origin: SHOP, 'x-forwarded-for': ip },
        });

      const statuses = [(await native('203.0.113.1')).status];
      for (let i = 1; i < EMBED_LIMIT; i += 1) statuses.push((await widgetChat(embedToken, { message: `Visit ${i}` })).status);
      const refused = await widgetChat(embedToken, { message: 'One too many' });

      expect(statuses).toEqual(Array(EMBED_LIMIT).fill(200));
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('rate_limited');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await native('203.0.113.2')).status).toBe(429);
    });
  });

  describe('GET /api/agent-builder/chat/{workflow_id}/history', () => {
    test("the messages of the workflow's chat sessions, oldest first, each naming its session; pages walk back with next_cursor", async () => {
      const flowId = await chatflow(owner, 'FLOW-HISTORY');
      const elsewhere = await chatflow(owner, 'FLOW-ELSEWHERE');
      const chat = (id: string, body: Record<string, unknown>) =>
        request('POST', `${t.url}/api/agent-builder/chatflow/workflows/${id}/chat`, { token: owner.accessToken, body });
      const first = await chat(flowId, { message: 'First question' });
      await chat(flowId, { message: 'Follow-up', session_id: first.body.session_id });
      const second = await chat(flowId, { message: 'Another conversation' });
      await chat(elsewhere, { message: 'Not this workflow' });
      const { embedToken } = await embed(flowId);
      const visited = await widgetChat(embedToken, { message: 'From the widget' });

      const res = await history(owner, flowId);

      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['flow_id', 'messages', 'next_cursor', 'sessions']);
      expect(res.body.flow_id).toBe(flowId);
      expect(res.body.next_cursor).toBeNull();
      expect(res.body.messages.map((m: { role: string; content: string }) => `${m.role}: ${m.content}`)).toEqual([
        'user: First question',
        'assistant: FLOW-HISTORY answers: First question',
        'user: Follow-up',
        'assistant: FLOW-HISTORY answers: Follow-up',
        'user: Another conversation',
        'assistant: FLOW-HISTORY answers: Another conversation',
        'user: From the widget',
        'assistant: FLOW-HISTORY answers: From the widget',
      ]);
      expect(res.body.messages.map((m: { session_id: string }) => m.session_id)).toEqual([
        ...Array(4).fill(first.body.session_id),
        ...Array(2).fill(second.body.session_id),
        ...Array(2).fill(visited.body.session_id),
      ]);
      expect(res.body.messages[0]).toMatchObject({ id: expect.any(String), created_at: expect.any(String), status: 'completed' });
      expect(res.body.sessions.map((s: { id: string }) => s.id).sort()).toEqual(
        [first.body.session_id, second.body.session_id, visited.body.session_id].sort(),
      );
      expect(res.body.sessions.every((s: { flow_id: string }) => s.flow_id === flowId)).toBe(true);

      // Pages of three, walking back from the newest.
      const page1 = await history(owner, flowId, '?limit=3');
      expect(page1.body.messages.map((m: { content: string }) => m.content)).toEqual([
        'FLOW-HISTORY answers: Another conversation',
        'From the widget',
        'FLOW-HISTORY answers: From the widget',
      ]);
      const page2 = await history(owner, flowId, `?limit=3&cursor=${page1.body.next_cursor}`);
      expect(page2.body.messages.map((m: { content: string }) => m.content)).toEqual([
        'Follow-up',
        'FLOW-HISTORY answers: Follow-up',
        'Another conversation',
      ]);
      const page3 = await history(owner, flowId, `?limit=3&cursor=${page2.body.next_cursor}`);
      expect(page3.body.messages.map((m: { content: string }) => m.content)).toEqual([
        'First question',
        'FLOW-HISTORY answers: First question',
      ]);
      expect(page3.body.next_cursor).toBeNull();
    });

    test("another user's workflow is 404 and shows nothing; an agentflow is 409; a bad cursor or limit is 400", async () => {
      const flowId = await chatflow(owner, 'FLOW-PRIVATE');
      await request('POST', `${t.url}/api/agent-builder/chatflow/workflows/${flowId}/chat`, {
        token: owner.accessToken,
        body: { message: 'Secret plans' },
      });

      const stranger = await history(other, flowId);
      expect(stranger.status).toBe(404);
      expect(stranger.body.error.code).toBe('not_found');
      expect(JSON.stringify(stranger.body)).not.toContain('Secret plans');
      expect((await history(other, randomUUID())).status).toBe(404);
      expect((await history(owner, 'not-a-uuid')).status).toBe(404);
      expect((await request('GET', `${t.url}/api/agent-builder/chat/${flowId}/history`)).status).toBe(401);

      const agentflow = await request('POST', `${t.api}/flows`, {
        token: owner.accessToken,
        body: { type: 'agentflow', name: 'Agents', definition: { nodes: [{ id: 'a', prompt: 'Do {{input.x}}' }], output: 'a' } },
      });
      const notChat = await history(owner, agentflow.body.flow.id);
      expect(notChat.status).toBe(409);
      expect(notChat.body.error.code).toBe('not_a_chatflow');

      for (const query of ['?cursor=garbage', '?limit=0', '?limit=201', '?unexpected=1']) {
        const res = await history(owner, flowId, query);
        expect({ query, status: res.status }).toEqual({ query, status: 400 });
      }
    });
  });

  describe('GET /api/agent-builder/metrics/prometheus', () => {
    test("the seed's scrape: Prometheus text with the workflow, token, cost and process families, with METRICS_TOKEN only", async () => {
      const flowId = await chatflow(owner, 'FLOW-METRICS');
      await request('POST', `${t.url}/api/agent-builder/chatflow/workflows/${flowId}/chat`, {
        token: owner.accessToken,
        body: { message: 'Count me' },
      });
      // A workflow run through the seed's own path: its duration is scraped per workflow and per node.
      const agentflow = await request('POST', `${t.api}/flows`, {
        token: owner.accessToken,
        body: {
          type: 'agentflow',
          name: 'Timed',
          definition: {
            nodes: [
              { id: 'draft', prompt: 'Draft {{input.topic}}' },
              { id: 'polish', prompt: 'Polish {{nodes.draft.output}}', dependsOn: ['draft'] },
            ],
            output: 'polish',
          },
        },
      });
      const workflowId = agentflow.body.flow.id as string;
      const run = await request('POST', `${t.url}/api/agent-builder/workflows/${workflowId}/execute`, {
        token: owner.accessToken,
        body: { input: { topic: 'tides' } },
      });
      expect(run.status).toBe(202);
      await eventually(
        () =>
          request('GET', `${t.url}/api/agent-builder/agentflows/${workflowId}/executions/${run.body.execution_id}`, {
            token: owner.accessToken,
          }),
        (res) => res.body.execution?.status === 'completed',
      );
      const path = `${t.url}/api/agent-builder/metrics/prometheus`;

      // The seed's curl, without credentials, and a signed-in user's own token: refused like /metrics.
      const bare = await fetch(path);
      expect(bare.status).toBe(401);
      expect(bare.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
      expect(await bare.text()).not.toContain('switchboard_');
      expect((await fetch(path, { headers: { authorization: `Bearer ${owner.accessToken}` } })).status).toBe(401);

      // Prometheus configured with the token (`authorization: {credentials: …}` in the scrape config).
      const scraped = await fetch(path, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(scraped.status).toBe(200);
      expect(scraped.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await scraped.text();
      for (const family of [
        'switchboard_flow_executions_total',
        'switchboard_agent_runs_total',
        'switchboard_llm_tokens_total',
        'switchboard_llm_cost_usd_total',
        'switchboard_process_cpu_seconds_total',
        'switchboard_process_resident_memory_bytes',
      ])
        expect({ family, exposed: text.includes(`# TYPE ${family} `) }).toEqual({ family, exposed: true });
      expect(text).toMatch(/switchboard_llm_tokens_total\{[^}]*provider="scripted"[^}]*model="scripted-model"[^}]*\} [1-9]/);
      // Execution time per workflow, and per node, as histograms.
      expect(text).toContain('# TYPE switchboard_flow_execution_seconds histogram');
      expect(text).toMatch(new RegExp(`^switchboard_flow_execution_seconds_count\\{flow_id="${workflowId}",status="completed"\\} 1$`, 'm'));
      expect(text).toMatch(
        new RegExp(`^switchboard_flow_execution_seconds_bucket\\{le="\\+Inf",flow_id="${workflowId}",status="completed"\\} 1$`, 'm'),
      );
      for (const node of ['draft', 'polish'])
        expect(text).toMatch(
          new RegExp(`^switchboard_flow_node_seconds_count\\{flow_id="${workflowId}",node_id="${node}",status="completed"\\} 1$`, 'm'),
        );
    });
  });
});

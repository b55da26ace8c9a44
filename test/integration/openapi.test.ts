import { randomUUID } from 'node:crypto';
import { z as zod, type z } from 'zod';
import { demoResponder } from '../../src/demo-model/responder';
import { AdminDirectory } from '../../src/auth/admins';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import type { OpenApiDocument } from '../../src/http/openapi/document';
import { toOpenApiPath, type ApiOperation } from '../../src/http/openapi/registry';
import { apiRoutes } from '../../src/http/routes';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

type Schema = Record<string, any>;
type DocOperation = Schema & { method: string; path: string };

/**
 * The OpenAPI document (decision 0024) against the running app: every route documented,
 * the document's JSON Schemas accepted and refused exactly as the validators do, a valid 3.1
 * document, and a /docs page whose assets are served locally.
 */
describe('OpenAPI document and /docs', () => {
  let t: TestApp;
  let user: TestUser;
  let doc: OpenApiDocument;
  let canvasId: string;
  let blockId: string;
  let localAgentId: string;
  let cloudAgentId: string;
  let agentflowId: string;
  let chatflowId: string;
  /** An ended execution of the agentflow: a replay checks it exists and has ended before reading its body. */
  let endedExecutionId: string;
  /** A form waiting for the user's answer: answering checks its recipient before reading the body. */
  let inputId: string;

  beforeAll(async () => {
    // The demo model answers chats, generations and flows, and asks a device to delete a task (an approval).
    t = await startTestApp({
      responder: demoResponder,
      env: { ADMIN_USER: 'ops', ADMIN_PASSWORD: 'ops-password', HITL_TIMEOUT_MS: '60000' },
    });
    user = await registerUser(t.api, 'Documenter');
    canvasId = await createCanvas(t.api, user, 'Docs');
    const block = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text: 'Fixture' } },
    });
    blockId = block.body.block.id;
    // Disabled, so the POST probes' enabled agents stay within the free tier's limit.
    const local = await request('POST', `${t.api}/agents/local`, {
      token: user.accessToken,
      body: {
        name: 'Fixture',
        deviceId: 'device-1',
        directoryPaths: ['/fixture'],
        dataTypes: ['notes'],
        promptTemplate: 'Fixture',
        enabled: false,
      },
    });
    expect(local.status).toBe(201);
    localAgentId = local.body.id;
    const cloud = await request('POST', `${t.api}/agents/cloud`, {
      token: user.accessToken,
      body: { provider: 'outlook', name: 'Fixture', dataTypes: ['tasks'], promptTemplate: 'Fixture', enabled: false },
    });
    expect(cloud.status).toBe(201);
    cloudAgentId = cloud.body.id;
    // Flow fixtures: `/flows/{id}/chat…` and embeds take the chatflow, every other `/flows/{id}…` the agentflow.
    const agentflow = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: 'Fixture', definition: { nodes: [{ id: 'a', prompt: 'Say {{input.topic}}' }], output: 'a' } },
    });
    expect(agentflow.status).toBe(201);
    agentflowId = agentflow.body.flow.id;
    const chatflow = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'chatflow', name: 'Fixture', definition: { systemPrompt: 'Fixture' } },
    });
    expect(chatflow.status).toBe(201);
    chatflowId = chatflow.body.flow.id;
    const executed = await request('POST', `${t.api}/flows/${agentflowId}/execute`, {
      token: user.accessToken,
      body: { input: { topic: 'x' } },
    });
    expect(executed.status).toBe(202);
    endedExecutionId = executed.body.executionId;
    await eventually(
      () => request('GET', `${t.api}/flows/${agentflowId}/executions/${endedExecutionId}`, { token: user.accessToken }),
      (read) => read.body.execution?.status === 'completed',
    );
    const asking = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Form fixture',
        definition: {
          nodes: [{ id: 'ask', type: 'human_input', form: { type: 'object', properties: { ok: { type: 'boolean' } } } }],
          output: 'ask',
        },
      },
    });
    expect(asking.status).toBe(201);
    const waiting = await request('POST', `${t.api}/flows/${asking.body.flow.id}/execute`, { token: user.accessToken, body: {} });
    expect(waiting.status).toBe(202);
    const forms = await eventually(
      () => request('GET', `${t.api}/hitl/inputs?status=pending`, { token: user.accessToken }),
      (read) => read.body.inputs?.some((form: { executionId: string }) => form.executionId === waiting.body.executionId),
    );
    inputId = forms.body.inputs.find((form: { executionId: string }) => form.executionId === waiting.body.executionId).id;
    const res = await request('GET', `${t.api}/openapi.json`); // no token: public
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    doc = res.body;
  });

  afterAll(async () => {
    await t?.stop();
  });

  /** Every operation of the served document, flattened. */
  const operations = (): DocOperation[] =>
    Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ ...(op as Schema), method, path })));

  /** The declared route behind a served operation (for its zod response schemas). */
  const registered = (operationId: string) => apiRoutes.find((op) => op.operationId === operationId) as ApiOperation;

  /**
   * `/canvases/{id}/blocks/{blockId}` with real fixtures where a handler checks existence before
   * validating, or where a valid probe should reach a 2xx whose body is checked (agent updates);
   * `{provider}` is an enum, not an id: a random value is a 404 before any validator.
   */
  const fill = (path: string, fixtures = true) =>
    path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      if (!fixtures) return randomUUID();
      if (path.startsWith('/canvases/{id}') && name === 'id') return canvasId;
      if (name === 'blockId') return blockId;
      if (name === 'executionId' && /\/replay(\/stream)?$/.test(path)) return endedExecutionId;
      if (path.startsWith('/hitl/inputs/{id}')) return inputId;
      if (path.startsWith('/agents/local/{id}')) return localAgentId;
      if (path.startsWith('/agents/cloud/{id}')) return cloudAgentId;
      if (path.startsWith('/flows/{id}') && name === 'id') return /^\/flows\/\{id\}\/(chat|embeds)/.test(path) ? chatflowId : agentflowId;
      if (name === 'provider') return 'outlook';
      if (name === 'version') return '1';
      if (path.startsWith('/http-credentials/') && name === 'name') return 'probe_credential';
      return randomUUID();
    });

  describe('coverage', () => {
    // The express wiring and the document come from one list (src/http/routes/index.ts): the served
    // document must list exactly the declared routes, and every declared route must be wired.
    test('the served document lists exactly the declared routes', () => {
      const declared = apiRoutes.map((route) => `${route.method.toUpperCase()} ${route.path}`);
      const documented = operations().map((op) => `${op.method.toUpperCase()} ${op.path.replace(/\{([^}]+)\}/g, ':$1')}`);
      expect(new Set(declared).size).toBe(declared.length);
      expect([...documented].sort()).toEqual([...declared].sort());
      expect(declared.length).toBeGreaterThan(20);
    });

    test('every declared route answers on the live app (no "No route for" 404)', async () => {
      for (const route of apiRoutes) {
        const body = route.body ? [] : undefined; // refused by every body schema: no side effects
        const res = await request(route.method.toUpperCase(), `${t.api}${fill(toOpenApiPath(route.path), false)}`, {
          token: user.accessToken,
          body,
        });
        expect({ op: route.operationId, routed: !(res.status === 404 && /^No route for/.test(res.body?.error?.message ?? '')) }).toEqual({
          op: route.operationId,
          routed: true,
        });
        expect(res.status).toBeLessThan(500);
      }
    });
  });

  describe('drift: requests built from the document meet the same validators', () => {
    test('a body, header or query that violates the documented schema is a 400 in the documented error shape', async () => {
      let probes = 0;
      // Admin routes check rights before the input (a non-admin is 403 whatever they send): an admin probes them.
      const operator = await registerUser(t.api, 'Prober');
      await new AdminDirectory(t.app.repos.admins).grant(operator.email);
      for (const op of operations()) {
        const caller = op.path.startsWith('/admin/') ? operator : user;
        const bodySchema = op.requestBody?.content?.['application/json']?.schema as Schema | undefined;
        const base = op.requestBody?.content?.['application/json']?.example ?? (bodySchema ? sample(bodySchema) : undefined);
        const validHeaders = headerSamples(op);
        const send = (body: unknown, headers = validHeaders, query = '') =>
          probe(op.method, `${t.api}${fill(op.path)}${query}`, { token: caller.accessToken, body, headers });

        const cases: Array<{ what: string; run: () => Promise<Probe> }> = [];
        if (bodySchema) {
          for (const v of violations(bodySchema, base)) cases.push({ what: `body: ${v.what}`, run: () => send(v.value) });
        }
        for (const param of (op.parameters ?? []) as Schema[]) {
          if (param.in === 'header' && param.schema?.pattern) {
            const bad = ['has space', '', 'x'.repeat((param.schema.maxLength ?? 200) + 1)].find(
              (value) => value && !fits(param.schema, value),
            );
            if (bad)
              cases.push({
                what: `header ${param.name}: ${JSON.stringify(bad.slice(0, 20))}`,
                run: () => send(base, { ...validHeaders, [param.name]: bad }),
              });
          }
          if (param.in === 'query') {
            for (const bad of queryViolations(param))
              cases.push({
                what: `query ${param.name}=${bad.length > 40 ? `${bad.slice(0, 8)}… (${bad.length} chars)` : bad}`,
                run: () => send(base, validHeaders, `?${queryString(op, { [param.name]: bad })}`),
              });
            if (param.required)
              cases.push({
                what: `query without ${param.name}`,
                run: () => send(base, validHeaders, `?${queryString(op, {}, param.name)}`),
              });
          }
        }
        for (const c of cases) {
          const res = await c.run();
          probes++;
          expect({ op: op.operationId, case: c.what, status: res.status, code: res.body?.error?.code }).toEqual({
            op: op.operationId,
            case: c.what,
            status: 400,
            code: 'validation_failed',
          });
          expect(typeof res.body.error.message).toBe('string');
        }
      }
      expect(probes).toBeGreaterThan(40);
    });

    test('a body valid per the documented schema passes validation (and 2xx bodies match the documented response)', async () => {
      let checkedResponses = 0;
      for (const op of operations()) {
        const media = op.requestBody?.content?.['application/json'];
        if (!media) continue;
        // Required fields only, every field, and (unless a refinement JSON Schema cannot state caps it)
        // every string at its documented maxLength, so a documented limit looser than the validator's fails.
        const bodies =
          media.example !== undefined
            ? [media.example]
            : [
                sample(media.schema),
                sample(media.schema, { full: true }),
                ...(op.operationId in REFINED_LENGTHS ? [] : [sample(media.schema, { full: true, longest: true })]),
              ];
        for (const body of bodies) {
          const res = await probe(op.method, `${t.api}${fill(op.path)}`, { token: user.accessToken, body, headers: headerSamples(op) });
          // Refused by a schema = parseOr400's "Invalid request body"; a 400 from a later check (an
          // afterId that names no block, say) means the body passed validation.
          const refused =
            res.status === 400 &&
            (res.body?.error?.code === 'invalid_json' || /^Invalid request body/.test(res.body?.error?.message ?? ''));
          expect({ op: op.operationId, body, refused, status: res.status < 500 }).toEqual({
            op: op.operationId,
            body,
            refused: false,
            status: true,
          });
          if (res.status >= 400)
            expect(res.body).toEqual({ error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }) });
          const documented = registered(op.operationId).responses[res.status];
          if (documented && typeof documented === 'object' && documented.schema && res.json) {
            expect({ op: op.operationId, issues: (documented.schema as z.ZodType).safeParse(res.body).error?.issues ?? [] }).toEqual({
              op: op.operationId,
              issues: [],
            });
            checkedResponses++;
          }
        }
      }
      expect(checkedResponses).toBeGreaterThan(3);
    });
  });

  describe('responses: live 2xx bodies against the declared schemas', () => {
    /** Routes that once declared their 2xx in prose only: each must now carry a schema and be exercised below. */
    const EXERCISED = [
      'listCanvasAudit',
      'getGeneration',
      'chat',
      'listChatSessions',
      'getChatSession',
      'getChatHistory',
      'getSessionDocumentation',
      'listApprovalRequests',
      'getApprovalRequest',
      'approveRequest',
      'rejectRequest',
      'chatWithFlow',
      'embedChat',
      'getMetricsSummary',
      'getMetricsJson',
    ];
    const checked = new Set<string>();

    /** A 2xx JSON body, checked against the schema its route declares for that status. */
    const expectDeclared = (operationId: string, res: { status: number; body: unknown }) => {
      const documented = registered(operationId).responses[res.status];
      const schema = documented && typeof documented === 'object' ? (documented.schema as z.ZodType | undefined) : undefined;
      expect({ op: operationId, status: res.status, schema: Boolean(schema) }).toEqual({
        op: operationId,
        status: expect.any(Number),
        schema: true,
      });
      expect(res.status >= 200 && res.status < 300).toBe(true);
      expect({ op: operationId, issues: schema!.safeParse(res.body).error?.issues ?? [] }).toEqual({ op: operationId, issues: [] });
      checked.add(operationId);
      return res.body as any;
    };
    const call = (method: string, path: string, body?: unknown, token = user.accessToken) =>
      request(method, `${t.api}${path}`, { token, body });

    test('each route whose 2xx was prose declares a schema', () => {
      for (const operationId of EXERCISED) {
        const route = registered(operationId);
        const twoXx = Object.entries(route.responses).filter(([status]) => Number(status) >= 200 && Number(status) < 300);
        expect({ op: operationId, schemas: twoXx.map(([, r]) => typeof r === 'object' && Boolean(r.schema)) }).toEqual({
          op: operationId,
          schemas: [true],
        });
      }
    });

    test('canvas audit and a finished generation', async () => {
      const other = await registerUser(t.api, 'Audited');
      expect((await call('POST', `/canvases/${canvasId}/members`, { email: other.email, role: 'viewer' })).status).toBeLessThan(300);
      const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { prompt: 'A heading and two todos' },
        until: (m) => m.event === 'complete' || m.event === 'error',
      });
      const generationId = sse.headers.get('x-generation-id');
      expect(generationId).toEqual(expect.any(String));

      const audit = expectDeclared('listCanvasAudit', await call('GET', `/canvases/${canvasId}/audit?limit=200`));
      expect(audit.audit.map((row: { action: string }) => row.action)).toContain('canvas.member.set');
      const { generation } = expectDeclared('getGeneration', await call('GET', `/canvases/${canvasId}/ai/generations/${generationId}`));
      expect(generation).toMatchObject({ id: generationId, status: 'completed' });
    }, 30_000);

    test('assistant chat, its sessions, history and ticket notes', async () => {
      const turn = expectDeclared('chat', await call('POST', '/chat', { message: 'Hello there', tools: 'none' }));
      expect(turn.response.length).toBeGreaterThan(0);
      const listed = expectDeclared('listChatSessions', await call('GET', '/chat/sessions?limit=200'));
      expect(listed.sessions.map((s: { id: string }) => s.id)).toContain(turn.sessionId);
      expect(expectDeclared('getChatSession', await call('GET', `/chat/sessions/${turn.sessionId}`)).session.id).toBe(turn.sessionId);
      const history = expectDeclared('getChatHistory', await call('GET', `/chat/sessions/${turn.sessionId}/history`));
      expect(history.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);
      expect(history.messages[1].usage).not.toBeNull();
      expect((await call('POST', `/chat/sessions/${turn.sessionId}/resolve`, {})).status).toBe(200);
      const notes = expectDeclared('getSessionDocumentation', await call('GET', `/chat/sessions/${turn.sessionId}/documentation`));
      expect(notes).toMatchObject({ sessionId: turn.sessionId, status: 'resolved' });
    }, 30_000);

    test('approvals: listed, read, approved and rejected', async () => {
      const taskIds = [randomUUID(), randomUUID()];
      const device = await DeviceSimulator.connect({
        url: t.url,
        accessToken: user.accessToken,
        deviceId: 'openapi-device',
        reconnection: false,
        seed: { tasks: taskIds.map((id, i) => ({ id, title: `Old ${i}`, status: 'done', priority: 'low' })) },
      });
      try {
        const approvals: string[] = [];
        for (const id of taskIds) {
          const requested = new Promise<ApprovalRequested>((resolve) => device.socket.once('approval_requested', resolve));
          await device.socket.timeout(5_000).emitWithAck('chat_request', { message: `Delete task ${id}` });
          approvals.push((await requested).approvalId);
        }
        const pending = expectDeclared('listApprovalRequests', await call('GET', '/hitl/requests?status=pending&limit=1'));
        expect(pending.requests).toHaveLength(1);
        expect(pending.nextCursor).toEqual(expect.any(String));
        expect(expectDeclared('getApprovalRequest', await call('GET', `/hitl/requests/${approvals[0]}`)).status).toBe('pending');
        expect(expectDeclared('approveRequest', await call('PUT', `/hitl/requests/${approvals[0]}/approve`))).toMatchObject({
          status: 'approved',
          decisionReason: 'user',
        });
        expect(expectDeclared('rejectRequest', await call('PUT', `/hitl/requests/${approvals[1]}/reject`))).toMatchObject({
          status: 'rejected',
          decidedBy: user.id,
        });
        const last = expectDeclared('listApprovalRequests', await call('GET', '/hitl/requests'));
        expect(last).not.toHaveProperty('nextCursor');
      } finally {
        device.close();
      }
    }, 30_000);

    test("a chatflow's chat, for its owner and through an embed", async () => {
      const owned = expectDeclared('chatWithFlow', await call('POST', `/flows/${chatflowId}/chat`, { message: 'Hi flow' }));
      expect(owned.response.length).toBeGreaterThan(0);
      const embed = await call('POST', `/flows/${chatflowId}/embeds`, { allowedOrigins: ['https://shop.example'] });
      expect(embed.status).toBe(201);
      const visitor = expectDeclared(
        'embedChat',
        await request('POST', `${t.api}/embed/public/${embed.body.embedToken}/chat`, { body: { message: 'Hi widget' } }),
      );
      expect(visitor.sessionId).not.toBe(owned.sessionId);
    }, 30_000);

    test('metrics: the summary (user and admin) and the JSON form', async () => {
      expect(expectDeclared('getMetricsSummary', await call('GET', '/metrics/summary')).scope).toBe('user');
      const admin = await registerUser(t.api, 'Operator');
      await new AdminDirectory(t.app.repos.admins).grant(admin.email);
      const all = expectDeclared('getMetricsSummary', await call('GET', '/metrics/summary', undefined, admin.accessToken));
      expect(all.scope).toBe('all');
      expect(all.usage.byModel.length).toBeGreaterThan(0);
      const basic = `Basic ${Buffer.from('ops:ops-password').toString('base64')}`;
      const metrics = expectDeclared(
        'getMetricsJson',
        await request('GET', `${t.api}/metrics/json`, { headers: { authorization: basic } }),
      );
      expect(metrics.some((m: { type: string }) => m.type === 'histogram')).toBe(true);
    });

    test('every route listed above was exercised', () => {
      expect([...checked].sort()).toEqual([...EXERCISED].sort());
    });
  });

  describe('structure', () => {
    test('the document is OpenAPI 3.1 with unique operationIds, declared path params and resolvable $refs', () => {
      expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
      expect(doc.info).toEqual(expect.objectContaining({ title: expect.any(String), version: expect.any(String) }));
      const ids = operations().map((op) => op.operationId);
      expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);

      for (const op of operations()) {
        const inTemplate = [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
        const declared = (op.parameters ?? []).filter((p: Schema) => p.in === 'path');
        expect({ op: op.operationId, params: declared.map((p: Schema) => p.name).sort() }).toEqual({
          op: op.operationId,
          params: inTemplate,
        });
        for (const p of declared) expect(p.required).toBe(true);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
        for (const requirement of op.security ?? doc.security)
          for (const scheme of Object.keys(requirement)) expect(doc.components.securitySchemes[scheme]).toBeDefined();
        if (op.security?.length !== 0) expect(op.responses['401']).toEqual({ $ref: '#/components/responses/Unauthorized' });
      }

      const refs: string[] = [];
      const walk = (node: unknown) => {
        if (Array.isArray(node)) return node.forEach(walk);
        if (!node || typeof node !== 'object') return;
        for (const [key, value] of Object.entries(node)) {
          if (key === '$ref' && typeof value === 'string') refs.push(value);
          else walk(value);
        }
      };
      walk(doc);
      expect(refs.length).toBeGreaterThan(10);
      for (const ref of new Set(refs)) expect({ ref, resolves: resolvePointer(doc, ref) !== undefined }).toEqual({ ref, resolves: true });
    });

    test('the error shape is one shared component, used for 400/401/403/404/409/422/429', () => {
      expect(doc.components.schemas.Error).toEqual(expect.objectContaining({ type: 'object', required: ['error'] }));
      expect((doc.components.schemas.Error as Schema).properties.error.required).toEqual(['code', 'message']);
      const used = new Set(
        operations().flatMap((op) =>
          Object.entries(op.responses)
            .filter(([, r]) => (r as Schema).$ref)
            .map(([status]) => status),
        ),
      );
      for (const status of ['400', '401', '403', '404', '409', '422', '429']) expect(used).toContain(status);
      expect((doc.components.responses.TooManyRequests as Schema).headers['Retry-After']).toBeDefined();
    });

    test('a route that checks admin credentials itself documents them: HTTP Basic or an admin bearer token', () => {
      const op = (doc.paths['/metrics/json'] as Schema).get;
      expect(op.security).toEqual([{ adminBasic: [] }, { bearerAuth: [] }]);
      expect(doc.components.securitySchemes.adminBasic).toEqual(expect.objectContaining({ type: 'http', scheme: 'basic' }));
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '401', '403']));
      // Public routes that check nothing stay open.
      expect((doc.paths['/auth/login'] as Schema).post.security).toEqual([]);
    });

    test('every event stream documents its 429 too_many_streams and its 503 while the node shuts down', () => {
      const streams = operations().filter((op) => Object.values(op.responses).some((r) => (r as Schema).content?.['text/event-stream']));
      expect(streams.map((op) => op.operationId)).toEqual(
        expect.arrayContaining(['replayGenerationEvents', 'chatStream', 'streamFlowExecutionEvents']),
      );
      for (const op of streams) {
        const { 429: tooMany, 503: unavailable } = op.responses as Record<string, Schema>;
        expect({ op: op.operationId, tooMany: tooMany?.description, unavailable: unavailable?.description }).toEqual({
          op: op.operationId,
          tooMany: expect.stringContaining('too_many_streams'),
          unavailable: expect.stringContaining('shutting_down'),
        });
        expect(tooMany.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
        expect(tooMany.headers['Retry-After']).toBeDefined();
      }
    });

    test('the replay streams take lastEventId in the query, and a JSON body documents its 415', () => {
      for (const path of ['/canvases/{id}/ai/generations/{generationId}/events', '/flows/{id}/executions/{executionId}/events']) {
        const parameters = (doc.paths[path] as Schema).get.parameters as Schema[];
        expect(parameters.find((p) => p.name === 'lastEventId')).toEqual(
          expect.objectContaining({ in: 'query', required: false, schema: expect.objectContaining({ type: 'string' }) }),
        );
        expect(parameters.find((p) => p.name === 'Last-Event-ID')).toEqual(expect.objectContaining({ in: 'header' }));
      }
      expect((doc.paths['/canvases'] as Schema).post.responses['415']).toEqual({ $ref: '#/components/responses/UnsupportedMediaType' });
    });

    test('the chat stream lists its approval events, and the device WebSocket is described', () => {
      const description = (doc.paths['/chat/stream'] as Schema).post.responses['200'].description as string;
      for (const event of ['text_chunk', 'approval_requested', 'approval_resolved', 'final', 'error', 'cancelled'])
        expect(description).toContain(`\`${event} `);
      expect(doc.info.description).toContain('GET /api/v1/ws/device?token=');
      expect(doc.info.description).toContain('101 Switching Protocols');
    });

    test('a flow definition is documented with the definition schemas, not as an untyped object', () => {
      const flowSchema = (doc.paths['/flows/{id}'] as Schema).get.responses['200'].content['application/json'].schema;
      const definition = flowSchema.properties.flow.properties.definition;
      expect(definition.anyOf.map((s: Schema) => Object.keys(s.properties).sort())).toEqual([
        ['historyWindow', 'knowledge', 'model', 'systemPrompt', 'temperature'],
        ['allowedOrigins', 'description', 'deviceId', 'httpTools', 'nodes', 'output'],
      ]);
      for (const [path, method] of [
        ['/flows', 'post'],
        ['/flows/{id}', 'patch'],
      ] as const) {
        const body = (doc.paths[path] as Schema)[method].requestBody.content['application/json'].schema;
        const variants = body.properties.definition.oneOf as Schema[];
        expect(variants.map((s) => s.required)).toEqual([['nodes', 'output'], ['systemPrompt']]);
        // A node is one of the node kinds (prompt, condition, router, foreach, loop, subflow): each has a patterned id.
        const items = variants[0].properties.nodes.items as Schema;
        const kinds = (items.anyOf ?? items.oneOf ?? [items]) as Schema[];
        expect(kinds.length).toBeGreaterThan(0);
        for (const kind of kinds) expect(kind.properties.id.pattern).toBeDefined();
        expect(variants[1].additionalProperties).toBe(false);
      }
    });

    test('the served request schemas are what zod generates from the registered objects (no stale copy)', () => {
      const bodies = apiRoutes.filter((o) => o.body);
      expect(bodies.length).toBeGreaterThan(10);
      for (const op of bodies) {
        const served = (doc.paths[toOpenApiPath(op.path)] as Schema)[op.method].requestBody.content['application/json'].schema;
        const { $schema: _, ...generated } = zod.toJSONSchema(op.body!, { target: 'draft-2020-12', io: 'input' }) as Schema;
        expect({ op: op.operationId, schema: served }).toEqual({ op: op.operationId, schema: generated });
      }
    });
  });

  describe('/docs', () => {
    test('serves an HTML page with no inline script whose scripts and styles load from this server', async () => {
      const page = await fetch(`${t.url}/docs`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
      const html = await page.text();
      const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length).toBeGreaterThanOrEqual(3);
      for (const [, attrs, inline] of scripts) {
        expect(attrs).toMatch(/src="\/docs\//);
        expect(inline.trim()).toBe('');
      }
      const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
      expect(assets.every((a) => a.startsWith('/docs/'))).toBe(true);
      for (const asset of assets) {
        const res = await fetch(`${t.url}${asset}`);
        const type = res.headers.get('content-type') ?? '';
        expect({
          asset,
          status: res.status,
          typeOk: /\.js(\?|$)/.test(asset) ? /javascript/.test(type) : /\.css(\?|$)/.test(asset) ? /text\/css/.test(type) : true,
        }).toEqual({ asset, status: 200, typeOk: true });
        expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
      }
      const init = await (await fetch(`${t.url}/docs/switchboard-init.js`)).text();
      expect(init).toContain("'/api/v1/openapi.json'");
    });

    test('the page, its assets and the document are served compressed, assets cached as immutable, all revalidated by ETag', async () => {
      const html = await (await fetch(`${t.url}/docs`)).text();
      const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
      let compressedBytes = 0;
      for (const url of [...assets.filter((a) => !a.endsWith('.png') && !a.includes('.png?')), '/api/v1/openapi.json']) {
        const res = await fetch(`${t.url}${url}`, { headers: { 'accept-encoding': 'br, gzip' } });
        await res.arrayBuffer();
        const etag = res.headers.get('etag');
        expect({
          url,
          status: res.status,
          encoding: res.headers.get('content-encoding'),
          vary: /Accept-Encoding/i.test(res.headers.get('vary') ?? ''),
        }).toEqual({ url, status: 200, encoding: 'br', vary: true });
        if (url.includes('?v=')) expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
        compressedBytes += Number(res.headers.get('content-length'));
        // A browser's revalidation (fetch alone would add `Cache-Control: no-cache`, a forced reload).
        const again = await fetch(`${t.url}${url}`, { headers: { 'if-none-match': etag!, 'cache-control': 'max-age=0' } });
        expect({ url, status: again.status }).toEqual({ url, status: 304 });
      }
      // Uncompressed the page loads 2.4 MB (the Swagger UI bundle alone is 1.7 MB).
      expect(compressedBytes).toBeLessThan(800_000);
      const gzip = await fetch(`${t.url}/api/v1/openapi.json`, { headers: { 'accept-encoding': 'gzip' } });
      const plain = await fetch(`${t.url}/api/v1/openapi.json`, { headers: { 'accept-encoding': 'identity' } });
      expect([gzip.headers.get('content-encoding'), plain.headers.get('content-encoding')]).toEqual(['gzip', null]);
      expect(await gzip.json()).toEqual(await plain.json());
    });

    test('files of swagger-ui-dist that /docs does not use are not served', async () => {
      for (const path of ['/docs/swagger-initializer.js', '/docs/index.html', '/docs/package.json', '/docs/../package.json']) {
        const res = await request('GET', `${t.url}${path}`);
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
      }
    });
  });
});

/** Bodies whose string limits a refinement tightens (stated in the operation's description). */
const REFINED_LENGTHS: Record<string, string> = {
  createBlock: 'content is at most 20,000 characters as JSON, so content.text cannot reach its own 20,000',
};

// ---------------------------------------------------------------------------------------------
// Requests

interface Probe {
  status: number;
  body: any;
  json: boolean;
}

/** One request; an event stream is closed once its status and headers arrived (no need to follow it). */
async function probe(
  method: string,
  url: string,
  options: { token: string; body: unknown; headers?: Record<string, string> },
): Promise<Probe> {
  const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const controller = new AbortController();
  const res = await fetch(url, {
    method: method.toUpperCase(),
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: controller.signal,
  });
  const type = res.headers.get('content-type') ?? '';
  if (type.startsWith('text/event-stream')) {
    controller.abort();
    return { status: res.status, body: undefined, json: false };
  }
  const text = await res.text();
  const json = type.includes('json') && text.length > 0;
  return { status: res.status, body: json ? JSON.parse(text) : text, json };
}

function headerSamples(op: DocOperation): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const p of (op.parameters ?? []) as Schema[]) if (p.in === 'header' && p.required) headers[p.name] = String(sample(p.schema));
  return headers;
}

function queryString(op: DocOperation, override: Record<string, string>, without?: string): string {
  const params = new URLSearchParams();
  for (const p of (op.parameters ?? []) as Schema[]) {
    if (p.in !== 'query' || p.name === without || !(p.required || p.name in override)) continue;
    params.set(p.name, override[p.name] ?? String(sample(p.schema)));
  }
  return params.toString();
}

function queryViolations(param: Schema): string[] {
  const s = param.schema ?? {};
  const bad: string[] = [];
  if (s.enum) bad.push('not-one-of-the-values');
  if (s.type === 'integer' || s.type === 'number') bad.push('not-a-number');
  if (s.format === 'uuid') bad.push('not-a-uuid');
  if (typeof s.maximum === 'number') bad.push(String(s.maximum + 1));
  if (s.type === 'string' && typeof s.maxLength === 'number' && s.maxLength < 8_000) bad.push('a'.repeat(s.maxLength + 1));
  return bad;
}

// ---------------------------------------------------------------------------------------------
// Values from JSON Schema (the subset zod emits): samples that satisfy it, and violations

/** The object branch a body uses (the first of a oneOf/anyOf). */
const branch = (schema: Schema): Schema => schema.oneOf?.[0] ?? schema.anyOf?.find((s: Schema) => s.type !== 'null') ?? schema;

/** A value satisfying `schema`: required properties only, or every property with `full`. */
function sample(schema: Schema, options: { full?: boolean; longest?: boolean } = {}): unknown {
  const s = branch(schema);
  if ('const' in s) return s.const;
  if (s.enum) return s.enum[0];
  switch (s.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const required = new Set<string>(s.required ?? []);
      for (const [name, prop] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) {
        if (required.has(name) || options.full) out[name] = sample(prop, options);
      }
      return out;
    }
    case 'array':
      return Array.from({ length: s.minItems ?? 0 }, () => sample(s.items ?? {}, options));
    case 'integer':
    case 'number':
      return s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : 0);
    case 'boolean':
      return false;
    case 'null':
      return null;
    case 'string':
      return options.longest && s.maxLength !== undefined && s.maxLength <= 100_000 && !s.pattern && !s.format
        ? 'a'.repeat(s.maxLength)
        : sampleString(s);
    default:
      return null;
  }
}

function sampleString(s: Schema): string {
  const candidates: string[] = [];
  if (s.format === 'email') candidates.push(`probe-${randomUUID().slice(0, 8)}@example.com`);
  if (s.format === 'uuid') candidates.push(randomUUID());
  if (s.format === 'date-time') candidates.push(new Date().toISOString());
  if (s.format === 'uri') candidates.push('https://example.com/a.png');
  const min = Math.max(s.minLength ?? 0, 1);
  candidates.push('a'.repeat(min), 'device-1', `x${'a'.repeat(min)}`, 'https://example.com/a.png', '1');
  const value = candidates.find((c) => fits(s, c));
  if (value === undefined) throw new Error(`no sample string for ${JSON.stringify(s)}`);
  return value;
}

function fits(s: Schema, value: string): boolean {
  return (
    (s.minLength === undefined || value.length >= s.minLength) &&
    (s.maxLength === undefined || value.length <= s.maxLength) &&
    (s.pattern === undefined || new RegExp(s.pattern, 'u').test(value))
  );
}

/** JSON types a schema admits. */
function typesOf(s: Schema): Set<string> {
  const types = new Set<string>();
  for (const part of [s, ...(s.anyOf ?? []), ...(s.oneOf ?? [])]) {
    if (Array.isArray(part.type)) part.type.forEach((x: string) => types.add(x));
    else if (part.type) types.add(part.type);
    if ('const' in part) types.add(part.const === null ? 'null' : typeof part.const);
  }
  if (types.has('integer')) types.add('number');
  return types;
}

const typeOfValue = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/**
 * Bodies that break `schema` in one place each, starting from the valid `base`: the wrong type at
 * the top, a required property missing, an undeclared property, a property of the wrong type,
 * a string past its length bounds, a value outside its enum or format (recursing into objects).
 */
function violations(schema: Schema, base: unknown, path: string[] = []): Array<{ what: string; value: unknown }> {
  const out: Array<{ what: string; value: unknown }> = [];
  const at = (value: unknown) => setAt(base, path, value);
  const label = path.join('.') || '(body)';
  const s = branch(schema);
  const here = path.reduce<any>((v, k) => v?.[k], base);
  const types = typesOf(schema);
  if (types.size) {
    // At the top only arrays and objects: express.json is strict, so a bare 12345 is `invalid_json` before any validator.
    const candidates =
      path.length === 0 ? [[] as unknown[], { unexpected: 1 }] : [12345, 'not-the-type', true, [] as unknown[], { unexpected: 1 }];
    const wrong = candidates.find((v) => !types.has(typeOfValue(v)) && !(types.has('object') && typeOfValue(v) === 'object'));
    if (wrong !== undefined) out.push({ what: `${label} as ${typeOfValue(wrong)}`, value: at(wrong) });
  }
  if ('const' in s && typeof s.const === 'string') out.push({ what: `${label} not ${s.const}`, value: at(`not-${s.const}`) });
  if (s.enum) out.push({ what: `${label} outside enum`, value: at('not-one-of-the-values') });
  if (s.type === 'string' && !types.has('null')) {
    if (s.maxLength !== undefined && s.maxLength < 100_000)
      out.push({ what: `${label} longer than ${s.maxLength}`, value: at('a'.repeat(s.maxLength + 1)) });
    if ((s.minLength ?? 0) > 0) out.push({ what: `${label} empty`, value: at('') });
    if (s.format === 'uuid' || s.format === 'email') out.push({ what: `${label} not ${s.format}`, value: at('not valid') });
  }
  if ((s.type === 'integer' || s.type === 'number') && s.maximum !== undefined)
    out.push({ what: `${label} above ${s.maximum}`, value: at(s.maximum + 1) });
  if (s.type === 'object' && here && typeof here === 'object') {
    for (const name of s.required ?? []) out.push({ what: `${label} without ${name}`, value: at(omit(here, name)) });
    if (s.additionalProperties === false)
      out.push({ what: `${label} with an undeclared property`, value: at({ ...here, undeclaredProperty: 1 }) });
    for (const [name, prop] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) {
      if (name in here) out.push(...violations(prop, base, [...path, name]));
    }
  }
  return out;
}

function omit(value: Record<string, unknown>, name: string) {
  const { [name]: _, ...rest } = value;
  return rest;
}

function setAt(base: unknown, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  return { ...(base as Record<string, unknown>), [head]: setAt((base as Record<string, unknown>)[head], rest, value) };
}

function resolvePointer(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<any>((node, key) => (node && typeof node === 'object' ? node[key] : undefined), root);
}

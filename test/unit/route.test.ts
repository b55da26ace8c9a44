import type { AddressInfo } from 'node:net';
import express from 'express';
import { z } from 'zod';
import { forbidden } from '../../src/lib/errors';
import { createLogger } from '../../src/lib/logger';
import type { ApiContext } from '../../src/http/context';
import { errorHandler, notFoundHandler } from '../../src/http/middleware/error-handler';
import { buildOpenApiDocument } from '../../src/http/openapi/document';
import { defineRoute, routesRouter, successStatus } from '../../src/http/route';
import { canvasIdParam } from '../../src/http/routes/params';

/**
 * `defineRoute` + `routesRouter` on a real express server: params parsed eagerly (404), query and
 * body lazily (so a 403 comes before a 400), the returned value sent with the declared status.
 */
describe('route declarations', () => {
  const seen: string[] = [];
  const routes = [
    defineRoute({
      method: 'post',
      path: '/things/:id',
      operationId: 'postThing',
      tags: ['t'],
      auth: 'public',
      summary: 'A thing',
      params: canvasIdParam,
      query: z.strictObject({ mode: z.enum(['a', 'b']).optional() }),
      body: z.strictObject({ title: z.string().min(1) }),
      headers: { 'X-Count': { description: 'A count', schema: z.coerce.number().int().max(9) } },
      responses: { 201: 'Created' },
      handler: (input) => {
        seen.push('handler');
        if (input.req.get('x-deny')) throw forbidden();
        return { id: input.params.id, title: input.body.title, mode: input.query.mode ?? null, count: input.headers['X-Count'] ?? null };
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/things/:id',
      operationId: 'deleteThing',
      tags: ['t'],
      auth: 'public',
      summary: 'Delete',
      params: canvasIdParam,
      responses: { 204: 'Deleted' },
      handler: () => undefined,
    }),
    defineRoute({
      method: 'get',
      path: '/mine',
      operationId: 'mine',
      tags: ['t'],
      auth: 'bearer',
      summary: 'Needs a token',
      responses: { 200: 'Yours' },
      handler: ({ user }) => ({ id: user.id }),
    }),
    defineRoute({
      method: 'get',
      path: '/raw',
      operationId: 'raw',
      tags: ['t'],
      auth: 'public',
      summary: 'Answers through res',
      responses: { 200: 'Text', 202: 'Accepted' },
      handler: ({ res }) => void res.type('text/plain').send('raw'),
    }),
  ];
  const ctx = {
    tokens: { secret: new TextEncoder().encode('x'.repeat(32)), issuer: 'i', audience: 'a', accessTokenTtlSeconds: 60 },
  } as unknown as ApiContext;
  let base: string;
  let server: ReturnType<express.Express['listen']>;

  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    app.use(routesRouter(routes, ctx));
    app.use(notFoundHandler);
    app.use(errorHandler(createLogger({ level: 'silent' })));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  const id = '6F9619FF-8B86-4011-B42D-00C04FC964FF';
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
  };

  test('a valid request gets the returned value as JSON with the one declared 2xx status, parsed by the schemas', async () => {
    const res = await call('POST', `/things/${id}?mode=b`, { title: 'T' }, { 'X-Count': '7' });
    expect(res).toEqual({ status: 201, body: { id: id.toLowerCase(), title: 'T', mode: 'b', count: 7 } });
  });

  test('a path parameter failing its schema is 404 not_found naming the resource, before the handler runs', async () => {
    seen.length = 0;
    const res = await call('POST', '/things/not-a-uuid', { title: 'T' });
    expect(res).toEqual({ status: 404, body: { error: { code: 'not_found', message: 'Canvas not found' } } });
    expect(seen).toEqual([]);
  });

  test('body, query and headers are parsed on first read: a 403 thrown before reading them wins over a bad body', async () => {
    expect((await call('POST', `/things/${id}`, { title: '' }, { 'x-deny': '1' })).body.error.code).toBe('forbidden');
    for (const [body, query, headers] of [
      [{ title: '' }, '', {}],
      [{ title: 'T' }, '?mode=c', {}],
      [{ title: 'T' }, '', { 'X-Count': '99' }],
    ] as const) {
      const res = await call('POST', `/things/${id}${query}`, body, headers);
      expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 400, code: 'validation_failed' });
    }
  });

  test('a 204 route that returns nothing answers 204 with no body; a handler may answer through res', async () => {
    expect(await call('DELETE', `/things/${id}`)).toEqual({ status: 204, body: '' });
    expect(await call('GET', '/raw')).toEqual({ status: 200, body: 'raw' });
  });

  test('a bearer route without a token is 401 before its handler', async () => {
    expect((await call('GET', '/mine')).status).toBe(401);
  });

  test('the same declarations build the OpenAPI operations', () => {
    const doc = buildOpenApiDocument(routes);
    expect(Object.keys(doc.paths).sort()).toEqual(['/mine', '/raw', '/things/{id}']);
    expect(doc.paths['/things/{id}'].post.operationId).toBe('postThing');
    expect(successStatus(routes[0])).toBe(201);
    expect(successStatus(routes[3])).toBeUndefined();
  });
});

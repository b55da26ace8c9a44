import { embedSchema } from '../../../schemas/api';
import type { ApiOperation } from '../registry';
import { embedResponse } from '../response-schemas';

/** `embedding-routes.ts`, `metrics-routes.ts`, and the document itself. */
export const platformOperations: ApiOperation[] = [
  {
    method: 'post', path: '/storage/vectors/embed', operationId: 'embedText', tags: ['storage'], auth: 'bearer',
    summary: 'Embed a text through the `embeddings` queue',
    body: embedSchema,
    responses: { 200: { description: 'The vector', schema: embedResponse } },
    errors: [429, 503],
  },
  {
    method: 'get', path: '/metrics/summary', operationId: 'getMetricsSummary', tags: ['operations'], auth: 'bearer',
    summary: 'Queue counts, tokens and cost by model, cost of the last 24 h',
    description: "A user sees their own usage (`scope: user`); an admin sees everyone's (`scope: all`).",
    responses: { 200: '`{scope, queues: {<queue>: {waiting, active, delayed, failed, completed}}, usage: {byModel: [...], last24h: {costUsd, calls}}}`' },
  },
  {
    method: 'get', path: '/metrics/json', operationId: 'getMetricsJson', tags: ['operations'], auth: 'public',
    summary: "This process's Prometheus metrics in prom-client's JSON form (admins only)",
    description:
      "The dashboard's credentials: HTTP Basic `ADMIN_USER`/`ADMIN_PASSWORD`, or the Bearer token of an admin. 401 without credentials, 403 with " +
      'credentials that are not an admin\'s. Answers `[{name, help, type, values: [{labels, value}]}]` (histogram values carry `metricName`, ' +
      'e.g. `…_bucket`, `…_sum`, `…_count`).',
    responses: { 200: '`[{name, help, type, values: [{labels, value, metricName?}]}]`' },
    errors: [401, 403],
  },
  {
    method: 'get', path: '/openapi.json', operationId: 'getOpenApiDocument', tags: ['operations'], auth: 'public',
    summary: 'This document (OpenAPI 3.1); an interactive reference is served at `/docs`',
    responses: { 200: 'The OpenAPI document' },
  },
];

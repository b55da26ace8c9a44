import { z } from 'zod';
import {
  DEVICE_WEBSOCKET_DESCRIPTION,
  ERROR_RESPONSES,
  STREAM_ERRORS,
  pathParamNames,
  toOpenApiPath,
  type ApiOperation,
  type ApiResponse,
  type ErrorStatus,
} from './registry';
import { errorBodySchema } from './response-schemas';

type JsonSchema = Record<string, unknown>;
type Json = Record<string, unknown>;

/** The OpenAPI 3.1 document, as served at `/api/v1/openapi.json`. */
export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description: string };
  servers: Array<{ url: string }>;
  security: Array<Record<string, string[]>>;
  tags: Array<{ name: string }>;
  paths: Record<string, Record<string, Json>>;
  components: { schemas: Record<string, JsonSchema>; responses: Record<string, Json>; securitySchemes: Record<string, Json> };
}

export const API_BASE_PATH = '/api/v1';

/**
 * Converts zod schemas to JSON Schema 2020-12 (the dialect of OpenAPI 3.1). Request schemas use
 * zod's `input` view (what a client sends, before transforms), responses its `output` view.
 * Definitions zod extracts (`$defs`: schemas with a registry id, or cycles) move to
 * `components.schemas`, so every `$ref` resolves against the document root.
 */
class SchemaConverter {
  readonly components: Record<string, JsonSchema> = {};

  convert(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
    const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'throw' }) as JsonSchema;
    delete json.$schema;
    const defs = (json.$defs ?? {}) as Record<string, JsonSchema>;
    delete json.$defs;
    const renamed = new Map<string, string>();
    for (const [name, def] of Object.entries(defs)) {
      let target = name;
      for (let n = 2; this.components[target] && JSON.stringify(this.components[target]) !== JSON.stringify(def); n++)
        target = `${name}${n}`;
      renamed.set(name, target);
    }
    const rewrite = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(rewrite);
      if (!node || typeof node !== 'object') return node;
      const out: Json = {};
      for (const [key, value] of Object.entries(node)) {
        out[key] =
          key === '$ref' && typeof value === 'string' && value.startsWith('#/$defs/')
            ? `#/components/schemas/${renamed.get(value.slice('#/$defs/'.length)) ?? value.slice('#/$defs/'.length)}`
            : rewrite(value);
      }
      return out;
    };
    for (const [name, def] of Object.entries(defs)) this.components[renamed.get(name)!] = rewrite(def) as JsonSchema;
    return rewrite(json) as JsonSchema;
  }
}

/**
 * Builds the document from the operations. Throws on a programming error (a duplicate route or
 * operationId, a path parameter not declared) so a bad registration fails at start and in tests.
 */
export function buildOpenApiDocument(operations: ApiOperation[]): OpenApiDocument {
  const converter = new SchemaConverter();
  const paths: OpenApiDocument['paths'] = {};
  const operationIds = new Set<string>();

  for (const op of operations) {
    const where = `${op.method.toUpperCase()} ${op.path}`;
    if (operationIds.has(op.operationId)) throw new Error(`OpenAPI: duplicate operationId ${op.operationId} (${where})`);
    operationIds.add(op.operationId);
    const declared = Object.keys(op.params ?? {})
      .sort()
      .join(',');
    const inPath = pathParamNames(op.path).sort().join(',');
    if (declared !== inPath) throw new Error(`OpenAPI: ${where} declares path params [${declared}] but its path has [${inPath}]`);
    const pathItem = (paths[toOpenApiPath(op.path)] ??= {});
    if (pathItem[op.method]) throw new Error(`OpenAPI: ${where} is documented twice`);
    pathItem[op.method] = operationObject(op, converter);
  }

  const tags = [...new Set(operations.flatMap((op) => op.tags))].map((name) => ({ name }));
  return {
    openapi: '3.1.1',
    info: {
      title: 'Switchboard API',
      version: 'v1',
      description:
        'Canvas AI generation, assistant chat, approvals and operations. Errors are always `{"error":{"code","message","details?"}}`. ' +
        'Generated from the zod schemas the routes validate with. A JSON body must be sent with `Content-Type: application/json` ' +
        '(any other is 415 `unsupported_media_type`). Event streams resume with the `Last-Event-ID` header (or `?lastEventId=`). ' +
        DEVICE_WEBSOCKET_DESCRIPTION,
    },
    servers: [{ url: API_BASE_PATH }],
    // A bearer token or an API key; a key carries the user's rights narrowed to its scopes, never admin rights.
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    tags,
    paths,
    components: {
      schemas: { ...converter.components, Error: converter.convert(errorBodySchema, 'output') },
      responses: Object.fromEntries(
        Object.entries(ERROR_RESPONSES).map(([status, { name }]) => [name, errorResponse(Number(status) as ErrorStatus)]),
      ),
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            "The `accessToken` from register, login or refresh (on admin operations: an admin's), or an API key (`sb_live_…`): " +
            'a `read` key may only GET, a `write` key everything the user may; a key never holds admin rights nor manages keys',
        },
        apiKeyHeader: {
          type: 'apiKey',
          in: 'header',
          name: 'X-API-Key',
          description: 'An API key (`sb_live_…`, from `POST /api-keys`), the same as sending it as `Authorization: Bearer`',
        },
        adminBasic: {
          type: 'http',
          scheme: 'basic',
          description: "The operator's `ADMIN_USER` / `ADMIN_PASSWORD` (the queue dashboard's credentials)",
        },
      },
    },
  };
}

/** The shared response of an error status: its description, the error shape, Retry-After where it applies. */
function errorResponse(status: ErrorStatus): Json {
  return {
    description: ERROR_RESPONSES[status].description,
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    ...(status === 429 || status === 503
      ? { headers: { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } } } }
      : {}),
  };
}

function operationObject(op: ApiOperation, converter: SchemaConverter): Json {
  const parameters: Json[] = [];
  for (const [name, param] of Object.entries(op.params ?? {})) {
    parameters.push({
      name,
      in: 'path',
      required: true,
      ...(param.description ? { description: param.description } : {}),
      schema: converter.convert(param.schema, 'input'),
    });
  }
  if (op.query) {
    const query = converter.convert(op.query, 'input');
    const required = new Set((query.required as string[] | undefined) ?? []);
    for (const [name, schema] of Object.entries((query.properties ?? {}) as Record<string, JsonSchema>)) {
      parameters.push({ name, in: 'query', required: required.has(name), schema });
    }
  }
  for (const [name, header] of Object.entries(op.headers ?? {})) {
    parameters.push({
      name,
      in: 'header',
      required: header.required ?? false,
      description: header.description,
      schema: header.schema ? converter.convert(header.schema, 'input') : { type: 'string' },
    });
  }

  const validates = Boolean(op.body || op.query || Object.values(op.headers ?? {}).some((h) => h.schema));
  const errors = new Set<ErrorStatus>(op.errors ?? []);
  if (validates) errors.add(400);
  if (op.auth === 'bearer') errors.add(401);
  if (op.body) errors.add(413);
  if (op.body) errors.add(415);
  // Every event stream passes the per-user stream cap and refuses while its node shuts down.
  const streams = Object.values(op.responses).some(
    (response) => typeof response === 'object' && response.contentType === 'text/event-stream',
  );
  if (streams) for (const status of Object.keys(STREAM_ERRORS)) errors.add(Number(status) as ErrorStatus);

  const responses: Json = {};
  for (const [status, response] of Object.entries(op.responses)) responses[status] = responseObject(response!, converter);
  for (const status of [...errors].sort()) {
    const note = streams ? STREAM_ERRORS[status] : undefined;
    responses[status] = note
      ? { ...errorResponse(status), description: note }
      : { $ref: `#/components/responses/${ERROR_RESPONSES[status].name}` };
  }

  return {
    operationId: op.operationId,
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    tags: op.tags,
    ...(op.auth === 'public' ? { security: (op.credentials ?? []).map((scheme) => ({ [scheme]: [] })) } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(op.body
      ? {
          requestBody: {
            required: !op.bodyOptional,
            content: {
              'application/json': {
                schema: converter.convert(op.body, 'input'),
                ...(op.bodyExample !== undefined ? { example: op.bodyExample } : {}),
              },
            },
          },
        }
      : op.files
        ? {
            requestBody: {
              required: true,
              content: {
                'multipart/form-data': {
                  schema: {
                    type: 'object',
                    properties: {
                      file: { type: 'array', items: { type: 'string', format: 'binary' }, description: op.files.description },
                    },
                    required: ['file'],
                  },
                },
              },
            },
          }
        : {}),
    responses,
  };
}

function responseObject(response: ApiResponse, converter: SchemaConverter): Json {
  if (typeof response === 'string') return { description: response };
  const headers = Object.entries(response.headers ?? {}).map(([name, description]) => [name, { description, schema: { type: 'string' } }]);
  const contentType = response.contentType ?? 'application/json';
  return {
    description: response.description,
    ...(headers.length ? { headers: Object.fromEntries(headers) } : {}),
    ...(response.schema
      ? { content: { [contentType]: { schema: converter.convert(response.schema, 'output') } } }
      : response.contentType
        ? { content: { [contentType]: { schema: { type: 'string' } } } }
        : {}),
  };
}

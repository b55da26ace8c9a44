import type { OpenApiDocument } from '../http/openapi/document';
import { camelCase, pythonName, singular, tsParamName } from './naming';
import type { JsonSchema } from './ts-types';

/**
 * The generators' view of the OpenAPI document: namespaces (one per tag) of operations whose
 * parameters are already ordered and named for both languages. Everything is sorted, so the same
 * document always gives the same bytes.
 */
export interface SdkModel {
  title: string;
  version: string;
  /** `components.schemas`, by name (sorted). */
  schemas: Array<[string, JsonSchema]>;
  namespaces: SdkNamespace[];
}

export interface SdkNamespace {
  /** camelCase (`generations`); Python spells it in snake case. */
  name: string;
  /** The tags whose operations it holds. */
  tags: string[];
  /** Method names (camelCase) in order: every operation under its operationId, then aliases. */
  methods: SdkMethod[];
}

export interface SdkMethod {
  name: string;
  operation: SdkOperation;
  /** Set on a short alias name that calls an operation also listed under its operationId. */
  aliasOf?: string;
}

/** `files`: the multipart/form-data files of an upload (a list of name, bytes and optional type). */
export type ParamLocation = 'path' | 'query' | 'header' | 'field' | 'body' | 'files';

export interface SdkParam {
  /** The name on the wire: path/query/header parameter or body property (`body`: the whole body). */
  wire: string;
  location: ParamLocation;
  required: boolean;
  schema: JsonSchema;
  description?: string;
  py: string;
  ts: string;
}

export interface SdkOperation {
  operationId: string;
  method: string;
  /** OpenAPI path relative to `/api/v1`, `{name}` placeholders. */
  path: string;
  summary: string;
  description?: string;
  public: boolean;
  /** Required parameters first (path, body fields, query, headers), then the optional ones. */
  params: SdkParam[];
  /** The operation takes a JSON body (sent as `{}` when no field is given). */
  hasBody: boolean;
  bodySchema?: JsonSchema;
  result: { kind: 'json'; schema: JsonSchema } | { kind: 'sse' } | { kind: 'none' } | { kind: 'unknown' };
  /** The answer carries `accessToken` (register, login, refresh): the client keeps it. */
  keepsTokens: boolean;
}

/**
 * Client namespaces whose tag is spelled otherwise in the document (the tags predate it):
 * the `assistant` tag holds `/chat`, the `generation` tag the canvas generations.
 */
const NAMESPACE_OF_TAG: Record<string, string> = { assistant: 'chat', generation: 'generations' };

/**
 * The short method names the generated clients offer, by route. Where an operationId differs, the name is
 * generated as an alias of it; a route not (yet) in the document gives no alias.
 */
export const SHORT_METHODS: Array<{ namespace: string; name: string; method: string; path: string }> = [
  { namespace: 'auth', name: 'login', method: 'post', path: '/auth/login' },
  { namespace: 'auth', name: 'register', method: 'post', path: '/auth/register' },
  { namespace: 'flows', name: 'list', method: 'get', path: '/flows' },
  { namespace: 'flows', name: 'create', method: 'post', path: '/flows' },
  { namespace: 'flows', name: 'get', method: 'get', path: '/flows/{}' },
  { namespace: 'flows', name: 'chat', method: 'post', path: '/flows/{}/chat' },
  { namespace: 'flows', name: 'execute', method: 'post', path: '/flows/{}/execute' },
  { namespace: 'flows', name: 'getExecution', method: 'get', path: '/flows/{}/executions/{}' },
];

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const byName =
  <T>(key: (item: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

export function buildSdkModel(document: OpenApiDocument): SdkModel {
  const namespaces = new Map<string, SdkNamespace>();
  const namespaceOf = (tag: string) => {
    const name = camelCase(NAMESPACE_OF_TAG[tag] ?? tag);
    let namespace = namespaces.get(name);
    if (!namespace) namespaces.set(name, (namespace = { name, tags: [], methods: [] }));
    if (!namespace.tags.includes(tag)) namespace.tags.push(tag);
    return namespace;
  };
  const routes = new Map<string, SdkOperation>();

  for (const path of Object.keys(document.paths).sort()) {
    const item = document.paths[path];
    for (const method of METHODS) {
      const raw = item[method] as JsonSchema | undefined;
      if (!raw) continue;
      const operation = toOperation(document, method, path, raw);
      routes.set(`${method} ${path.replace(/\{[^}]+\}/g, '{}')}`, operation);
      const tag = ((raw.tags as string[] | undefined) ?? ['default'])[0];
      namespaceOf(tag).methods.push({ name: camelCase(operation.operationId), operation });
    }
  }

  for (const spec of SHORT_METHODS) {
    const operation = routes.get(`${spec.method} ${spec.path}`);
    if (!operation) continue;
    const namespace = namespaces.get(spec.namespace) ?? namespaceOf(spec.namespace);
    const existing = namespace.methods.find((m) => m.name === spec.name);
    if (existing?.operation === operation) continue;
    if (existing)
      throw new Error(`SDK: ${spec.namespace}.${spec.name} (short name) would shadow operation ${existing.operation.operationId}`);
    namespace.methods.push({ name: spec.name, operation, aliasOf: camelCase(operation.operationId) });
  }

  for (const namespace of namespaces.values()) {
    namespace.methods.sort(byName((m) => m.name));
    namespace.tags.sort();
  }
  return {
    title: document.info.title,
    version: document.info.version,
    schemas: Object.entries(document.components.schemas).sort(byName(([name]) => name)),
    namespaces: [...namespaces.values()].sort(byName((n) => n.name)),
  };
}

/** Follows a local `$ref` (one hop is all zod writes). */
export function resolve(document: OpenApiDocument, schema: unknown): JsonSchema {
  const s = (schema ?? {}) as JsonSchema;
  if (typeof s.$ref !== 'string') return s;
  const match = /^#\/components\/schemas\/(.+)$/.exec(s.$ref);
  return (match && document.components.schemas[decodeURIComponent(match[1])]) || {};
}

function toOperation(document: OpenApiDocument, method: string, path: string, raw: JsonSchema): SdkOperation {
  const operationId = typeof raw.operationId === 'string' ? raw.operationId : camelCase(`${method} ${path}`);
  const params: SdkParam[] = [];
  const param = (wire: string, location: ParamLocation, required: boolean, schema: unknown, description?: unknown): SdkParam => ({
    wire,
    location,
    required,
    schema: (schema ?? {}) as JsonSchema,
    ...(typeof description === 'string' ? { description } : {}),
    py: pythonName(wire),
    ts: tsParamName(wire),
  });

  const declared = (raw.parameters ?? []) as Array<{
    name: string;
    in: string;
    required?: boolean;
    description?: string;
    schema?: JsonSchema;
  }>;
  const pathOrder = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
  for (const name of pathOrder) {
    const p = declared.find((d) => d.in === 'path' && d.name === name);
    const spec = param(name, 'path', true, p?.schema ?? { type: 'string' }, p?.description);
    // A bare `{id}` after a plural segment is named for it (`/flows/{id}` → flow_id / flowId), as
    // The client method is `chat(flow_id, …)`; the wire name stays `id`.
    const owner = new RegExp(`/([a-z]+s)/\\{${name}\\}`).exec(path)?.[1];
    if (name === 'id' && owner) {
      spec.py = pythonName(`${singular(owner)}_id`);
      spec.ts = tsParamName(`${singular(owner)}Id`);
    }
    params.push(spec);
  }
  const others: SdkParam[] = [];
  for (const p of declared) {
    if (p.in === 'query' || p.in === 'header') others.push(param(p.name, p.in, Boolean(p.required), p.schema, p.description));
  }

  const requestBody = raw.requestBody as JsonSchema | undefined;
  const content = requestBody?.content as Record<string, { schema?: JsonSchema }> | undefined;
  const bodySchema = content?.['application/json']?.schema;
  const bodyRequired = Boolean(requestBody?.required);
  let fields: SdkParam[] = [];
  const multipart = content?.['multipart/form-data']?.schema;
  if (multipart) {
    const file = (resolve(document, multipart).properties as Record<string, JsonSchema> | undefined)?.file;
    fields = [param('files', 'files', true, multipart, file?.description)];
  }
  if (bodySchema) {
    const target = resolve(document, bodySchema);
    const properties =
      target.type === 'object' && target.properties && !target.anyOf && !target.oneOf
        ? (target.properties as Record<string, JsonSchema>)
        : null;
    const required = new Set((target.required as string[] | undefined) ?? []);
    fields = properties
      ? Object.entries(properties).map(([name, schema]) =>
          param(name, 'field', bodyRequired && required.has(name), schema, schema.description),
        )
      : [param('body', 'body', bodyRequired, bodySchema)];
  }
  for (const p of params) {
    if (p.wire === 'id' && [...fields, ...others].some((o) => o.py === p.py || o.ts === p.ts)) {
      p.py = 'id';
      p.ts = 'id';
    }
  }
  const collides = (list: SdkParam[]) =>
    new Set(list.map((p) => p.py)).size !== list.length || new Set(list.map((p) => p.ts)).size !== list.length;
  if (fields.some((f) => f.location === 'field') && collides([...params, ...fields, ...others]))
    fields = [param('body', 'body', bodyRequired, bodySchema)];
  // A query or header parameter spelled like a path parameter or body field keeps its place under a suffixed name.
  const taken = new Set([...params, ...fields].flatMap((p) => [p.py, p.ts]));
  for (const p of others) {
    while (taken.has(p.py) || taken.has(p.ts)) {
      p.py = `${p.py}_${p.location}`;
      p.ts = `${p.ts}${p.location === 'query' ? 'Query' : 'Header'}`;
    }
    taken.add(p.py).add(p.ts);
  }

  const ordered = [...params, ...fields, ...others];
  const result = resultOf(raw);
  const answer = result.kind === 'json' ? ((resolve(document, result.schema).properties ?? {}) as Record<string, unknown>) : {};
  return {
    operationId,
    method: method.toUpperCase(),
    path,
    summary: typeof raw.summary === 'string' ? raw.summary : operationId,
    ...(typeof raw.description === 'string' ? { description: raw.description } : {}),
    public: Array.isArray(raw.security) && raw.security.length === 0,
    params: [...ordered.filter((p) => p.required), ...ordered.filter((p) => !p.required)],
    hasBody: Boolean(bodySchema),
    ...(bodySchema ? { bodySchema } : {}),
    result,
    keepsTokens: 'accessToken' in answer,
  };
}

function resultOf(raw: JsonSchema): SdkOperation['result'] {
  const responses = (raw.responses ?? {}) as Record<string, JsonSchema>;
  const success = Object.keys(responses)
    .filter((status) => /^2\d\d$/.test(status))
    .sort();
  const contents = success.map((status) => (responses[status].content ?? {}) as Record<string, { schema?: JsonSchema }>);
  if (contents.some((c) => 'text/event-stream' in c)) return { kind: 'sse' };
  const json = contents.find((c) => c['application/json']?.schema)?.['application/json']?.schema;
  if (json) return { kind: 'json', schema: json };
  if (success.length && success.every((status) => status === '204')) return { kind: 'none' };
  return { kind: 'unknown' };
}

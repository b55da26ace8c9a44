import { z } from 'zod';
import type { KnowledgeBaseRow, KnowledgeDocumentRow, KnowledgeHit } from '../../models/knowledge-repository';
import { forbidden } from '../../lib/errors';
import { uuidParam } from '../../schemas/api';
import { readMultipart } from '../multipart';
import { routesWith } from '../route';
import type { ApiContext } from '../context';

/** The knowledge routes' port: the knowledge service and the upload limits. */
export type KnowledgePorts = Pick<ApiContext, 'knowledge' | 'streams' | 'sources'> & { config: Pick<ApiContext['config'], 'knowledge'> };
const route = routesWith<KnowledgePorts>();
const tags = ['knowledge'];

const createBaseSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  description: z.string().trim().max(2_000).optional(),
});
const addUrlSchema = z.strictObject({
  url: z.string().trim().min(1).max(2_000).describe('An http(s) page or file; private addresses are refused'),
  name: z.string().trim().min(1).max(300).optional(),
});
const searchSchema = z.strictObject({
  query: z.string().trim().min(1).max(2_000),
  baseIds: z.array(z.uuid()).max(50).optional().describe('Only these bases (default: every base of the caller)'),
  documentIds: z.array(z.uuid()).max(200).optional(),
  mediaTypes: z
    .array(z.string().max(200))
    .max(10)
    .optional()
    .describe('Only documents of these types (`application/pdf`, `text/markdown`, …)'),
  metadata: z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
    .optional()
    .describe('Only documents whose metadata holds every pair'),
  limit: z.number().int().min(1).max(50).optional(),
});

const baseView = z.object({
  id: z.uuid(),
  ownerId: z.uuid(),
  name: z.string(),
  description: z.string(),
  documentCount: z.number().int(),
  access: z
    .enum(['owner', 'shared'])
    .describe("`owner`: the caller's own; `shared`: shared with a canvas the caller is a member of (read only)"),
  sessionId: z.uuid().nullable().describe('The chat session whose files the base holds (made for them), else null'),
  canvasIds: z.array(z.uuid()).describe('The canvases it is shared with (to its owner; empty for a reader)'),
  createdAt: z.string(),
});
const documentView = z.object({
  id: z.uuid(),
  baseId: z.uuid(),
  name: z.string(),
  source: z.enum(['upload', 'url']),
  url: z.string().nullable(),
  mediaType: z.string().nullable().describe('Sniffed from the bytes, not the name'),
  sizeBytes: z.number().int(),
  status: z.enum(['queued', 'parsing', 'embedding', 'ready', 'failed']),
  error: z.string().nullable().describe('Why it failed (status `failed`)'),
  revision: z.number().int().describe('Its ingestions so far; a re-ingestion adds one'),
  chunkCount: z.number().int().describe('Chunks of the searched revision'),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const chunkView = z.object({
  ordinal: z.number().int(),
  text: z.string(),
  page: z.number().int().nullable(),
  section: z.string().nullable(),
  tokens: z.number().int(),
});
const hitView = z.object({
  chunkId: z.string(),
  documentId: z.uuid(),
  documentName: z.string(),
  mediaType: z.string().nullable().describe("The document's type"),
  baseId: z.uuid(),
  ordinal: z.number().int(),
  text: z.string(),
  page: z.number().int().nullable(),
  section: z.string().nullable(),
  score: z.number().describe('Reciprocal rank fusion of the vector and full-text ranks'),
});

const toBase = (row: KnowledgeBaseRow): z.output<typeof baseView> => ({
  id: row.id,
  ownerId: row.ownerId,
  name: row.name,
  description: row.description,
  documentCount: Number(row.documentCount),
  access: row.access,
  sessionId: row.sessionId,
  canvasIds: row.canvasIds,
  createdAt: row.createdAt.toISOString(),
});
const toDocument = (row: KnowledgeDocumentRow): z.output<typeof documentView> => ({
  id: row.id,
  baseId: row.baseId,
  name: row.name,
  source: row.source,
  url: row.url,
  mediaType: row.mediaType,
  sizeBytes: row.sizeBytes,
  status: row.status,
  error: row.error,
  revision: row.revision,
  chunkCount: row.chunkCount,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});
const toHit = (hit: KnowledgeHit): z.output<typeof hitView> => ({ ...hit, page: hit.page === null ? null : Number(hit.page) });

const baseParam = { id: { schema: uuidParam, resource: 'Knowledge base' } };
const shareParams = { ...baseParam, canvasId: { schema: uuidParam, resource: 'Canvas' } };
const documentParam = { id: { schema: uuidParam, resource: 'Document' } };

/**
 * `/knowledge`: the caller's knowledge bases and those shared with their canvases, their documents
 * (uploads and URLs), chunks and hybrid search. A base the caller may not read is 404; a shared
 * one is read only (403 to every change).
 */
export const knowledgeRoutes = [
  route({
    method: 'post',
    path: '/knowledge/bases',
    operationId: 'createKnowledgeBase',
    tags,
    auth: 'bearer',
    summary: 'Create a knowledge base (its owner alone writes it; members of the canvases it is shared with read it)',
    description: "Past the plan's `maxKnowledgeBases` (a chat session's own base is not counted): 403 `tier_limit`, nothing written.",
    body: createBaseSchema,
    responses: { 201: { description: 'The base', schema: z.object({ base: baseView }) } },
    errors: [400, 403],
    handler: async ({ user, body }, ctx) => ({ base: toBase(await ctx.knowledge.createBase(user.id, body)) }),
  }),

  route({
    method: 'get',
    path: '/knowledge/bases',
    operationId: 'listKnowledgeBases',
    tags,
    auth: 'bearer',
    summary: "The knowledge bases the caller reads, newest first: their own (chat sessions' included) and those shared with their canvases",
    responses: { 200: { description: 'The bases', schema: z.object({ bases: z.array(baseView) }) } },
    handler: async ({ user }, ctx) => ({ bases: (await ctx.knowledge.listBases(user.id)).map(toBase) }),
  }),

  route({
    method: 'get',
    path: '/knowledge/bases/:id',
    operationId: 'getKnowledgeBase',
    tags,
    auth: 'bearer',
    summary: 'One knowledge base the caller reads, with its documents and their ingestion status',
    params: baseParam,
    responses: {
      200: { description: 'The base and its documents', schema: z.object({ base: baseView, documents: z.array(documentView) }) },
    },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const { base, documents } = await ctx.knowledge.base(user.id, params.id);
      return { base: toBase(base), documents: documents.map(toDocument) };
    },
  }),

  route({
    method: 'delete',
    path: '/knowledge/bases/:id',
    operationId: 'deleteKnowledgeBase',
    tags,
    auth: 'bearer',
    summary: 'Delete a knowledge base with its documents and chunks (its owner)',
    params: baseParam,
    responses: { 204: 'Deleted' },
    errors: [403, 404],
    handler: async ({ user, params }, ctx) => {
      await ctx.knowledge.deleteBase(user.id, params.id);
    },
  }),

  route({
    method: 'put',
    path: '/knowledge/bases/:id/canvases/:canvasId',
    operationId: 'shareKnowledgeBase',
    tags,
    auth: 'bearer',
    summary: "Share the caller's base with a canvas they own or edit: its members read and search it",
    description:
      "The canvas's members (any role) list, read and search the base for as long as they are members and its owner may still " +
      'edit the canvas; only its owner changes it. A canvas the caller is not a member of is 404, a viewer 403; a chat ' +
      "session's own base is 409 `session_base`. Sharing again changes nothing.",
    params: shareParams,
    responses: { 200: { description: 'The base, with the canvases it is shared with', schema: z.object({ base: baseView }) } },
    errors: [403, 404, 409],
    handler: async ({ user, params }, ctx) => ({ base: toBase(await ctx.knowledge.share(user.id, params.id, params.canvasId)) }),
  }),

  route({
    method: 'delete',
    path: '/knowledge/bases/:id/canvases/:canvasId',
    operationId: 'unshareKnowledgeBase',
    tags,
    auth: 'bearer',
    summary: "Stop sharing the caller's base with a canvas; its members read nothing of it from then on",
    params: shareParams,
    responses: { 204: 'No longer shared' },
    errors: [403, 404],
    handler: async ({ user, params }, ctx) => {
      await ctx.knowledge.unshare(user.id, params.id, params.canvasId);
    },
  }),

  route({
    method: 'post',
    path: '/knowledge/bases/:id/documents',
    operationId: 'uploadKnowledgeDocuments',
    tags,
    auth: 'bearer',
    summary: 'Upload files (multipart/form-data, any field name): PDF, DOCX, HTML, Markdown, CSV or text',
    description:
      "A file over the plan's size cap (`maxKnowledgeFileBytes`, at most `KNOWLEDGE_MAX_FILE_BYTES`) is 413 `file_too_large` " +
      'naming it, and nothing of the request is stored; more than `KNOWLEDGE_MAX_FILES` files is 413 `too_many_files`; a base ' +
      "past the plan's documents (`maxKnowledgeDocuments`, at most `KNOWLEDGE_MAX_DOCUMENTS`) is 409 `knowledge_base_full`, " +
      'nothing stored. Otherwise each file becomes a document. Its type is sniffed from its bytes, not its name: a supported ' +
      'file is `queued` and ingested on the `knowledge` queue; an empty or unsupported file is `failed` at once with the ' +
      "reason, and nothing of it is stored. Only the base's owner uploads (403 to a canvas member it is shared with).",
    params: baseParam,
    files: { description: 'The files, one part each (the field name is free; its filename names the document)' },
    responses: { 201: { description: 'The new documents', schema: z.object({ documents: z.array(documentView) }) } },
    errors: [400, 403, 404, 409, 413],
    handler: async ({ user, params, req }, ctx) => {
      const { base } = await ctx.knowledge.base(user.id, params.id);
      if (base.access !== 'owner') throw forbidden('Only the owner of a shared knowledge base changes it');
      const { maxFileBytes, maxFiles } = ctx.config.knowledge;
      const { files } = await readMultipart(req, { maxBodyBytes: maxFiles * (maxFileBytes + 64 * 1024) + 1024 * 1024, maxFileBytes });
      const uploaded = files.map((file) => ({
        name: file.name,
        declaredType: file.contentType,
        bytes: file.bytes,
        size: file.size,
        overCap: file.overCap,
      }));
      return { documents: (await ctx.knowledge.upload(user.id, params.id, uploaded)).map(toDocument) };
    },
  }),

  route({
    method: 'post',
    path: '/knowledge/bases/:id/urls',
    operationId: 'addKnowledgeUrl',
    tags,
    auth: 'bearer',
    summary: 'Add a web page or a file on the web; fetched by a worker under the SSRF rules',
    description:
      'A URL to a loopback, private or link-local address (as written, or as its name resolves when fetched) fails the ' +
      'document with the reason, unless its origin is in `KNOWLEDGE_PRIVATE_ORIGINS`.',
    params: baseParam,
    body: addUrlSchema,
    responses: { 201: { description: 'The new document', schema: z.object({ document: documentView }) } },
    errors: [400, 403, 404, 409],
    // The body is checked first: a malformed one says nothing about whether the base exists.
    handler: async ({ user, params, body }, ctx) => ({
      document: toDocument(await ctx.knowledge.addUrl(user.id, params.id, body.url, body.name)),
    }),
  }),

  route({
    method: 'get',
    path: '/knowledge/documents/:id',
    operationId: 'getKnowledgeDocument',
    tags,
    auth: 'bearer',
    summary: 'One document the caller reads: its ingestion status, the reason when it failed, its chunk count',
    params: documentParam,
    responses: { 200: { description: 'The document', schema: z.object({ document: documentView }) } },
    errors: [404],
    handler: async ({ user, params }, ctx) => ({ document: toDocument(await ctx.knowledge.document(user.id, params.id)) }),
  }),

  route({
    method: 'get',
    path: '/knowledge/documents/:id/chunks',
    operationId: 'listKnowledgeChunks',
    tags,
    auth: 'bearer',
    summary: "A document's searched chunks, in order (a preview of what retrieval sees)",
    params: documentParam,
    responses: { 200: { description: 'The chunks', schema: z.object({ chunks: z.array(chunkView) }) } },
    errors: [404],
    handler: async ({ user, params }, ctx) => ({
      chunks: (await ctx.knowledge.chunks(user.id, params.id)).map(({ ordinal, text, page, section, tokens }) => ({
        ordinal: Number(ordinal),
        text,
        page: page === null ? null : Number(page),
        section,
        tokens: Number(tokens),
      })),
    }),
  }),

  route({
    method: 'get',
    path: '/knowledge/documents/:id/events',
    operationId: 'streamKnowledgeDocument',
    tags,
    auth: 'bearer',
    summary: "A document's ingestion progress, live, to ready or failed",
    params: documentParam,
    responses: {
      200: {
        description:
          'SSE `progress` events `{documentId, revision, status, chunksStored?, chunksTotal?, error?}`: first where the document stands, then each step of its ingestion (`parsing`, `embedding` after each stored round of chunks) until `ready` or `failed`, which ends the stream',
        contentType: 'text/event-stream',
      },
    },
    errors: [404],
    handler: async ({ req, res, user, params }, ctx) => {
      const document = await ctx.knowledge.document(user.id, params.id, 'owned');
      await ctx.streams.serve(req, res, {
        userId: user.id,
        context: { documentId: document.id },
        prepare: async () => ctx.sources.knowledgeProgress(document),
      });
    },
  }),

  route({
    method: 'post',
    path: '/knowledge/documents/:id/reingest',
    operationId: 'reingestKnowledgeDocument',
    tags,
    auth: 'bearer',
    summary: 'Ingest a ready or failed document again; its chunks are replaced in one step when the new ones are ready',
    params: documentParam,
    responses: { 202: { description: 'Queued again', schema: z.object({ document: documentView }) } },
    errors: [403, 404, 409],
    handler: async ({ user, params }, ctx) => ({ document: toDocument(await ctx.knowledge.reingest(user.id, params.id)) }),
  }),

  route({
    method: 'delete',
    path: '/knowledge/documents/:id',
    operationId: 'deleteKnowledgeDocument',
    tags,
    auth: 'bearer',
    summary: 'Delete a document with its chunks; an ingestion still running stores nothing more',
    params: documentParam,
    responses: { 204: 'Deleted' },
    errors: [403, 404],
    handler: async ({ user, params }, ctx) => {
      await ctx.knowledge.deleteDocument(user.id, params.id);
    },
  }),

  route({
    method: 'post',
    path: '/knowledge/search',
    operationId: 'searchKnowledge',
    tags,
    auth: 'bearer',
    summary:
      'Hybrid search of the ready chunks the caller reads (their bases and those shared with their canvases): vectors and full text fused by reciprocal rank, with filters',
    body: searchSchema,
    responses: { 200: { description: 'The best chunks, best first', schema: z.object({ hits: z.array(hitView) }) } },
    errors: [400, 503],
    handler: async ({ user, body }, ctx) => ({ hits: (await ctx.knowledge.search(user.id, body)).map(toHit) }),
  }),
];

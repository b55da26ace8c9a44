import { buildOpenApiDocument } from '../openapi/document';
import { precompressed } from '../openapi/compressed';
import { routesWith, type AnyRoute } from '../route';
import { accountRoutes } from './account-routes';
import { adminAuditRoutes } from './admin-audit-routes';
import { adminUserRoutes } from './admin-users-routes';
import { agentRoutes } from './agent-routes';
import { apiKeyRoutes } from './api-keys-routes';
import { authRoutes } from './auth-routes';
import { blockRoutes } from './block-routes';
import { canvasFeedRoutes } from './canvas-feed-routes';
import { canvasRoutes } from './canvas-routes';
import { chatRoutes } from './chat-routes';
import { threadRoutes } from './thread-routes';
import { codingRoutes } from './coding-routes';
import { deviceRoutes } from './device-routes';
import { embedPublicRoutes } from './embed-public-routes';
import { flowChatRoutes } from './flow-chat-routes';
import { flowRoutes } from './flow-routes';
import { flowReplayRoutes } from './flow-replay-routes';
import { evaluationRoutes } from './evaluation-routes';
import { flowTriggerRoutes, hookRoutes } from './flow-trigger-routes';
import { httpCredentialRoutes } from './http-credential-routes';
import { generationRoutes } from './generation-routes';
import { historyRoutes } from './history-routes';
import { hitlRoutes } from './hitl-routes';
import { inputRoutes } from './input-routes';
import { journeyRoutes } from './journey-routes';
import { knowledgeRoutes } from './knowledge-routes';
import { mcpClientGrantRoutes } from './mcp-client-grants-routes';
import { mcpServerRoutes } from './mcp-server-routes';
import { oauthRoutes } from './oauth-routes';
import { platformRoutes } from './platform-routes';
import { psaRoutes } from './psa-routes';
import { sessionNotesRoutes } from './session-notes-routes';
import { sessionSearchRoutes } from './session-search-routes';
import { usageRoutes } from './usage-routes';
import { webhookRoutes } from './webhook-routes';

let documentJson: string | undefined;

/**
 * The OpenAPI document of `apiRoutes`, built once, on its first request: building it costs about a
 * tenth of a second of every start otherwise. A registration error (a duplicate operationId, an
 * undeclared path parameter, a schema JSON Schema cannot express) depends on the code alone, so the
 * test suite's build of this document catches it before a release.
 */
export const openApiJson = (): string => (documentJson ??= JSON.stringify(buildOpenApiDocument(apiRoutes)));

const openApiBody = precompressed(() => openApiJson());

/** Reaches no service: its port is empty. */
const openApiDocumentRoute = routesWith<object>()({
  method: 'get',
  path: '/openapi.json',
  operationId: 'getOpenApiDocument',
  tags: ['operations'],
  auth: 'public',
  summary: 'This document (OpenAPI 3.1); an interactive reference is served at `/docs`',
  responses: { 200: 'The OpenAPI document' },
  // Built once, compressed once (a 200 KB document is ~25 KB with brotli), revalidated by ETag.
  handler: async ({ req, res }) => void (await openApiBody(req, res, 'application/json; charset=utf-8', 'no-cache')),
});

/**
 * Every `/api/v1` route, declared once: `createHttpApp` mounts exactly this list and the OpenAPI
 * document describes exactly this list. Order matters where paths overlap: the journey's
 * `/agents/journey/*` comes before `/agents/:id/...`.
 */
export const apiRoutes = [
  ...authRoutes,
  ...accountRoutes,
  ...historyRoutes,
  ...apiKeyRoutes,
  ...journeyRoutes,
  ...canvasRoutes,
  ...canvasFeedRoutes,
  ...blockRoutes,
  ...generationRoutes,
  // Before chatRoutes: `/chat/sessions/similar` is not a session id.
  ...sessionSearchRoutes,
  ...chatRoutes,
  ...threadRoutes,
  ...sessionNotesRoutes,
  ...psaRoutes,
  ...hitlRoutes,
  ...inputRoutes,
  ...flowRoutes,
  ...flowReplayRoutes,
  ...flowChatRoutes,
  ...evaluationRoutes,
  ...flowTriggerRoutes,
  // Mounted by their own router before the API's (the raw body is verified before it is parsed): see `apiRoutesOnApi`.
  ...hookRoutes,
  ...webhookRoutes,
  ...knowledgeRoutes,
  ...mcpServerRoutes,
  ...mcpClientGrantRoutes,
  ...httpCredentialRoutes,
  // Mounted by their own router before the API's (origin check and CORS first): see `apiRoutesOnApi`.
  ...embedPublicRoutes,
  ...platformRoutes,
  ...usageRoutes,
  ...adminUserRoutes,
  ...adminAuditRoutes,
  ...agentRoutes,
  ...deviceRoutes,
  ...codingRoutes,
  ...oauthRoutes,
  openApiDocumentRoute,
] satisfies AnyRoute[];

/**
 * The routes `createHttpApp` mounts on the API router: all but the public embed chat, which
 * `embedPublicRouter` serves, and the inbound flow webhooks, which `hookRouter` serves.
 */
export const apiRoutesOnApi = apiRoutes.filter(
  (route) => !(embedPublicRoutes as readonly AnyRoute[]).includes(route) && !(hookRoutes as readonly AnyRoute[]).includes(route),
);

import { chatBodySchema } from '../../../assistant/chat-service';
import { hitlListQuerySchema } from '../../routes/hitl-routes';
import { chatSessionsQuerySchema, historyPageQuerySchema } from '../../routes/chat-routes';
import { emptyBodySchema, escalateBodySchema, resolveBodySchema } from '../../routes/session-notes-routes';
import type { ApiOperation } from '../registry';
import { chatCancelResponse, sessionStatusResponse } from '../response-schemas';
import { approvalIdParam, sessionIdParam } from './params';

const hitlView = '`{id, sessionId, toolName, parameters, reason, status (pending|approved|rejected|timeout), expiresAt, decidedAt, decidedBy, decisionReason (user|timeout|cancelled; null while pending), createdAt}`';

/** `chat-routes.ts`, `session-notes-routes.ts`, `hitl-routes.ts`. */
export const assistantOperations: ApiOperation[] = [
  {
    method: 'post', path: '/chat', operationId: 'chat', tags: ['assistant'], auth: 'bearer',
    summary: 'One assistant turn, answered as JSON when it ends',
    description:
      'Tools run on the device (`deviceId`, else the caller\'s online device); dangerous ones wait for an approval. ' +
      '`tools: "none"` (the default when no device is online) answers as a plain assistant without device tools; ' +
      '`tools: "device"` with no device online is 409 `device_offline`. `config: {provider, model}` picks a configured model (else 400 `unknown_model`).',
    body: chatBodySchema,
    responses: { 200: '`{sessionId, response, usage}`; a turn stopped by a cancel answers `{sessionId, response: <partial>, cancelled: true, usage}`' },
    errors: [404, 409, 429, 503],
  },
  {
    method: 'post', path: '/chat/stream', operationId: 'chatStream', tags: ['assistant'], auth: 'bearer',
    summary: 'One assistant turn, streamed as server-sent events',
    body: chatBodySchema,
    responses: {
      200: { description: 'SSE: `text_chunk {sessionId, text}` events, then `final {sessionId, response, usage}`, `error {sessionId, code, message}` or `cancelled {sessionId, response, usage}` (stopped by a cancel)', contentType: 'text/event-stream', headers: { 'X-Chat-Session-Id': 'The session id' } },
    },
    errors: [404, 409, 429, 503],
  },
  {
    method: 'get', path: '/chat/sessions', operationId: 'listChatSessions', tags: ['assistant'], auth: 'bearer',
    summary: "The caller's chat sessions, most recently active first",
    query: chatSessionsQuerySchema,
    responses: { 200: '`{sessions: [{id, deviceId, status, mode (device|none|flow), flowId, escalationReason, title, createdAt, updatedAt}], nextCursor}`' },
    errors: [400],
  },
  {
    method: 'get', path: '/chat/sessions/:id', operationId: 'getChatSession', tags: ['assistant'], auth: 'bearer',
    summary: 'One session (its owner only)',
    params: sessionIdParam,
    responses: { 200: '`{session: {id, deviceId, status, mode, flowId, escalationReason, title, createdAt, updatedAt}}`' },
    errors: [404],
  },
  {
    method: 'get', path: '/chat/sessions/:id/history', operationId: 'getChatHistory', tags: ['assistant'], auth: 'bearer',
    summary: "A session's messages (its owner only), in pages from the newest back",
    description:
      '`?limit` 1–200 (default 200). The first page holds the latest messages; each page reads oldest → newest. `nextCursor` (null when the page ' +
      'reaches the first message) goes back as `?cursor` for the messages before the page. A foreign cursor is 400 `invalid_cursor`.',
    params: sessionIdParam,
    query: historyPageQuerySchema,
    responses: { 200: '`{session, messages, nextCursor}`: `messages` oldest → newest within the page' },
    errors: [400, 404],
  },
  {
    method: 'post', path: '/chat/sessions/:id/cancel', operationId: 'cancelChatTurn', tags: ['assistant'], auth: 'bearer',
    summary: "Stop the session's running turn (its owner only), from any API node",
    description:
      'The model request is aborted, device tool calls in flight are abandoned, pending approvals of the turn become `rejected` with ' +
      '`decisionReason: "cancelled"`, and the turn ends with `cancelled {sessionId}` on its stream and the device; the partial answer is kept in the ' +
      'history with `status: "cancelled"`. A turn still queued never starts. 409 `not_running` when no turn runs.',
    params: sessionIdParam,
    responses: { 202: { description: 'The stop is under way', schema: chatCancelResponse } },
    errors: [404, 409],
  },
  {
    method: 'delete', path: '/chat/sessions/:id', operationId: 'deleteChatSession', tags: ['assistant'], auth: 'bearer',
    summary: 'Delete a session and its history',
    params: sessionIdParam,
    responses: { 204: 'Deleted' },
    errors: [404],
  },
  {
    method: 'post', path: '/chat/sessions/:id/resolve', operationId: 'resolveChatSession', tags: ['sessions'], auth: 'bearer',
    summary: 'Resolve a session; its ticket notes are written in the background',
    body: resolveBodySchema,
    bodyOptional: true,
    params: sessionIdParam,
    responses: { 200: { description: 'Answers at once, `documentation: null`', schema: sessionStatusResponse } },
    errors: [404, 429],
  },
  {
    method: 'post', path: '/chat/sessions/:id/escalate', operationId: 'escalateChatSession', tags: ['sessions'], auth: 'bearer',
    summary: 'Mark a session escalated, keeping the reason (≤ 2,000 characters) as `escalationReason`',
    body: escalateBodySchema,
    bodyOptional: true,
    params: sessionIdParam,
    responses: { 200: { description: 'The new status', schema: sessionStatusResponse } },
    errors: [404],
  },
  {
    method: 'post', path: '/chat/sessions/:id/pause', operationId: 'pauseChatSession', tags: ['sessions'], auth: 'bearer',
    summary: 'Mark a session paused',
    body: emptyBodySchema,
    bodyOptional: true,
    params: sessionIdParam,
    responses: { 200: { description: 'The new status', schema: sessionStatusResponse } },
    errors: [404],
  },
  {
    method: 'get', path: '/chat/sessions/:id/documentation', operationId: 'getSessionDocumentation', tags: ['sessions'], auth: 'bearer',
    summary: "A resolved session's ticket notes",
    params: sessionIdParam,
    responses: { 200: '`{sessionId, status, documentationStatus (pending|ready|failed), documentation}`' },
    errors: [404],
  },
  {
    method: 'get', path: '/chat/sessions/:id/documentation/stream', operationId: 'streamSessionDocumentation', tags: ['sessions'], auth: 'bearer',
    summary: "Stream a session's ticket notes",
    params: sessionIdParam,
    responses: {
      200: { description: 'SSE `data: <chunk>` lines of markdown (## Problem Summary, ## Steps Taken, ## Resolution, ## Next Steps), ending `data: [DONE]` or `data: [ERROR] <message>`', contentType: 'text/event-stream' },
    },
    errors: [404, 429],
  },
  {
    method: 'get', path: '/hitl/requests', operationId: 'listApprovalRequests', tags: ['approvals'], auth: 'bearer',
    summary: "The caller's own approval requests, newest first (e.g. `?status=pending`)",
    query: hitlListQuerySchema,
    responses: { 200: `\`{requests: [${hitlView.slice(1, -1)}], nextCursor?}\`, newest first; \`nextCursor\` (present when older requests follow) goes back as \`?cursor\`` },
  },
  {
    method: 'get', path: '/hitl/requests/:id', operationId: 'getApprovalRequest', tags: ['approvals'], auth: 'bearer',
    summary: 'An approval request (its requester only)',
    params: approvalIdParam,
    responses: { 200: hitlView },
    errors: [404],
  },
  {
    method: 'put', path: '/hitl/requests/:id/approve', operationId: 'approveRequest', tags: ['approvals'], auth: 'bearer',
    summary: 'Approve a pending tool call',
    params: approvalIdParam,
    responses: { 200: hitlView },
    errors: [404, 409],
  },
  {
    method: 'put', path: '/hitl/requests/:id/reject', operationId: 'rejectRequest', tags: ['approvals'], auth: 'bearer',
    summary: 'Reject a pending tool call',
    params: approvalIdParam,
    responses: { 200: hitlView },
    errors: [404, 409],
  },
];

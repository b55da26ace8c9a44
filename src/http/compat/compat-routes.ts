import type { Request } from 'express';
import { z } from 'zod';
import { defineRoute, type AnyRoute } from '../route';
import type { SseMessage } from '../sse';
import { toChatSessionView } from '../../models/chat-views';
import { toSnakeKeys } from './key-case';
import { notesDialect } from './notes-dialect';

/**
 * Where a compatible route's answer goes: `snake` answers in snake_case (the clients of these
 * paths read `session_id`, `problem_summary`); `request` answers in the case the request used.
 */
export type ReplyCase = 'snake' | 'request';

/**
 * One path a client written for another API calls, and the Switchboard route that serves it. The
 * request is rewritten (path, key case, renamed fields) and run by that route's own handler, so its
 * checks, limits and errors are the route's; only the answer's shape is mapped back.
 */
export interface CompatRoute {
  method: 'get' | 'post' | 'put' | 'delete';
  /** The client's path, express-style; its parameters carry the names of the native route's. */
  path: string;
  /** The `operationId` of the Switchboard route that serves it, or (`own`) a route declared here when none does. */
  native?: string;
  own?: AnyRoute;
  /** Who the client was written for (the mapping table in docs/compatibility.md). */
  client: 'Adiuva' | 'FlowPilot' | 'agent-builder' | 'CodeLab' | 'canvas';
  reply: ReplyCase;
  /** Authenticates with the caller's role on the canvas of `:id` read in the same check (canvas routes). */
  onCanvas?: boolean;
  /** No JWT: the embed token of `:embedToken` opens it, with the embed's own origin check, CORS and body parsing. */
  embed?: boolean;
  /** Body fields (camelCase, after the key case) renamed to the native route's names. */
  renames?: Record<string, string>;
  /** Fields set on the body when the client did not send them. */
  defaults?: Record<string, unknown>;
  /** Each stream message in the client's dialect. */
  stream?: (req: Request) => (message: SseMessage) => SseMessage;
}

/** A JSON stream message with its keys in snake_case (`session_id`); other messages as they are. */
const snakeStream =
  () =>
  (message: SseMessage): SseMessage => {
    if (!message.data.startsWith('{')) return message;
    return { ...message, data: JSON.stringify(toSnakeKeys(JSON.parse(message.data))) };
  };

/**
 * A generation's stream as the canvas client reads it: `complete` also carries the blocks as
 * `data` (each with `generation_session_id`) and `generation_session_id` (the generation's id).
 */
const canvasStream =
  () =>
  (message: SseMessage): SseMessage => {
    if (message.event !== 'complete') return message;
    const event = JSON.parse(message.data) as { generationId: string; blocks: Array<Record<string, unknown>> };
    const data = event.blocks.map((block) => ({ ...block, generation_session_id: event.generationId }));
    return { ...message, data: JSON.stringify({ ...event, data, generation_session_id: event.generationId }) };
  };

/**
 * An empty assistant session the next turns go into (`{title?}`), for clients that create one
 * before their first message. It counts as one request of the chat limit, like a turn.
 */
const createSession = defineRoute({
  method: 'post',
  path: '/sessions',
  operationId: 'compatCreateSession',
  tags: ['assistant'],
  auth: 'bearer',
  summary: 'An empty assistant session',
  body: z.strictObject({ title: z.string().trim().min(1).max(200).optional() }),
  bodyOptional: true,
  responses: { 201: 'The session' },
  handler: async ({ user, body }, ctx) => {
    await ctx.usage.take('chatPerMinute', user);
    const row = await ctx.repos.chat.createSession({ userId: user.id, deviceId: null, mode: 'none', title: body.title ?? 'New session' });
    return { session: toChatSessionView(row) };
  },
});

/** Chats of the agent-builder client are plain model conversations: no device tools unless asked. */
const plainChat = { tools: 'none' };

const sessionsPrefix = '/api/ai-sessions';
const builder = '/api/agent-builder';

/** Every compatible path, in mount order. */
export const compatRoutes: CompatRoute[] = [
  // A canvas client's generation.
  {
    method: 'post',
    path: '/api/v1/canvas/:id/ai/generate-stream',
    native: 'generateStream',
    client: 'canvas',
    reply: 'request',
    onCanvas: true,
    stream: canvasStream,
  },

  // FlowPilot: a session's lifecycle and its ticket notes.
  { method: 'post', path: `${sessionsPrefix}/:id/resolve`, native: 'resolveChatSession', client: 'FlowPilot', reply: 'snake' },
  {
    method: 'post',
    path: `${sessionsPrefix}/:id/escalate`,
    native: 'escalateChatSession',
    client: 'FlowPilot',
    reply: 'snake',
    renames: { escalationReason: 'reason' },
  },
  { method: 'post', path: `${sessionsPrefix}/:id/pause`, native: 'pauseChatSession', client: 'FlowPilot', reply: 'snake' },
  { method: 'get', path: `${sessionsPrefix}/:id/documentation`, native: 'getSessionDocumentation', client: 'FlowPilot', reply: 'snake' },
  {
    method: 'get',
    path: `${sessionsPrefix}/:id/documentation/stream`,
    native: 'streamSessionDocumentation',
    client: 'FlowPilot',
    reply: 'snake',
    stream: () => notesDialect,
  },

  // agent-builder: chat, chatflows, agentflows (workflows), metrics.
  { method: 'post', path: `${builder}/chatflow/chat`, native: 'chat', client: 'agent-builder', reply: 'snake', defaults: plainChat },
  {
    method: 'post',
    path: `${builder}/chatflow/chat/stream`,
    native: 'chatStream',
    client: 'agent-builder',
    reply: 'snake',
    defaults: plainChat,
    stream: snakeStream,
  },
  { method: 'get', path: `${builder}/chatflow/sessions/:id/history`, native: 'getChatHistory', client: 'agent-builder', reply: 'snake' },
  { method: 'delete', path: `${builder}/chatflow/sessions/:id`, native: 'deleteChatSession', client: 'agent-builder', reply: 'snake' },
  { method: 'post', path: `${builder}/chatflow/workflows/:id/chat`, native: 'chatWithFlow', client: 'agent-builder', reply: 'snake' },
  {
    method: 'post',
    path: `${builder}/chatflow/workflows/:id/chat/stream`,
    native: 'chatWithFlowStream',
    client: 'agent-builder',
    reply: 'snake',
    stream: snakeStream,
  },
  // The same, under the agent-builder's older flow paths.
  { method: 'post', path: `${builder}/flows/chatflows/:id/chat`, native: 'chatWithFlow', client: 'agent-builder', reply: 'snake' },
  { method: 'post', path: `${builder}/flows/agentflows/:id/execute`, native: 'executeFlow', client: 'agent-builder', reply: 'snake' },
  {
    method: 'get',
    path: `${builder}/ai-agent-chat/sessions/:id/history`,
    native: 'getChatHistory',
    client: 'agent-builder',
    reply: 'snake',
  },
  { method: 'get', path: `${builder}/workflows`, native: 'listFlows', client: 'agent-builder', reply: 'snake' },
  { method: 'post', path: `${builder}/workflows/:id/execute`, native: 'executeFlow', client: 'agent-builder', reply: 'snake' },
  { method: 'post', path: `${builder}/agentflows/:id/execute`, native: 'executeFlow', client: 'agent-builder', reply: 'snake' },
  {
    method: 'post',
    path: `${builder}/agentflows/:id/execute/stream`,
    native: 'executeFlowStream',
    client: 'agent-builder',
    reply: 'snake',
    stream: snakeStream,
  },
  { method: 'get', path: `${builder}/agentflows/:id/executions`, native: 'listFlowExecutions', client: 'agent-builder', reply: 'snake' },
  {
    method: 'get',
    path: `${builder}/agentflows/:id/executions/:executionId`,
    native: 'getFlowExecution',
    client: 'agent-builder',
    reply: 'snake',
  },
  { method: 'get', path: `${builder}/chat/:id/history`, native: 'getFlowChatHistory', client: 'agent-builder', reply: 'snake' },
  // The public chat widget of a chatflow: its embed token is the credential.
  {
    method: 'post',
    path: `${builder}/embed/public/:embedToken/chat`,
    native: 'embedChat',
    client: 'agent-builder',
    reply: 'snake',
    embed: true,
  },
  { method: 'get', path: `${builder}/metrics/json`, native: 'getMetricsJson', client: 'agent-builder', reply: 'request' },
  { method: 'get', path: `${builder}/metrics/summary`, native: 'getMetricsSummary', client: 'agent-builder', reply: 'snake' },

  // CodeLab: sessions and one agent turn.
  { method: 'post', path: '/api/v1/sessions', own: createSession, client: 'CodeLab', reply: 'snake' },
  { method: 'get', path: '/api/v1/sessions/:id', native: 'getChatSession', client: 'CodeLab', reply: 'snake' },
  { method: 'delete', path: '/api/v1/sessions/:id', native: 'deleteChatSession', client: 'CodeLab', reply: 'snake' },
  { method: 'get', path: '/api/v1/sessions/:id/history', native: 'getChatHistory', client: 'CodeLab', reply: 'snake' },
  { method: 'post', path: '/api/v1/agent/chat', native: 'chat', client: 'CodeLab', reply: 'snake' },
];

/** The path prefixes the compatible routes live under (their CORS, body parsing and NUL check are the API's). */
export const COMPAT_PREFIXES = ['/api/ai-sessions', '/api/agent-builder', '/api/v1/canvas', '/api/v1/sessions', '/api/v1/agent'];

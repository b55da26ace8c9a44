import { Router, type Request, type RequestHandler, type Response } from 'express';
import { isChatTerminal, type ChatEvent } from '../../turns/turn-events';
import { chatErrorStatus } from '../../flows/flow-chat';
import { AppError, badRequest, notFound, parseOr400 } from '../../lib/errors';
import type { ApiContext } from '../context';
import { authenticate, currentUser, type AuthUser } from '../middleware/authenticate';
import { apiCors } from '../middleware/cors';
import { jsonBody } from '../middleware/json-body';
import { rejectNulCharacters } from '../middleware/reject-nul';
import { recordRequestOrigin } from '../middleware/request-origin';
import type { SseMessage } from '../sse';
import { chatCompletionBodySchema, CompletionMapper, completionObject, readMessages } from './chat-completions';
import { listModels, modelObject, resolveModel, type OpenAiModel } from './models';
import { readInput, ResponseMapper, responseId, responsesBodySchema, sessionOfResponseId } from './responses';
import { prepareTurn, rememberConversation, sessionFor, type PreparedTurn, type Said, type Turn } from './turns';

/** OpenAI's error `type` for a status. */
function errorType(status: number, code: string): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return code === 'budget_exceeded' ? 'insufficient_quota' : 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/**
 * Every error answer of the request in OpenAI's error object: `{error: {message, type, param,
 * code}}`, `param` the first field a validation error names. The errors themselves are the native
 * ones (the app's error handler renders them), only their shape changes.
 */
const openAiErrors: RequestHandler = (_req, res, next) => {
  const json = res.json.bind(res);
  res.json = (body: unknown) => {
    const error = res.statusCode >= 400 && body && typeof body === 'object' ? (body as { error?: unknown }).error : undefined;
    if (!error || typeof error !== 'object' || typeof (error as { code?: unknown }).code !== 'string') return json(body);
    const { code, message, details } = error as { code: string; message: string; details?: unknown };
    const first = Array.isArray(details) ? (details[0] as { path?: unknown } | undefined) : undefined;
    const param = typeof first?.path === 'string' && first.path ? first.path : null;
    return json({ error: { message, type: errorType(res.statusCode, code), param, code } });
  };
  next();
};

/** Keeps the matched path as the request's route label (HTTP metrics, traces). */
const recordRoute: RequestHandler = (req, res, next) => {
  res.locals.routeTemplate = `${req.baseUrl}${(req.route as { path: string }).path}`;
  next();
};

/** The status of a turn that ended in `error`, as the native chat routes answer it. */
const turnErrorStatus = (code: string) => (code === 'rate_limited' ? 429 : chatErrorStatus(code));

const data = (value: unknown): SseMessage => ({ data: JSON.stringify(value) });
const DONE: SseMessage = { data: '[DONE]' };

/**
 * OpenAI's API for chat clients (Open WebUI, LibreChat, IDE plugins, the `openai` package), mounted
 * at `/v1`: `GET /models` lists the assistant and the caller's chatflows, `POST /chat/completions`
 * and `POST /responses` run a turn of one. A turn is the native one (`POST /chat`,
 * `POST /flows/:id/chat`): the same checks, per-minute limit, budget, queue, worker, stream cap and
 * event log; only the request and the answer's shape differ. Authenticated like the API (an API key
 * as the bearer, or a signed-in user's access token); the API's CORS, body limit and NUL check.
 */
export function openAiRouter(ctx: ApiContext): Router {
  const router = Router();
  router.use(openAiErrors);
  router.use(apiCors(ctx.config.cors.origins));
  router.use(jsonBody(ctx.config.http.bodyLimit));
  router.use(rejectNulCharacters, recordRequestOrigin);
  const auth = authenticate(ctx.tokens);
  router.get('/models', recordRoute, auth, async (req, res) => {
    const models = await listModels(ctx, currentUser(req).id);
    res.json({ object: 'list', data: models.map(modelObject) });
  });
  router.get('/models/:model', recordRoute, auth, async (req, res) => {
    res.json(modelObject(await resolveModel(ctx, currentUser(req).id, String(req.params.model))));
  });
  router.post('/chat/completions', recordRoute, auth, (req, res) => chatCompletions(ctx, req, res));
  router.post('/responses', recordRoute, auth, (req, res) => responses(ctx, req, res));
  router.use((req) => {
    throw notFound(`Route ${req.method} ${req.baseUrl}${req.path}`);
  });
  return router;
}

/** A turn's events until its end (the request's client may leave: then undefined), the others collected. */
async function untilEnd(ctx: ApiContext, res: Response, turn: Turn, seen: (event: ChatEvent) => void) {
  const controller = new AbortController();
  res.on('close', () => controller.abort());
  let end: Extract<ChatEvent, { type: 'final' | 'error' | 'cancelled' }> | undefined;
  for await (const event of ctx.sources.chatTurnEvents(turn, controller.signal, true)) {
    if (event.type === 'final' || event.type === 'error' || event.type === 'cancelled') end = event;
    else seen(event);
  }
  return end;
}

/** What both endpoints do once the request is read: the model, the session, the native checks. */
async function turnOf(
  ctx: ApiContext,
  req: Request,
  user: AuthUser,
  modelName: string,
  read: { text: string; history: Said[] },
  param: string,
  sessionId?: string,
): Promise<{ model: OpenAiModel; prepared: PreparedTurn; remember: (turn: Turn, reply: string) => Promise<void> }> {
  const model = await resolveModel(ctx, user.id, modelName);
  const session = sessionId ?? (await sessionFor(ctx, req, user, model, read.history));
  const prepared = await prepareTurn(ctx, user, model, read.text, session, param);
  const said: Said[] = [...read.history, { role: 'user', text: read.text }];
  return {
    model,
    prepared,
    remember: (turn, reply) => rememberConversation(ctx, user, model, [...said, { role: 'assistant', text: reply }], turn.sessionId),
  };
}

async function chatCompletions(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const user = currentUser(req);
  const body = parseOr400(chatCompletionBodySchema, req.body);
  const read = readMessages(body);
  const { model, prepared, remember } = await turnOf(ctx, req, user, body.model, read, `messages.${body.messages.length - 1}.content`);
  if (!body.stream) {
    const turn = await prepared.start();
    res.setHeader('X-Chat-Session-Id', turn.sessionId);
    const toolEvents: ChatEvent[] = [];
    const end = await untilEnd(ctx, res, turn, (event) => event.type !== 'text_chunk' && toolEvents.push(event));
    if (!end) return; // the client left
    if (end.type === 'error') throw new AppError(turnErrorStatus(end.code), end.code, end.message);
    if (end.type === 'final') await remember(turn, end.response);
    return void res.json(
      completionObject({ id: `chatcmpl-${turn.messageId}`, model: model.id }, { sessionId: turn.sessionId, toolEvents }, end),
    );
  }
  const includeUsage = body.stream_options?.include_usage === true;
  await ctx.streams.serve(req, res, {
    userId: prepared.streamOwner,
    context: {},
    prepare: async () => {
      const turn = await prepared.start();
      res.setHeader('X-Chat-Session-Id', turn.sessionId);
      const mapper = new CompletionMapper({ id: `chatcmpl-${turn.messageId}`, model: model.id, includeUsage });
      return {
        async *messages(signal) {
          for (const chunk of mapper.begin(turn.sessionId)) yield data(chunk);
          for await (const event of ctx.sources.chatTurnEvents(turn, signal, true)) {
            // Remembered before the answer ends: the client's next request may follow at once.
            if (event.type === 'final') await remember(turn, event.response);
            const { chunks, done } = mapper.map(event);
            for (const chunk of chunks) yield data(chunk);
            if (done || isChatTerminal(event)) break;
          }
          if (!signal.aborted) yield DONE;
        },
        interrupted: {
          data: '',
          wire: `data: ${JSON.stringify({ error: { message: 'The answer stream was interrupted', type: 'server_error', param: null, code: 'stream_interrupted' } })}\n\ndata: [DONE]\n\n`,
        },
      };
    },
  });
}

/** The session `previous_response_id` names: the caller's, else 400. */
async function previousSession(ctx: ApiContext, user: AuthUser, id: string): Promise<string> {
  const sessionId = sessionOfResponseId(id);
  if (sessionId && (await ctx.repos.chat.findOwned(user.id, sessionId))) return sessionId;
  throw new AppError(400, 'previous_response_not_found', `Previous response with id '${id.slice(0, 200)}' not found`, [
    { path: 'previous_response_id', message: 'unknown response' },
  ]);
}

async function responses(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const user = currentUser(req);
  const body = parseOr400(responsesBodySchema, req.body);
  const read = readInput(body);
  if (body.previous_response_id && read.history.length)
    throw badRequest('Send either previous_response_id or the conversation, not both', [
      { path: 'input', message: 'conversation with previous_response_id' },
    ]);
  const previous = body.previous_response_id ? await previousSession(ctx, user, body.previous_response_id) : undefined;
  const param = typeof body.input === 'string' ? 'input' : `input.${body.input.length - 1}.content`;
  const { model, prepared, remember } = await turnOf(ctx, req, user, body.model, read, param, previous);
  const mapperOf = (turn: Turn) =>
    new ResponseMapper({
      id: responseId(turn),
      model: model.id,
      previousResponseId: body.previous_response_id ?? null,
      sessionId: turn.sessionId,
    });
  if (!body.stream) {
    const turn = await prepared.start();
    res.setHeader('X-Chat-Session-Id', turn.sessionId);
    const mapper = mapperOf(turn);
    const end = await untilEnd(ctx, res, turn, (event) => mapper.map(event));
    if (!end) return;
    if (end.type === 'error') throw new AppError(turnErrorStatus(end.code), end.code, end.message);
    if (end.type === 'final' && !previous) await remember(turn, end.response);
    mapper.map(end);
    return void res.json(mapper.response());
  }
  await ctx.streams.serve(req, res, {
    userId: prepared.streamOwner,
    context: {},
    prepare: async () => {
      const turn = await prepared.start();
      res.setHeader('X-Chat-Session-Id', turn.sessionId);
      const mapper = mapperOf(turn);
      const message = (event: { type: string }): SseMessage => ({ event: event.type, data: JSON.stringify(event) });
      return {
        async *messages(signal) {
          for (const event of mapper.begin()) yield message(event);
          for await (const event of ctx.sources.chatTurnEvents(turn, signal, true)) {
            if (event.type === 'final' && !previous) await remember(turn, event.response);
            const { events, done } = mapper.map(event);
            for (const out of events) yield message(out);
            if (done || isChatTerminal(event)) break;
          }
        },
        interrupted: {
          event: 'error',
          data: JSON.stringify({ type: 'error', code: 'stream_interrupted', message: 'The answer stream was interrupted', param: null }),
        },
      };
    },
  });
}

import { AGENT_CARD_PATH, A2A_PROTOCOL_VERSION, A2A_VERSION_HEADER, type AgentCard } from '@a2a-js/sdk';
import { A2A_LEGACY_PROTOCOL_VERSION, duplicateInterfacesForLegacy } from '@a2a-js/sdk/compat/v0_3';
import { LegacyJsonRpcTransportHandler } from '@a2a-js/sdk/compat/v0_3/server';
import { JsonRpcTransportHandler, defaultServerCallContextBuilder, validateVersion, type User } from '@a2a-js/sdk/server';
import { agentCardHandler } from '@a2a-js/sdk/server/express';
import { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { AppError } from '../../lib/errors';
import type { ApiContext } from '../context';
import { authenticate, currentUser } from '../middleware/authenticate';
import { jsonBody } from '../middleware/json-body';
import { rejectNulCharacters } from '../middleware/reject-nul';
import { A2aTasks, REFUSED_CODE, rpcErrorOf, type A2aAgentRef } from './a2a-tasks';

/** Where the assistant's JSON-RPC endpoint is; a chatflow's is `${A2A_PATH}/flows/:flowId`. */
export const A2A_PATH = '/a2a';

/** The JSON-RPC request's id, when the body has one (an error answers with it). */
const idOf = (body: unknown): string | number | null => {
  const id = (body as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
};

/** The protocol version a request asks for: `A2A-Version`, else 0.3 (a client that sends none predates the header). */
const versionOf = (req: Request) => req.get(A2A_VERSION_HEADER)?.trim() || A2A_LEGACY_PROTOCOL_VERSION;

/**
 * Where the caller reached this server (the scheme as the proxies in front say, with the app's
 * `trust proxy`): the card's URLs are the ones the client can reach.
 */
const originOf = (req: Request) => `${req.protocol}://${req.get('host') ?? 'localhost'}`;

/** The card of an agent at `url` (its JSON-RPC endpoint), in both protocol versions. */
function cardOf(
  ctx: ApiContext,
  origin: string,
  url: string,
  name: string,
  description: string,
  skill: { id: string; name: string; description: string },
): AgentCard {
  const interfaces = [{ url, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: A2A_PROTOCOL_VERSION }];
  return {
    name,
    description,
    supportedInterfaces: duplicateInterfacesForLegacy(interfaces, ['JSONRPC']),
    provider: { url: origin, organization: 'Switchboard' },
    version: '1.0.0',
    documentationUrl: `${origin}/docs`,
    capabilities: { streaming: true, pushNotifications: true, extensions: [], extendedAgentCard: false },
    securitySchemes: {
      apiKey: {
        scheme: {
          $case: 'httpAuthSecurityScheme',
          value: { description: 'A Switchboard API key (sb_live_…) as the bearer token', scheme: 'bearer', bearerFormat: 'API key' },
        },
      },
    },
    securityRequirements: [{ schemes: { apiKey: { list: [] } } }],
    defaultInputModes: ['text/plain'],
    defaultOutputModes: ['text/plain', 'application/json'],
    skills: [{ ...skill, tags: ['chat'], examples: [], inputModes: ['text/plain'], outputModes: ['text/plain'], securityRequirements: [] }],
    signatures: [],
  };
}

/** The assistant's card: public (it names no user's data). */
export function assistantCard(ctx: ApiContext, req: Request): AgentCard {
  const origin = originOf(req);
  return cardOf(
    ctx,
    origin,
    `${origin}${A2A_PATH}`,
    'Switchboard assistant',
    "The caller's Switchboard assistant: each message is a chat turn (tools on the caller's device when one is online)",
    { id: 'chat', name: 'Chat', description: 'Answers a message in a chat session; the task is the turn' },
  );
}

/** A chatflow's card: its owner's only (its name and description are the owner's data). */
async function flowCard(ctx: ApiContext, req: Request, flowId: string): Promise<AgentCard> {
  const user = currentUser(req);
  const flow = await ctx.flows.get(user.id, flowId);
  if (flow.type !== 'chatflow') throw new AppError(404, 'not_found', 'Flow not found');
  const origin = originOf(req);
  return cardOf(ctx, origin, `${origin}${A2A_PATH}/flows/${flow.id}`, flow.name, `The chatflow ${flow.name}`, {
    id: 'chat',
    name: flow.name,
    description: 'Answers a message with the chatflow; the task is the turn',
  });
}

const flowIdOf = (req: Request) => {
  const parsed = z.uuid().safeParse(req.params.flowId);
  if (!parsed.success) throw new AppError(404, 'not_found', 'Flow not found');
  return parsed.data;
};

/**
 * The Agent2Agent protocol (A2A 1.0, and 0.3 for clients that send no `A2A-Version`) over JSON-RPC:
 * the assistant at `/a2a` (its card at `/.well-known/agent-card.json`) and each of the caller's
 * chatflows at `/a2a/flows/:flowId` (its card at `/a2a/flows/:flowId/.well-known/agent-card.json`,
 * for its owner). The SDK's transport handlers parse the requests and shape the answers and errors;
 * the operations run on the native chat (`A2aTasks`). Authenticated as the API is (an API key or an
 * access token as the bearer); streams go through the one SSE door (its per-user cap, heartbeat,
 * shutdown).
 */
export function a2aEdge(ctx: ApiContext): Router {
  const router = Router();
  const auth = authenticate(ctx.tokens);
  router.use(AGENT_CARD_PATH.startsWith('/') ? AGENT_CARD_PATH : `/${AGENT_CARD_PATH}`, (req, res, next) => {
    const card = assistantCard(ctx, req);
    agentCardHandler({ agentCardProvider: () => Promise.resolve(card), legacyCompat: { enabled: true } })(req, res, next);
  });
  router.use(`${A2A_PATH}/flows/:flowId/.well-known/agent-card.json`, auth, async (req, res, next) => {
    try {
      const card = await flowCard(ctx, req, flowIdOf(req));
      agentCardHandler({ agentCardProvider: () => Promise.resolve(card), cache: { maxAge: 0 }, legacyCompat: { enabled: true } })(
        req,
        res,
        next,
      );
    } catch (error) {
      next(error);
    }
  });
  const rpc = Router();
  rpc.use(jsonBody(ctx.config.http.bodyLimit, ['application/json', 'application/a2a+json']), rejectNulCharacters);
  rpc.use(parseErrors);
  rpc.use(auth, authErrors);
  rpc.post('/', (req, res) => serveRpc(ctx, req, res, { kind: 'assistant' }));
  rpc.post('/flows/:flowId', (req, res) => {
    const flowId = z.uuid().safeParse(req.params.flowId);
    if (!flowId.success) return void res.status(404).json(rpcError(req.body, REFUSED_CODE, 'Flow not found'));
    return serveRpc(ctx, req, res, { kind: 'flow', flowId: flowId.data });
  });
  router.use(A2A_PATH, rpc);
  return router;
}

const rpcError = (body: unknown, code: number, message: string, data?: unknown) => ({
  jsonrpc: '2.0',
  id: idOf(body),
  error: { code, message, ...(data === undefined ? {} : { data }) },
});

/** A body that is not JSON is the JSON-RPC parse error, nothing else read. */
function parseErrors(error: unknown, req: Request, res: Response, next: NextFunction): void {
  if (error instanceof SyntaxError || (error instanceof AppError && error.status === 400)) {
    return void res.status(200).json(rpcError(undefined, -32700, 'Invalid JSON payload'));
  }
  next(error);
}

/** No or a bad credential: 401 with a JSON-RPC error body (the `WWW-Authenticate` of the API). */
function authErrors(error: unknown, req: Request, res: Response, next: NextFunction): void {
  if (error instanceof AppError && (error.status === 401 || error.status === 403)) {
    if (error.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
    return void res.status(error.status).json(rpcError(req.body, REFUSED_CODE, error.message, [{ reason: error.code }]));
  }
  next(error);
}

async function serveRpc(ctx: ApiContext, req: Request, res: Response, agent: A2aAgentRef): Promise<void> {
  const user = currentUser(req);
  const legacy = versionOf(req) === A2A_LEGACY_PROTOCOL_VERSION;
  const mapError = (error: unknown) =>
    legacy ? LegacyJsonRpcTransportHandler.mapToLegacyJSONRPCError(error) : JsonRpcTransportHandler.mapToJSONRPCError(error);
  const fail = (error: unknown) => {
    const mapped = error instanceof AppError ? mapError(rpcErrorOf(error)) : mapError(error);
    if (!res.headersSent) res.status(200).json({ jsonrpc: '2.0', id: idOf(req.body), error: mapped });
    else if (!res.writableEnded) res.end();
  };
  try {
    const card = agent.kind === 'flow' ? await flowCard(ctx, req, agent.flowId) : assistantCard(ctx, req);
    const tasks = new A2aTasks(ctx, user, agent, card);
    const caller: User = { isAuthenticated: true, userName: user.id };
    const context = defaultServerCallContextBuilder({
      extensions: undefined,
      user: caller,
      headers: req.headers,
      requestedVersion: req.get(A2A_VERSION_HEADER) ?? undefined,
    });
    validateVersion(versionOf(req), card, 'JSONRPC');
    const transport = legacy ? new LegacyJsonRpcTransportHandler(tasks) : new JsonRpcTransportHandler(tasks);
    const answer = await transport.handle(req.body as Record<string, unknown>, context);
    if (!isStream(answer)) return void res.status(200).json(answer);
    const id = idOf(req.body);
    await ctx.streams.serve(req, res, {
      userId: user.id,
      context: { a2a: agent.kind },
      prepare: async () => {
        // The turn starts (its checks, limits and budget) with the first response: a refusal is a
        // JSON-RPC error answered as JSON, before any stream opens.
        const first = await answer.next();
        return {
          async *messages() {
            if (!first.done) yield { data: JSON.stringify(first.value) };
            for await (const response of answer) yield { data: JSON.stringify(response) };
          },
          interrupted: {
            data: JSON.stringify(rpcError({ id }, -32603, 'The stream was interrupted; follow the task with tasks/resubscribe')),
          },
        };
      },
    });
  } catch (error) {
    fail(error);
  }
}

const isStream = (answer: unknown): answer is AsyncGenerator<unknown, void> =>
  typeof (answer as AsyncGenerator | undefined)?.[Symbol.asyncIterator] === 'function';

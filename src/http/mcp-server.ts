import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import express, { type Request, type Response, type Router } from 'express';
import { isApiKeySecret, type ApiKeyCaller } from '../auth/api-keys';
import { executeFlowSchema, inputKeys, type AgentflowDefinition } from '../flows/definition';
import type { FlowEvent } from '../flows/flow-events';
import { AppError, unauthorized } from '../lib/errors';
import type { FlowRow } from '../models/schema';
import type { ApiContext } from './context';
import { rejectNulCharacters } from './middleware/reject-nul';

/** The MCP endpoint's port: the flows, their executions and events, limits and API keys. */
export type McpPorts = Pick<ApiContext, 'flows' | 'flowExecutions' | 'sources' | 'limits' | 'tokens' | 'config' | 'logger'>;

/** Flows per `tools/list` page; the next page is asked for with the answer's `nextCursor`. */
const TOOLS_PAGE = 100;
/** Characters of the flow's name kept in a tool's name, before the flow id (a name is at most 64). */
const NAME_CHARS = 27;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A flow's MCP tool name: its name as letters, digits, `_` and `-` (at most 27), a `-`, and the
 * flow id. Only the id is read back, so a renamed flow answers to its old name too.
 */
export function mcpToolName(flow: Pick<FlowRow, 'id' | 'name'>): string {
  const slug =
    flow.name
      .normalize('NFKD')
      .replace(/[^A-Za-z0-9_-]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, NAME_CHARS) || 'flow';
  return `${slug}-${flow.id}`;
}

/** The flow id a tool name carries, or undefined. */
const flowIdOf = (name: string): string | undefined => UUID.exec(name)?.[0];

/** A flow as an MCP tool: its input schema holds every `{{input.<key>}}` its prompts read, all required. */
export function flowTool(flow: FlowRow): Tool {
  const definition = flow.definition as unknown as AgentflowDefinition;
  const keys = inputKeys(definition);
  const described =
    definition.description ?? `Runs the agentflow "${flow.name}" and returns the output of its node "${definition.output}".`;
  return {
    name: mcpToolName(flow),
    title: flow.name,
    description: described,
    inputSchema: {
      type: 'object',
      properties: Object.fromEntries(keys.map((key) => [key, { description: `Read by the flow's prompts as {{input.${key}}}` }])),
      required: keys,
    },
    annotations: { title: flow.name, readOnlyHint: false, openWorldHint: true },
  };
}

/** The caller's flow, or undefined when they have none with that id (another user's flow included). */
async function ownFlow(ctx: McpPorts, userId: string, flowId: string): Promise<FlowRow | undefined> {
  try {
    return await ctx.flows.get(userId, flowId);
  } catch (error) {
    if (error instanceof AppError && error.status === 404) return undefined;
    throw error;
  }
}

type ServerSdk = typeof import('@modelcontextprotocol/sdk/server/mcp.js') &
  typeof import('@modelcontextprotocol/sdk/server/streamableHttp.js') &
  typeof import('@modelcontextprotocol/sdk/types.js');
let serverSdk: Promise<ServerSdk> | undefined;

/** The MCP SDK's server, loaded at the first MCP request: a process that serves none never loads it. */
function loadServerSdk(): Promise<ServerSdk> {
  serverSdk ??= Promise.all([
    import('@modelcontextprotocol/sdk/server/mcp.js'),
    import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ]).then(([mcp, transport, types]) => ({ ...mcp, ...transport, ...types }));
  return serverSdk;
}

const textResult = (text: string, extra: Partial<CallToolResult> = {}): CallToolResult => ({
  content: [{ type: 'text', text }],
  ...extra,
});

/** How a flow event reads as a progress message. */
function progressMessage(event: FlowEvent): string | undefined {
  switch (event.type) {
    case 'execution_started':
      return `execution ${event.executionId} started`;
    case 'node_started':
      return `node ${event.nodeId} started`;
    case 'node_completed':
      return `node ${event.nodeId} completed`;
    case 'node_failed':
      return `node ${event.nodeId} failed: ${event.error.code}`;
    case 'tool_called':
      return `node ${event.nodeId} called ${event.tool}`;
    case 'approval_requested':
      return `node ${event.nodeId} waits for approval ${event.approvalId} of ${event.tool}`;
    default:
      return undefined;
  }
}

/** The result of a terminal event. */
function terminalResult(event: FlowEvent, executionId: string): CallToolResult {
  const meta = { _meta: { executionId } };
  if (event.type === 'execution_completed') {
    const { output } = event;
    const structured = output !== null && typeof output === 'object' && !Array.isArray(output);
    return textResult(typeof output === 'string' ? output : JSON.stringify(output), {
      ...(structured ? { structuredContent: output as Record<string, unknown> } : {}),
      ...meta,
    });
  }
  if (event.type === 'cancelled') return textResult(`The execution ${executionId} was cancelled`, { isError: true, ...meta });
  const error = event.type === 'execution_failed' ? event.error : { code: 'interrupted', message: 'The execution ended without a result' };
  return textResult(`${error.code}: ${error.message}`, { isError: true, ...meta });
}

/**
 * The MCP server of one request (the transport is stateless: any api node answers any request, as
 * nothing lives between them but the API key, the database and the execution's event log).
 */
function serverFor(sdk: ServerSdk, ctx: McpPorts, caller: ApiKeyCaller, version: string): McpServer {
  const { McpServer, McpError, ErrorCode, ListToolsRequestSchema, CallToolRequestSchema } = sdk;
  /** An AppError as the JSON-RPC error an MCP client reads: its code first, then its message. */
  const rpcError = (error: unknown): never => {
    if (error instanceof AppError)
      throw new McpError(ErrorCode.InvalidRequest, `${error.code}: ${error.message}`, { status: error.status });
    throw error;
  };
  const mcp = new McpServer({ name: 'switchboard', version }, { capabilities: { tools: { listChanged: false } } });
  const user = caller.user;
  // The low-level handlers: a user's tools are their flows, read per request, not registered once.
  mcp.server.setRequestHandler(ListToolsRequestSchema, async (request) => {
    const cursor = request.params?.cursor;
    const page = await ctx.flows.list(user.id, { limit: TOOLS_PAGE, cursor }).catch(rpcError);
    return {
      tools: page.items.filter((flow) => flow.type === 'agentflow').map(flowTool),
      ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
    };
  });
  mcp.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    if (!caller.scopes.includes('write')) rpcError(new AppError(403, 'forbidden', 'This API key may only read (scope read)'));
    const flowId = flowIdOf(request.params.name);
    const flow = flowId ? await ownFlow(ctx, user.id, flowId) : undefined;
    if (!flow || flow.type !== 'agentflow') throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    const parsed = executeFlowSchema.safeParse({ input: request.params.arguments ?? {} });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return textResult(`validation_failed: ${[...issue.path].slice(1).join('.') || 'arguments'}: ${issue.message}`, { isError: true });
    }
    let executionId: string;
    try {
      await ctx.limits.requireFeature(user.id, 'flows');
      await ctx.limits.requireFlowModels(user.id, flow.definition);
      ({ executionId } = await ctx.flowExecutions.start(user, flow, parsed.data.input));
    } catch (error) {
      if (error instanceof AppError) return textResult(`${error.code}: ${error.message}`, { isError: true });
      throw error;
    }
    const progressToken = request.params._meta?.progressToken;
    // The execution goes on when the client leaves; its id is in the first progress message and the result.
    for await (const { seq, event } of ctx.sources.flowExecutionEvents(executionId, 0, extra.signal)) {
      const message = progressMessage(event);
      if (progressToken !== undefined && message)
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: seq, message } });
      if (event.type === 'execution_completed' || event.type === 'execution_failed' || event.type === 'cancelled')
        return terminalResult(event, executionId);
    }
    return terminalResult(
      { type: 'execution_failed', executionId, error: { code: 'interrupted', message: 'The stream ended' } },
      executionId,
    );
  });
  return mcp;
}

/** The API key of an MCP request (`Authorization: Bearer sb_live_…` or `X-API-Key`), or undefined. */
function apiKeyOf(req: Request): string | undefined {
  const header = req.headers.authorization;
  const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
  const key = bearer ?? (typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'].trim() : undefined);
  return key && isApiKeySecret(key) ? key : undefined;
}

/**
 * `/mcp`: the Model Context Protocol over Streamable HTTP, stateless, authenticated by API key.
 * `POST` carries every request; `GET` (a standalone event stream) and `DELETE` (ending a session)
 * have nothing to serve without sessions and answer 405.
 */
export function mcpRouter(ctx: McpPorts, version: string): Router {
  const router = express.Router();
  router.use(express.json({ limit: ctx.config.http.bodyLimit, strict: true }));
  router.use(rejectNulCharacters);
  router.post('/', async (req: Request, res: Response, next) => {
    try {
      const secret = apiKeyOf(req);
      if (!secret) throw unauthorized('The MCP endpoint needs an API key: Authorization: Bearer sb_live_…');
      const caller = await ctx.tokens.apiKeys?.authenticate(secret, req.ip ?? req.socket.remoteAddress ?? 'unknown');
      if (!caller) throw unauthorized('Invalid, revoked or expired API key');
      const sdk = await loadServerSdk();
      const server = serverFor(sdk, ctx, caller, version);
      const transport = new sdk.StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (error) {
      next(error);
    }
  });
  const notAllowed = (_req: Request, res: Response) => {
    res.setHeader('Allow', 'POST');
    res.status(405).json({ error: { code: 'method_not_allowed', message: 'The MCP endpoint is stateless: send every message with POST' } });
  };
  router.get('/', notAllowed);
  router.delete('/', notAllowed);
  return router;
}

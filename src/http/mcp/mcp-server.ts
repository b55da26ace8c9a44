import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { TaskStore } from '@modelcontextprotocol/sdk/experimental/tasks/interfaces.js';
import type { CallToolResult, Task } from '@modelcontextprotocol/sdk/types.js';
import type { McpHttpHandler, ListToolsResult as ModernListToolsResult } from '@modelcontextprotocol/server';
import express, { type Request, type Response, type Router } from 'express';
import { isApiKeySecret, type ApiKeyCaller } from '../../auth/api-keys';
import { Revocations } from '../../auth/revocations';
import { executeFlowSchema, type AgentflowDefinition } from '../../flows/definition';
import type { FlowEvent } from '../../flows/flow-events';
import { nodeApprovalKey } from '../../flows/node-approvals';
import { AppError } from '../../lib/errors';
import { settled } from '../../lib/settled';
import type { FlowExecutionRow, FlowRow } from '../../models/schema';
import type { ApiContext } from '../context';
import { jsonBody } from '../middleware/json-body';
import {
  checkedResult,
  firstError,
  flowIdOf,
  flowTool,
  outputSchemaOf,
  progressMessage,
  rowResult,
  terminalResult,
  textResult,
  validatorOf,
} from './flow-tools';
import { mcpAllowedOrigins, mcpOriginGuard } from '../middleware/mcp-origin';
import { rejectNulCharacters } from '../middleware/reject-nul';
import { bearerChallenge, grantRevocationId, type OAuthAccess } from '../oauth-server';

/** The MCP endpoint's port: the flows, their executions and events, limits, API keys and their revocations. */
export type McpPorts = Pick<
  ApiContext,
  'flows' | 'flowExecutions' | 'sources' | 'limits' | 'tokens' | 'revocations' | 'config' | 'logger' | 'repos'
>;

/**
 * Who calls `/mcp`: a user through an API key or an OAuth access token, what they may do, and the
 * ids whose revocation ends their requests on any node.
 */
export interface McpCaller {
  user: ApiKeyCaller['user'];
  /** May list the tools. */
  mayList: boolean;
  /** May call this flow's tool; the error message says why not. */
  mayCall(flowId: string): true | string;
  /** Lists only the flows it may call (an OAuth token's flow scopes). */
  listsCallableOnly: boolean;
  watched: string[];
  /** What the credential is called in the error that ends a revoked request. */
  kind: 'API key' | 'access token';
}

/** An API key's caller: a `read` key lists, a `write` key lists and calls. */
function keyCaller(caller: ApiKeyCaller): McpCaller {
  const write = caller.scopes.includes('write');
  return {
    user: caller.user,
    mayList: true,
    mayCall: () => write || 'This API key may only read (scope read)',
    listsCallableOnly: false,
    watched: [caller.keyId, Revocations.userId(caller.user.id)],
    kind: 'API key',
  };
}

/** An OAuth token's caller: `mcp:read` lists, `mcp:call` calls every flow, `flow:<id>` that flow. */
function tokenCaller(access: OAuthAccess, user: ApiKeyCaller['user']): McpCaller {
  const all = access.scopes.includes('mcp:call');
  const flows = new Set(access.scopes.filter((scope) => scope.startsWith('flow:')).map((scope) => scope.slice(5)));
  return {
    user,
    mayList: access.scopes.includes('mcp:read') || all || flows.size > 0,
    mayCall: (flowId) => all || flows.has(flowId) || `This token's scopes do not include mcp:call or flow:${flowId}`,
    listsCallableOnly: !access.scopes.includes('mcp:read') && !all,
    watched: [grantRevocationId(access.grantId), Revocations.userId(user.id)],
    kind: 'access token',
  };
}

/** Flows per `tools/list` page; the next page is asked for with the answer's `nextCursor`. */
const TOOLS_PAGE = 100;
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

/** JSON-RPC error codes the handlers answer with (the same in both protocol eras). */
const INVALID_REQUEST = -32600;
const INVALID_PARAMS = -32602;

/** Builds an era's JSON-RPC error: the SDK of each era has its own error class. */
type RpcErrorOf = (code: number, message: string, data?: unknown) => Error;

/** What a `tools/call` may report while it runs: a progress message with its sequence number. */
type ProgressSink = ((progress: number, message: string) => Promise<void>) | undefined;

/**
 * The tools of one request, the same for both protocol eras: each era's server only maps its SDK's
 * handler signature onto these. `revoked` fires when the request's credential is revoked or its
 * user deleted, on any node.
 */
function toolHandlers(ctx: McpPorts, caller: McpCaller, revoked: AbortSignal, rpcErrorOf: RpcErrorOf) {
  /** An AppError as the JSON-RPC error an MCP client reads: its code first, then its message. */
  const rpcError = (error: unknown): never => {
    if (error instanceof AppError) throw rpcErrorOf(INVALID_REQUEST, `${error.code}: ${error.message}`, { status: error.status });
    throw error;
  };
  const revokedError = () =>
    rpcErrorOf(INVALID_REQUEST, `session_revoked: The ${caller.kind} of this request was revoked`, { status: 401 });
  /**
   * Runs a request's handler until its credential is revoked. Then the request is answered at once
   * with the JSON-RPC error `session_revoked: …`, whatever the handler would still return is
   * dropped, and the handler's signal stops it following the execution (which runs on).
   */
  const untilRevoked = <T>(clientSignal: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    if (revoked.aborted) return Promise.reject(revokedError());
    return new Promise<T>((resolve, reject) => {
      const onRevoked = () => reject(revokedError());
      revoked.addEventListener('abort', onRevoked, { once: true });
      work(AbortSignal.any([clientSignal, revoked]))
        .then(resolve, reject)
        .finally(() => revoked.removeEventListener('abort', onRevoked));
    });
  };
  const user = caller.user;
  // A user's tools are their flows, read per request, not registered once.
  const list = (cursor: string | undefined, clientSignal: AbortSignal) =>
    untilRevoked(clientSignal, async () => {
      if (!caller.mayList) rpcError(new AppError(403, 'forbidden', 'This token may not list tools (scope mcp:read)'));
      const page = await ctx.flows.list(user.id, { limit: TOOLS_PAGE, cursor }).catch(rpcError);
      return {
        tools: page.items
          .filter((flow) => flow.type === 'agentflow' && (!caller.listsCallableOnly || caller.mayCall(flow.id) === true))
          .map(flowTool),
        ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
      };
    });
  /**
   * Starts the execution of a `tools/call`: its id, or the result that refused it (nothing started).
   * A refused start of a task call is a JSON-RPC error, as a task call answers with a task or an error.
   */
  const start = async (
    params: { name: string; arguments?: Record<string, unknown> },
    signal: AbortSignal,
    asTask: boolean,
  ): Promise<{ executionId: string; outputSchema?: Record<string, unknown> } | { refused: CallToolResult }> => {
    const refused = (text: string) => {
      if (asTask) throw rpcErrorOf(INVALID_PARAMS, text);
      return { refused: textResult(text, { isError: true }) };
    };
    const flowId = flowIdOf(params.name);
    const allowed = caller.mayCall(flowId ?? '');
    if (allowed !== true) rpcError(new AppError(403, 'forbidden', allowed));
    const flow = flowId ? await ownFlow(ctx, user.id, flowId) : undefined;
    if (!flow || flow.type !== 'agentflow') throw rpcErrorOf(INVALID_PARAMS, `Unknown tool: ${params.name}`);
    // The arguments are checked against the tool's input schema as JSON Schema 2020-12, then by the API's own rules.
    const validate = validatorOf(flowTool(flow).inputSchema);
    if (!validate(params.arguments ?? {})) return refused(`validation_failed: ${firstError(validate, 'arguments')}`);
    const parsed = executeFlowSchema.safeParse({ input: params.arguments ?? {} });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return refused(`validation_failed: ${[...issue.path].slice(1).join('.') || 'arguments'}: ${issue.message}`);
    }
    try {
      await ctx.limits.requireFeature(user.id, 'flows');
      await ctx.limits.requireFlowModels(user.id, flow.definition);
      // A key revoked (or a call cancelled) while the checks ran starts nothing; the request is already answered.
      signal.throwIfAborted();
      const { executionId } = await ctx.flowExecutions.start(user, flow, parsed.data.input);
      return { executionId, outputSchema: outputSchemaOf(flow.definition as unknown as AgentflowDefinition) };
    } catch (error) {
      if (error instanceof AppError) return refused(`${error.code}: ${error.message}`);
      throw error;
    }
  };
  /**
   * Follows an execution to its end (progress for the events after `since`), or, with `stopAtApproval`,
   * until a node waits for an approval still pending: then its event and the sequence number reached.
   */
  const follow = async (
    execution: { executionId: string; outputSchema?: Record<string, unknown> },
    signal: AbortSignal,
    progress: ProgressSink,
    since = 0,
    stopAtApproval = false,
  ): Promise<{ result: CallToolResult } | { waiting: Extract<FlowEvent, { type: 'approval_requested' }>; seq: number }> => {
    const { executionId, outputSchema } = execution;
    // The execution goes on when the client leaves; its id is in the first progress message and the result.
    for await (const { seq, event } of ctx.sources.flowExecutionEvents(executionId, 0, signal)) {
      const message = progressMessage(event);
      if (progress && message && seq > since) await progress(seq, message);
      if (stopAtApproval && event.type === 'approval_requested' && (await ctx.repos.hitl.find(event.approvalId))?.status === 'pending')
        return { waiting: event, seq };
      if (event.type === 'execution_completed' || event.type === 'execution_failed' || event.type === 'cancelled')
        return { result: checkedResult(event, executionId, outputSchema) };
    }
    return {
      result: terminalResult(
        { type: 'execution_failed', executionId, error: { code: 'interrupted', message: 'The stream ended' } },
        executionId,
      ),
    };
  };
  const call = (params: { name: string; arguments?: Record<string, unknown> }, clientSignal: AbortSignal, progress: ProgressSink) =>
    untilRevoked(clientSignal, async (signal): Promise<CallToolResult> => {
      const started = await start(params, signal, false);
      if ('refused' in started) return started.refused;
      return ((await follow(started, signal, progress)) as { result: CallToolResult }).result;
    });
  /**
   * A `tools/call` of the 2026-07-28 era: as `call`, but a node waiting for an approval answers
   * `waiting` (the client is asked to have it decided and to call again with `resume`), and a call
   * with `resume` follows that execution again instead of starting one. `resume` comes from the
   * client: the execution must be the caller's, of this tool's flow, and callable by them.
   */
  const callOrResume = (
    params: { name: string; arguments?: Record<string, unknown> },
    clientSignal: AbortSignal,
    progress: ProgressSink,
    resume: { executionId: string; seq: number } | undefined,
  ) =>
    untilRevoked(clientSignal, async (signal) => {
      let execution: { executionId: string; outputSchema?: Record<string, unknown> };
      let flowId: string;
      if (resume) {
        const own = await ownExecution(resume.executionId);
        const allowed = own ? caller.mayCall(own.flowId) : false;
        if (!own || own.flowId !== flowIdOf(params.name) || allowed !== true)
          throw rpcErrorOf(INVALID_PARAMS, 'requestState names no execution of this tool of yours');
        execution = { executionId: own.id, outputSchema: outputSchemaOf(own.definition as unknown as AgentflowDefinition) };
        flowId = own.flowId;
      } else {
        const started = await start(params, signal, false);
        if ('refused' in started) return { result: started.refused };
        execution = started;
        flowId = flowIdOf(params.name)!;
      }
      const followed = await follow(execution, signal, progress, resume?.seq ?? 0, true);
      return 'result' in followed ? followed : { ...followed, executionId: execution.executionId, flowId };
    });
  /** A `tools/call` as a task: the execution starts and the answer is at once its task (its id is the execution id). */
  const callAsTask = (params: { name: string; arguments?: Record<string, unknown> }, clientSignal: AbortSignal) =>
    untilRevoked(clientSignal, async (signal) => {
      const started = await start(params, signal, true);
      if ('refused' in started) throw rpcErrorOf(INVALID_PARAMS, 'The execution was not started');
      const task = await taskOf(started.executionId);
      if (!task) throw rpcErrorOf(INVALID_PARAMS, 'The execution was not started');
      return { task };
    });

  /** The caller's execution of that id, or undefined (another user's, or none). */
  const ownExecution = async (taskId: string) => {
    if (!UUID_ONLY.test(taskId)) return undefined;
    const execution = await ctx.repos.flowExecutions.find(taskId);
    return execution?.userId === user.id ? execution : undefined;
  };
  /**
   * An execution as an MCP task: queued or running is `working`, or `input_required` while a node
   * waits for the owner's approval; the ends are `completed`, `failed` and `cancelled`.
   */
  const taskOf = async (taskId: string): Promise<Task | null> => {
    const execution = await ownExecution(taskId);
    if (!execution) return null;
    let status: Task['status'] = TASK_STATUS[execution.status];
    let statusMessage = execution.errorCode ? `${execution.errorCode}: ${execution.errorMessage ?? ''}` : undefined;
    if (status === 'working') {
      const found = await ctx.repos.flowExecutions.findOfFlowWithNodes(execution.flowId, execution.id);
      for (const node of found?.nodes.filter((one) => one.status === 'running') ?? []) {
        const pending = await ctx.repos.hitl.pendingForMessage(nodeApprovalKey(execution.id, node.nodeId));
        if (pending.length) {
          status = 'input_required';
          statusMessage = `node ${node.nodeId} waits for approval ${pending[0].id} (PUT /api/v1/hitl/requests/${pending[0].id}/approve|reject)`;
          break;
        }
      }
    }
    return {
      taskId: execution.id,
      status,
      ttl: null,
      createdAt: execution.createdAt.toISOString(),
      lastUpdatedAt: (execution.completedAt ?? execution.startedAt ?? execution.createdAt).toISOString(),
      pollInterval: TASK_POLL_MS,
      ...(statusMessage ? { statusMessage } : {}),
    };
  };
  /**
   * The task store of the 2025-11-25 era's SDK over the caller's executions: tasks are read from
   * the database on any node, `tasks/cancel` cancels the execution, `tasks/result` waits for its end.
   */
  const taskStore: TaskStore = {
    createTask: () => Promise.reject(new Error('Tasks are created by tools/call only')),
    storeTaskResult: () => Promise.reject(new Error('A task result is its execution’s')),
    listTasks: () => Promise.reject(new Error('Tasks are not listed: list executions through the API')),
    getTask: (taskId) => taskOf(taskId),
    getTaskResult: async (taskId) => {
      const execution = await ownExecution(taskId);
      if (!execution) throw rpcErrorOf(INVALID_PARAMS, `Task not found: ${taskId}`);
      return rowResult(execution);
    },
    updateTaskStatus: async (taskId, status) => {
      const execution = await ownExecution(taskId);
      if (!execution) throw rpcErrorOf(INVALID_PARAMS, `Task not found: ${taskId}`);
      if (status !== 'cancelled') throw rpcErrorOf(INVALID_PARAMS, 'Only a cancel changes a task');
      if (caller.mayCall(execution.flowId) !== true)
        rpcError(new AppError(403, 'forbidden', 'This credential may not cancel this flow’s executions'));
      await ctx.flowExecutions.cancel(execution.flowId, execution.id, user.id).catch(rpcError);
    },
  };
  return { list, call, callOrResume, callAsTask, taskStore };
}

/** How often a client should poll a task, and how often `tasks/result` reads it. */
const TASK_POLL_MS = 500;
const UUID_ONLY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TASK_STATUS: Record<FlowExecutionRow['status'], Task['status']> = {
  queued: 'working',
  running: 'working',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};

/** The server's capabilities in both eras: tools, whose list changes only with the caller's flows. */
const CAPABILITIES = { tools: { listChanged: false } };

/**
 * The 2025-11-25 era's MCP server of one request (the transport is stateless: any api node answers
 * any request, as nothing lives between them but the credential, the database and the execution's
 * event log).
 */
function legacyServerFor(sdk: ServerSdk, ctx: McpPorts, caller: McpCaller, version: string, revoked: AbortSignal): McpServer {
  const { McpServer, McpError, ListToolsRequestSchema, CallToolRequestSchema } = sdk;
  const tools = toolHandlers(ctx, caller, revoked, (code, message, data) => new McpError(code, message, data));
  // A flow's call may run as a task (the tools say `execution.taskSupport: optional`): read, awaited and cancelled by its id.
  const mcp = new McpServer(
    { name: 'switchboard', version },
    { capabilities: { ...CAPABILITIES, tasks: { cancel: {}, requests: { tools: { call: {} } } } }, taskStore: tools.taskStore },
  );
  mcp.server.setRequestHandler(ListToolsRequestSchema, async (request, extra) => {
    const page = await tools.list(request.params?.cursor, extra.signal);
    return { ...page, tools: page.tools.map((tool) => ({ ...tool, execution: { taskSupport: 'optional' as const } })) };
  });
  mcp.server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
    if (request.params.task) return tools.callAsTask(request.params, extra.signal);
    const progressToken = request.params._meta?.progressToken;
    const progress: ProgressSink =
      progressToken === undefined
        ? undefined
        : (seq, message) => extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: seq, message } });
    return tools.call(request.params, extra.signal, progress);
  });
  return mcp;
}

type ModernSdk = typeof import('@modelcontextprotocol/server');

/** The execution a 2026-07-28 call resumes, from the request state it was given (anything else: none). */
function resumeOf(state: unknown): { executionId: string; seq: number } | undefined {
  if (typeof state !== 'string' || state.length > 200) return undefined;
  try {
    const parsed = JSON.parse(state) as { executionId?: unknown; seq?: unknown };
    if (typeof parsed.executionId !== 'string' || !UUID_ONLY.test(parsed.executionId)) return undefined;
    return { executionId: parsed.executionId, seq: Number.isSafeInteger(parsed.seq) ? Number(parsed.seq) : 0 };
  } catch {
    return undefined;
  }
}
type ModernServer = InstanceType<ModernSdk['Server']>;

/**
 * The 2026-07-28 era's MCP server of one request: stateless by the protocol itself (no
 * `initialize`, no session id; each request carries its protocol version and client in `_meta`).
 */
function modernServerFor(sdk: ModernSdk, ctx: McpPorts, caller: McpCaller, version: string, revoked: AbortSignal): ModernServer {
  const publicUrl = ctx.config.oauth.publicUrl;
  const tools = toolHandlers(ctx, caller, revoked, (code, message, data) => new sdk.ProtocolError(code, message, data));
  const server = new sdk.Server({ name: 'switchboard', version }, { capabilities: CAPABILITIES });
  server.setRequestHandler(
    'tools/list',
    async (request, context) =>
      // The same tool objects as the 2025 era's; only the two SDKs' JSON types differ.
      (await tools.list(request.params?.cursor, context.mcpReq.signal)) as ModernListToolsResult,
  );
  server.setRequestHandler('tools/call', async (request, context) => {
    const progressToken = request.params._meta?.progressToken;
    const progress: ProgressSink =
      progressToken === undefined
        ? undefined
        : (seq, message) => context.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: seq, message } });
    const answer = await tools.callOrResume(request.params, context.mcpReq.signal, progress, resumeOf(context.mcpReq.requestState()));
    if ('result' in answer) return server.projectCallToolResult(answer.result, undefined);
    // A node waits for an approval: only a person signed in to the console decides it, so the client is
    // sent there (URL elicitation) and calls again with the request state to follow the same execution.
    const { waiting, seq, executionId, flowId } = answer;
    return sdk.inputRequired({
      inputRequests: {
        [`approval-${waiting.approvalId}`]: sdk.inputRequired.elicitUrl({
          message: `The flow waits for your approval of ${waiting.tool} (request ${waiting.approvalId}); decide it in Switchboard, then continue`,
          url: `${publicUrl}/#/flows/${flowId}/executions/${executionId}`,
        }),
      },
      requestState: JSON.stringify({ executionId, seq }),
    });
  });
  return server;
}

let modernSdk: Promise<ModernSdk> | undefined;

/** The 2026-07-28 era's MCP SDK, loaded at the first MCP request. */
function loadModernSdk(): Promise<ModernSdk> {
  modernSdk ??= import('@modelcontextprotocol/server');
  return modernSdk;
}

/**
 * An Express request as the web request the 2026-07-28 SDK reads: its URL, headers and (already
 * parsed) body; its signal aborts when the client leaves.
 */
function webRequest(req: Request, res: Response): globalThis.Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'content-length' || name === 'host') continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  const left = new AbortController();
  res.on('close', () => left.abort());
  return new globalThis.Request(new URL(req.originalUrl, `http://${req.headers.host ?? 'localhost'}`), {
    method: req.method,
    headers,
    body: JSON.stringify(req.body),
    signal: left.signal,
  });
}

/** Writes a web response (a JSON body or an event stream) to the Express response, chunk by chunk. */
async function sendResponse(response: globalThis.Response, res: Response): Promise<void> {
  res.status(response.status);
  response.headers.forEach((value, name) => res.setHeader(name, value));
  if (!response.body) return void res.end();
  res.flushHeaders();
  const reader = response.body.getReader();
  // A client that leaves stops the stream; a stream that fails is the read loop's to answer (below).
  res.on('close', () => void settled(reader.cancel()));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      res.write(value);
    }
    res.end();
  } catch {
    res.destroy();
  }
}

/**
 * The credential of an MCP request: an API key (`Authorization: Bearer sb_live_…` or `X-API-Key`),
 * an OAuth access token (any other bearer), or none.
 */
function credentialOf(req: Request): { apiKey: string } | { token: string } | undefined {
  const header = req.headers.authorization;
  const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
  const key = bearer ?? (typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'].trim() : undefined);
  if (!key) return undefined;
  return isApiKeySecret(key) ? { apiKey: key } : { token: key };
}

/** The 401 of `/mcp`: its `WWW-Authenticate` names the protected-resource metadata, so a client can sign in. */
const challenge = (publicUrl: string, message: string, error?: string) =>
  new AppError(401, 'unauthorized', message, undefined, { 'WWW-Authenticate': bearerChallenge(publicUrl, error) });

/**
 * `/mcp`: the Model Context Protocol over Streamable HTTP, stateless, authenticated by API key.
 * `POST` carries every request; `GET` (a standalone event stream) and `DELETE` (ending a session)
 * have nothing to serve without sessions and answer 405.
 */
export function mcpRouter(ctx: McpPorts, version: string, verifyToken: (token: string) => Promise<OAuthAccess | null>): Router {
  const router = express.Router();
  // Browser pages of other origins are refused before anything else is read (DNS rebinding included).
  const allowedOrigins = mcpAllowedOrigins(ctx.config.oauth.publicUrl, ctx.config.cors.origins);
  router.use(mcpOriginGuard(allowedOrigins));
  router.use(jsonBody(ctx.config.http.bodyLimit, 'application/json'));
  router.use(rejectNulCharacters);
  /** Who each modern request's server serves: the factory the SDK calls gets the web request. */
  const modernRequests = new WeakMap<globalThis.Request, { caller: McpCaller; revoked: AbortSignal }>();
  let handler: McpHttpHandler | undefined;
  /** The 2026-07-28 era's handler, made at the first modern request; 2025-era requests never reach it. */
  const modernHandler = (sdk: ModernSdk): McpHttpHandler =>
    (handler ??= sdk.createMcpHandler(
      ({ requestInfo }) => {
        const served = requestInfo && modernRequests.get(requestInfo);
        if (!served) throw new Error('An MCP request reached the modern handler without its caller');
        return modernServerFor(sdk, ctx, served.caller, version, served.revoked);
      },
      { legacy: 'reject', onerror: (error) => ctx.logger.debug({ err: error }, 'mcp request rejected') },
    ));
  router.post('/', async (req: Request, res: Response, next) => {
    try {
      const publicUrl = ctx.config.oauth.publicUrl;
      const credential = credentialOf(req);
      if (!credential) throw challenge(publicUrl, 'The MCP endpoint needs an OAuth access token or an API key: Authorization: Bearer …');
      let caller: McpCaller;
      if ('apiKey' in credential) {
        const keyed = await ctx.tokens.apiKeys?.authenticate(credential.apiKey, req.ip ?? req.socket.remoteAddress ?? 'unknown');
        if (!keyed) throw challenge(publicUrl, 'Invalid, revoked or expired API key', 'invalid_token');
        caller = keyCaller(keyed);
      } else {
        const access = await verifyToken(credential.token);
        const user = access ? await ctx.repos.users.findById(access.userId) : null;
        if (!access || !user)
          throw challenge(publicUrl, 'Invalid, revoked or expired access token, or one for another resource', 'invalid_token');
        caller = tokenCaller(access, { id: user.id, email: user.email, name: user.name, tier: user.tier, role: user.role });
      }
      // Watched until the answer closes: a revoke of the key or the OAuth grant, or the user's deletion,
      // on any node ends the request's handlers (a revocation announced since the credential was read fires at once).
      const revocation = new AbortController();
      const watched = caller.watched;
      const watcher = { revoked: () => revocation.abort() };
      ctx.revocations.watch(watched, watcher);
      const unwatch = () => ctx.revocations.unwatch(watched, watcher);
      if (res.closed) unwatch();
      else res.on('close', unwatch);
      const modern = await loadModernSdk();
      const request = webRequest(req, res);
      // The era is the request's: a 2026-07-28 request carries its protocol version in `_meta` (and the
      // `MCP-Protocol-Version` header); a request without it, `initialize` included, is of the 2025-11-25 era.
      if (!(await modern.isLegacyRequest(request, req.body))) {
        modernRequests.set(request, { caller, revoked: revocation.signal });
        return await sendResponse(await modernHandler(modern).fetch(request, { parsedBody: req.body }), res);
      }
      const sdk = await loadServerSdk();
      const server = legacyServerFor(sdk, ctx, caller, version, revocation.signal);
      // The transport refuses the same origins itself, should this router ever be mounted without its guard.
      const transport = new sdk.StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableDnsRebindingProtection: true,
        allowedOrigins,
      });
      const release = () => {
        void transport.close();
        void server.close();
      };
      if (res.closed) release();
      else res.on('close', release);
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

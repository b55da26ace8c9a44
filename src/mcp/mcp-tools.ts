import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { ToolSpec } from '../ai/model-tools';
import type { SecretBox } from '../connectors/secret-box';
import { AppError, badRequest, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { isPrivateAddress, PrivateAddressError } from '../lib/private-address';
import type { Repositories } from '../models';
import type { McpOAuthGrantRow, McpServerRow } from '../models/schema';
import { McpOAuth, McpSignInRequiredError, toMcpOAuthView, type McpOAuthView, type McpSignIn } from './mcp-oauth';
import { MCP_SERVER_NAME_PATTERN, mcpToolName, parseMcpToolName } from './mcp-tool-names';
import { guardedFetch, isRefusedLiteral, ResponseTooLargeError, type OutboundLimits } from './guarded-fetch';
import { stripHidden, toolStatus, type McpToolStatus } from './tool-pins';

/** What an MCP tool call may do: the operator's outbound tool limits (those of HTTP tools). */
export interface McpLimits extends OutboundLimits {
  /** A call (or a listing) that has not answered by then fails. */
  timeoutMs: number;
}

/** A tool name a model provider accepts (the whole qualified name is at most 64 characters). */
const MODEL_TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Characters of a tool's result the model reads at most. */
export const MAX_MCP_RESULT_CHARS = 20_000;
/** Header names a registration may not set: the transport's own. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'accept',
  'connection',
  'mcp-session-id',
  'mcp-protocol-version',
]);

/** `POST /mcp-servers`. */
export const registerMcpServerSchema = z.strictObject({
  name: z
    .string()
    .max(24)
    .regex(MCP_SERVER_NAME_PATTERN, 'lowercase letters and digits, words joined by one _, starting with a letter (1-24)')
    .describe('How tools name the server: `mcp__<name>__<tool>`'),
  url: z
    .url({ protocol: /^https?$/ })
    .max(2_000)
    .describe('The Streamable HTTP endpoint, e.g. https://tools.example.com/mcp'),
  authHeader: z
    .strictObject({
      name: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'an HTTP header name'),
      value: z
        .string()
        .min(1)
        .max(4_000)
        .regex(/^[^\r\n\0]*$/, 'one line'),
    })
    .optional()
    .describe('Sent with every request to the server (e.g. `Authorization: Bearer …`); stored sealed, never returned'),
  allowedTools: z.array(z.string().min(1).max(128)).min(1).max(100).describe('The only tools of the server that are offered'),
  safeTools: z
    .array(z.string().min(1).max(128))
    .max(100)
    .optional()
    .describe('Allowed tools that run without the owner’s approval; every other one is dangerous'),
});

/** A server as its owner sees it: the auth header's name, never its value. */
export interface McpServerView {
  id: string;
  name: string;
  /** Shared by the operators with every user (not removable by a user). */
  shared: boolean;
  url: string;
  authHeader: { name: string; stored: true } | null;
  /** For a server that wants OAuth: how the viewer's own sign-in to it stands (null: it takes no sign-in). */
  oauth: McpOAuthView | null;
  allowedTools: string[];
  safeTools: string[];
  createdAt: string;
}

export const toMcpServerView = (row: McpServerRow, grant?: McpOAuthGrantRow): McpServerView => ({
  id: row.id,
  name: row.name,
  shared: row.userId === null,
  url: row.url,
  authHeader: row.authHeaderName ? { name: row.authHeaderName, stored: true } : null,
  oauth: row.oauth ? toMcpOAuthView(grant) : null,
  allowedTools: row.allowedTools,
  safeTools: row.safeTools,
  createdAt: row.createdAt.toISOString(),
});

/** The tools a node or a turn is offered, and which of them need the owner's approval. */
export interface McpOffer {
  specs: ToolSpec[];
  dangerous: Set<string>;
  /** The offered tools whose server declares them read-only (`readOnlyHint: true`): a tainted turn may still call them. */
  readOnly?: Set<string>;
  /** With a `measure`: the UTF-8 bytes of each offered tool's definition, by its qualified name. */
  bytes?: Map<string, number>;
}

/** How a listing is made: its cancel, and how a worker sizes a tool's definition (as a model call's reservation counts it). */
export interface McpOfferOptions {
  signal?: AbortSignal;
  /** Given, each offered tool is sized, and the sizes are recorded on its server's row when they changed. */
  measure?: (spec: ToolSpec) => number;
}

/** How one MCP tool call ended, for the audit log. */
export type McpCallOutcome =
  'ok' | 'tool_error' | 'unknown_tool' | 'private_address' | 'timeout' | 'too_large' | 'aborted' | 'sign_in_required' | 'failed';

/**
 * MCP servers a user registered, and their tools: offered to agentflow nodes and the assistant as
 * `mcp__<server>__<tool>`, called over Streamable HTTP with the operator's outbound limits (private
 * addresses refused, a deadline, a response cap). The auth header's value is sealed with the OAuth
 * tokens' key, bound to the server's id; it is opened only to make a request. A server that wants
 * OAuth is called with the calling user's own access token ({@link McpOAuth}).
 */
export class McpTools {
  private readonly log: Logger;
  /** Users' OAuth sign-ins to the servers that want one. */
  readonly oauth: McpOAuth;

  constructor(
    private readonly deps: {
      repos: Pick<Repositories, 'mcpServers' | 'mcpOAuth'>;
      box: SecretBox;
      limits: McpLimits;
      /** This deployment's public URL: OAuth sign-ins come back under it. */
      publicUrl: string;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'mcp-client' });
    this.oauth = new McpOAuth({ repos: deps.repos, box: deps.box, limits: deps.limits, publicUrl: deps.publicUrl, logger: deps.logger });
  }

  /**
   * Registers a server for `userId`, or (`null`, an operator's act by `actorId`) one shared with
   * every user: 400 for a private address (unless allowed), credentials in the URL, or safe tools
   * not allowed; 409 a taken name. A server registered without an auth header that answers 401
   * with a Bearer challenge wants OAuth: its sign-in is discovered before anything is written (400
   * `oauth_unsupported` when it cannot be used) and started for `actorId` (`signIn`).
   */
  async register(
    userId: string | null,
    input: z.output<typeof registerMcpServerSchema>,
    actorId = userId!,
  ): Promise<{ server: McpServerView; signIn?: McpSignIn }> {
    const url = new URL(input.url);
    if (url.username || url.password)
      throw badRequest('Put credentials in authHeader, not in the URL', [{ path: 'url', message: 'has a user or password' }]);
    await this.refusePrivate(url);
    if (input.authHeader && RESERVED_HEADERS.has(input.authHeader.name.toLowerCase()))
      throw badRequest('That header is set by the transport', [{ path: 'authHeader.name', message: 'reserved header' }]);
    const allowed = [...new Set(input.allowedTools)];
    const safe = [...new Set(input.safeTools ?? [])];
    const stray = safe.find((tool) => !allowed.includes(tool));
    if (stray) throw badRequest('Every safe tool must be allowed', [{ path: 'safeTools', message: `"${stray}" is not in allowedTools` }]);
    const tooLong = allowed.find((tool) => !MODEL_TOOL_NAME.test(mcpToolName(input.name, tool)));
    if (tooLong)
      throw badRequest('A tool name models cannot use', [
        { path: 'allowedTools', message: `mcp__${input.name}__${tooLong} must be letters, digits, _ and - only, at most 64` },
      ]);
    const challenge = input.authHeader ? null : await this.oauth.probe(url.toString());
    const plan = challenge ? await this.oauth.prepare({ url: url.toString(), name: input.name }, challenge) : undefined;
    const id = randomUUID();
    const created = await this.deps.repos.mcpServers.create(
      {
        id,
        userId,
        name: input.name,
        url: url.toString(),
        authHeaderName: input.authHeader?.name ?? null,
        authHeaderSealed: input.authHeader ? this.deps.box.seal(input.authHeader.value, sealContext(id)) : null,
        allowedTools: allowed,
        safeTools: safe,
        oauth: plan !== undefined,
      },
      {
        actorId,
        action: 'mcp_server.registered',
        targetType: 'mcp_server',
        targetId: id,
        details: { name: input.name, origin: url.origin, shared: userId === null, oauth: plan !== undefined },
      },
    );
    if (created === 'name_taken') throw new AppError(409, 'name_taken', `There already is an MCP server called "${input.name}"`);
    if (created === 'too_many') throw new AppError(409, 'too_many_servers', 'You have registered as many MCP servers as allowed');
    // The registering person signs in now; the tools are pinned once they have (see `signedIn`).
    if (plan) {
      const signIn = await this.oauth.start(created, actorId, plan);
      return { server: toMcpServerView(created, await this.deps.repos.mcpOAuth.get(created.id, actorId)), signIn };
    }
    // The tools as they are now are what the owner registered: their plain definitions are pinned.
    try {
      await this.statuses(created, actorId);
    } catch (error) {
      this.log.warn({ server: created.name, reason: outcomeOf(error, undefined) }, 'MCP server did not list its tools at registration');
    }
    return { server: toMcpServerView(created) };
  }

  /**
   * Starts `userId`'s (new) OAuth sign-in to a server they may use (their own or a shared one):
   * 404 when there is none, 409 `oauth_not_used` when the server takes no sign-in.
   */
  async beginSignIn(userId: string, id: string): Promise<McpSignIn> {
    const server = (await this.deps.repos.mcpServers.usable(userId)).find((row) => row.id === id);
    if (!server) throw notFound('MCP server');
    if (!server.oauth) throw new AppError(409, 'oauth_not_used', `MCP server ${server.name} takes no OAuth sign-in`);
    return this.oauth.begin(server, userId);
  }

  /**
   * Completes a sign-in at its callback (see {@link McpOAuth.complete}), then lists the server's
   * tools as the user now sees them: plain new ones are pinned, as at a registration.
   */
  async completeSignIn(
    query: { code?: string; state?: string; error?: string; iss?: string },
    cookies: Record<string, string>,
  ): Promise<{ mcpServerId: string; name: string }> {
    const { serverId, userId } = await this.oauth.complete(query, cookies);
    const server = (await this.deps.repos.mcpServers.usable(userId)).find((row) => row.id === serverId);
    if (!server) throw notFound('MCP server');
    try {
      await this.statuses(server, userId);
    } catch (error) {
      this.log.warn({ server: server.name, reason: outcomeOf(error, undefined) }, 'MCP server did not list its tools after the sign-in');
    }
    return { mcpServerId: server.id, name: server.name };
  }

  /**
   * The allowed tools of the owner's server (a user's, or `null`: a shared one) as it lists them
   * now, each against its pin; new plain tools are pinned by this listing. 404 when there is no
   * such server, 503 `mcp_unreachable` when it does not answer.
   */
  async tools(userId: string | null, id: string, actorId = userId!): Promise<McpToolStatus[]> {
    return this.statuses(await this.owned(userId, id), actorId);
  }

  /**
   * The owner approves the tools as the server lists them now: every allowed tool's current
   * definition is pinned, flagged or changed ones included (audited). Returns them as they now stand.
   */
  async approveTools(userId: string | null, id: string, actorId = userId!): Promise<McpToolStatus[]> {
    const server = await this.owned(userId, id);
    const listed = await this.statuses(server, actorId);
    const pins = Object.fromEntries(listed.map((tool) => [tool.name, tool.hash]));
    const approved = await this.deps.repos.mcpServers.approveTools(userId, id, pins, {
      actorId,
      action: 'mcp_server.tools_approved',
      targetType: 'mcp_server',
      targetId: id,
      details: { tools: listed.map((tool) => ({ name: tool.name, state: tool.state, flags: tool.flags })) },
    });
    if (!approved) throw notFound('MCP server');
    return listed.map((tool) => ({ ...tool, state: 'pinned' as const, offered: true }));
  }

  private async owned(userId: string | null, id: string): Promise<McpServerRow> {
    const server = await this.deps.repos.mcpServers.get(userId, id);
    if (!server) throw notFound('MCP server');
    return server;
  }

  /** Lists the server's allowed tools (as `asUser` signs in, for an OAuth server) against their pins, and pins the new plain ones. */
  private async statuses(server: McpServerRow, asUser: string, signal?: AbortSignal): Promise<McpToolStatus[]> {
    let listed: Tool[];
    try {
      listed = await this.withClient(server, asUser, signal, async (client, options) => (await client.listTools(undefined, options)).tools);
    } catch (error) {
      throw new AppError(503, 'mcp_unreachable', `MCP server ${server.name} did not list its tools (${outcomeOf(error, signal)})`);
    }
    const statuses = listed.filter((tool) => server.allowedTools.includes(tool.name)).map((tool) => toolStatus(tool, server.toolPins));
    await this.pinNew(server, statuses);
    return statuses;
  }

  /** Pins the tools a listing found new and plain; a pin already held is never replaced here. */
  private async pinNew(server: McpServerRow, statuses: McpToolStatus[]): Promise<void> {
    const fresh = statuses.filter((tool) => tool.state === 'new' && tool.offered);
    if (!fresh.length) return;
    await this.deps.repos.mcpServers.pinTools(server.id, Object.fromEntries(fresh.map((tool) => [tool.name, tool.hash])), 'only_new');
  }

  /** The user's own servers, or (`null`) the shared ones; an OAuth server shows `viewer`'s own sign-in. */
  async list(userId: string | null, viewer = userId): Promise<McpServerView[]> {
    const rows = await this.deps.repos.mcpServers.list(userId);
    const oauth = rows.filter((row) => row.oauth).map((row) => row.id);
    const grants = viewer && oauth.length ? await this.deps.repos.mcpOAuth.ofUser(viewer, oauth) : [];
    return rows.map((row) =>
      toMcpServerView(
        row,
        grants.find((grant) => grant.serverId === row.id),
      ),
    );
  }

  /** Deletes the user's server, or (`null`, by operator `actorId`) a shared one; 404 when there is none. */
  async remove(userId: string | null, id: string, actorId = userId!): Promise<void> {
    const removed = await this.deps.repos.mcpServers.remove(userId, id, {
      actorId,
      action: 'mcp_server.deleted',
      targetType: 'mcp_server',
      targetId: id,
    });
    if (!removed) throw notFound('MCP server');
  }

  /**
   * The tools among `names` (qualified names) that the user's servers allow and still offer, with
   * their input schemas as the servers describe them. A server that cannot be reached offers nothing
   * this time (logged); the model is told of the tools it has.
   */
  async offer(userId: string, names: readonly string[], options: McpOfferOptions = {}): Promise<McpOffer> {
    const { signal, measure } = options;
    const wanted = new Map<string, Set<string>>();
    for (const name of names) {
      const parsed = parseMcpToolName(name);
      if (parsed) wanted.set(parsed.server, (wanted.get(parsed.server) ?? new Set()).add(parsed.tool));
    }
    const offer: McpOffer = { specs: [], dangerous: new Set(), ...(measure ? { bytes: new Map<string, number>() } : {}) };
    if (!wanted.size) return offer;
    const servers = await this.deps.repos.mcpServers.byNames(userId, [...wanted.keys()]);
    await Promise.all(
      servers.map(async (server) => {
        const tools = [...wanted.get(server.name)!].filter((tool) => server.allowedTools.includes(tool));
        if (!tools.length) return;
        try {
          const listed = await this.withClient(
            server,
            userId,
            signal,
            async (client, options) => (await client.listTools(undefined, options)).tools,
          );
          const sizes: Record<string, number> = {};
          const statuses: McpToolStatus[] = [];
          for (const tool of listed.filter((t) => tools.includes(t.name))) {
            const name = mcpToolName(server.name, tool.name);
            const spec = { name, description: describe(server, tool), schema: argsSchema(tool) };
            // Sized offered or not: a held-back tool the owner approves is counted at its real size.
            if (measure) sizes[tool.name] = measure(spec);
            const status = toolStatus(tool, server.toolPins);
            statuses.push(status);
            if (!status.offered) {
              this.log.warn({ server: server.name, tool: tool.name, state: status.state, flags: status.flags }, 'MCP tool held back');
              continue;
            }
            offer.specs.push(spec);
            if (!server.safeTools.includes(tool.name)) offer.dangerous.add(name);
            if (tool.annotations?.readOnlyHint === true) (offer.readOnly ??= new Set()).add(name);
            if (measure) offer.bytes!.set(name, sizes[tool.name]);
          }
          await this.pinNew(server, statuses);
          if (measure) await this.record(server, tools, sizes);
        } catch (error) {
          this.log.warn({ server: server.name, userId, reason: outcomeOf(error, signal) }, 'MCP server did not list its tools');
        }
      }),
    );
    return offer;
  }

  /** Every allowed tool of every server the user may use, theirs and shared (the assistant's offer); no request when there is none. */
  async offerAll(userId: string, options: McpOfferOptions = {}): Promise<McpOffer> {
    const servers = await this.deps.repos.mcpServers.usable(userId);
    if (!servers.length) return { specs: [], dangerous: new Set(), ...(options.measure ? { bytes: new Map<string, number>() } : {}) };
    return this.offer(
      userId,
      servers.flatMap((server) => server.allowedTools.map((tool) => mcpToolName(server.name, tool))),
      options,
    );
  }

  /**
   * The recorded sizes (UTF-8 bytes of the definition, by qualified name) of the tools the user's
   * servers would offer: those among `names`, or (without) every allowed tool of every usable server.
   * A tool no listing has sized yet is missing. One read of the user's servers, no request to them.
   */
  async recordedSizes(userId: string, names?: readonly string[]): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    const wanted = names && new Set(names);
    for (const server of await this.deps.repos.mcpServers.usable(userId)) {
      for (const tool of server.allowedTools) {
        const name = mcpToolName(server.name, tool);
        const bytes = server.toolSizes[tool];
        if ((!wanted || wanted.has(name)) && typeof bytes === 'number') sizes.set(name, bytes);
      }
    }
    return sizes;
  }

  /**
   * Calls one tool: its result as text for the model (cut to {@link MAX_MCP_RESULT_CHARS}), and how
   * it ended. Every failure is `Error: …` text; nothing here throws for a bad server.
   */
  async call(userId: string, name: string, args: unknown, signal?: AbortSignal): Promise<{ text: string; outcome: McpCallOutcome }> {
    const parsed = parseMcpToolName(name);
    const [server] = parsed ? await this.deps.repos.mcpServers.byNames(userId, [parsed.server]) : [];
    if (!parsed || !server || !server.allowedTools.includes(parsed.tool))
      return { text: `Error: there is no tool called "${name}" here.`, outcome: 'unknown_tool' };
    const input = args !== null && typeof args === 'object' && !Array.isArray(args) ? (args as Record<string, unknown>) : {};
    try {
      const result = (await this.withClient(server, userId, signal, (client, options) =>
        client.callTool({ name: parsed.tool, arguments: input }, undefined, options),
      )) as CallToolResult;
      const text = resultText(result);
      return { text: result.isError ? `Error: ${text}` : text, outcome: result.isError ? 'tool_error' : 'ok' };
    } catch (error) {
      const outcome = outcomeOf(error, signal);
      if (outcome === 'failed') this.log.warn({ err: error, server: server.name, tool: parsed.tool }, 'MCP tool call failed');
      return { text: `Error: ${name} ${failureText(outcome, this.deps.limits)}`, outcome };
    }
  }

  /** Records a listing's sizes on the server's row, when they differ from what it holds (a listing that changed nothing writes nothing). */
  private async record(server: McpServerRow, asked: readonly string[], listed: Record<string, number>): Promise<void> {
    const held = server.toolSizes ?? {};
    const gone = asked.filter((tool) => !(tool in listed) && tool in held);
    if (!gone.length && Object.entries(listed).every(([tool, bytes]) => held[tool] === bytes)) return;
    try {
      await this.deps.repos.mcpServers.recordToolSizes(server.id, listed, gone);
    } catch (error) {
      // The sizes only make later reservations exact; this listing's tools are offered all the same.
      this.log.warn({ err: error, server: server.name }, 'MCP tool sizes not recorded');
    }
  }

  /** Whether a server with this URL may be registered: a private address (literal or resolved) only on an allowed origin. */
  private async refusePrivate(url: URL): Promise<void> {
    const refused = () =>
      badRequest('The server is at a private address', [
        { path: 'url', message: `${url.origin} is a private address; an operator allows it by adding it to FLOW_HTTP_PRIVATE_ORIGINS` },
      ]);
    if (isRefusedLiteral(url, this.deps.limits)) throw refused();
    if (this.deps.limits.privateOrigins.includes(url.origin)) return;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const addresses = await lookup(host, { all: true }).catch(() => []);
    if (addresses.some((entry) => isPrivateAddress(entry.address))) throw refused();
  }

  /**
   * Connects to `server` (initialize) as `userId` (their own access token, for an OAuth server),
   * runs `work` and closes, all within the call deadline and `signal`. An OAuth server that refuses
   * the token (401) gets one more try with a refreshed one.
   */
  private async withClient<T>(
    server: McpServerRow,
    userId: string,
    signal: AbortSignal | undefined,
    work: (client: Client, options: { signal: AbortSignal; timeout: number }) => Promise<T>,
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (server.authHeaderName && server.authHeaderSealed)
      headers[server.authHeaderName] = this.deps.box.open(server.authHeaderSealed, sealContext(server.id)).plaintext;
    if (!server.oauth) return this.connected(server, headers, signal, work);
    const token = await this.oauth.accessToken(server, userId);
    try {
      return await this.connected(server, { ...headers, Authorization: `Bearer ${token}` }, signal, work);
    } catch (error) {
      if (!isUnauthorized(error)) throw error;
      const fresh = await this.oauth.accessToken(server, userId, token);
      return this.connected(server, { ...headers, Authorization: `Bearer ${fresh}` }, signal, work);
    }
  }

  private async connected<T>(
    server: McpServerRow,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    work: (client: Client, options: { signal: AbortSignal; timeout: number }) => Promise<T>,
  ): Promise<T> {
    const { limits } = this.deps;
    const deadline = AbortSignal.timeout(limits.timeoutMs);
    // A response over the cap ends the call at once, whichever request of it (and stream) it was.
    const capped = new AbortController();
    const stop = AbortSignal.any([deadline, capped.signal, ...(signal ? [signal] : [])]);
    const { Client, StreamableHTTPClientTransport } = await loadClientSdk();
    const transport = new StreamableHTTPClientTransport(new URL(server.url), {
      fetch: guardedFetch(limits, (error) => capped.abort(error)),
      requestInit: { headers, signal: stop },
      reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1_000, maxReconnectionDelay: 1_000, reconnectionDelayGrowFactor: 1 },
    });
    const client = new Client({ name: 'switchboard', version: '1' });
    const options = { signal: stop, timeout: limits.timeoutMs };
    try {
      await client.connect(transport, options);
      return await work(client, options);
    } catch (error) {
      // Which stop ended it, whatever the SDK wrapped the abort in.
      if (capped.signal.aborted) throw capped.signal.reason as Error;
      if (deadline.aborted && !signal?.aborted) throw new McpTimeoutError(limits.timeoutMs, error);
      throw error;
    } finally {
      await client.close().catch((error: unknown) => this.log.debug({ err: error, server: server.name }, 'MCP client not closed cleanly'));
    }
  }
}

/** Whether the server refused the request's credentials (HTTP 401), whatever the SDK wrapped it in. */
function isUnauthorized(error: unknown): boolean {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++)
    if ((cause as { code?: unknown }).code === 401) return true;
  return false;
}

const sealContext = (id: string) => `mcp_server:${id}`;

let clientSdk: Promise<ClientSdk> | undefined;
type ClientSdk = typeof import('@modelcontextprotocol/sdk/client/index.js') &
  typeof import('@modelcontextprotocol/sdk/client/streamableHttp.js');

/** The MCP SDK's client, loaded at the first call to a server: a process that makes none never loads it. */
function loadClientSdk(): Promise<ClientSdk> {
  clientSdk ??= Promise.all([
    import('@modelcontextprotocol/sdk/client/index.js'),
    import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
  ]).then(([client, transport]) => ({ ...client, ...transport }));
  return clientSdk;
}

/** A listing or call that did not answer within the operator's deadline. */
class McpTimeoutError extends Error {
  constructor(timeoutMs: number, cause: unknown) {
    super(`no answer within ${timeoutMs} ms`, { cause });
    this.name = 'TimeoutError';
  }
}

/** A tool's description for the model: the server's words without hidden text, and which server it is. */
const describe = (server: McpServerRow, tool: Tool) =>
  `${stripHidden(tool.description ?? tool.title ?? tool.name).slice(0, 1_000)} (MCP server ${server.name})`;

/** The tool's input schema as zod (what the model is shown); an object that takes anything when it cannot be read. */
function argsSchema(tool: Tool): z.ZodObject {
  try {
    const schema = z.fromJSONSchema(tool.inputSchema as Parameters<typeof z.fromJSONSchema>[0]);
    if (schema instanceof z.ZodObject) return schema;
  } catch {
    // A schema zod cannot read: the model gets an open object and the server checks the arguments.
  }
  return z.looseObject({});
}

/** A result's content as text: text parts as they are, other parts named; structured content as JSON. */
function resultText(result: CallToolResult): string {
  const parts = (result.content ?? []).map((part) => {
    if (part.type === 'text') return part.text;
    if (part.type === 'resource') return 'text' in part.resource ? String(part.resource.text) : `[resource ${part.resource.uri}]`;
    if (part.type === 'resource_link') return `[resource ${part.uri}]`;
    return `[${part.type} ${'mimeType' in part ? part.mimeType : ''}]`.replace(' ]', ']');
  });
  if (!parts.length && result.structuredContent) parts.push(JSON.stringify(result.structuredContent));
  const text = parts.join('\n');
  return text.length > MAX_MCP_RESULT_CHARS ? `${text.slice(0, MAX_MCP_RESULT_CHARS)}\n[result truncated]` : text;
}

/** How a failed request ended. */
function outcomeOf(error: unknown, signal: AbortSignal | undefined): McpCallOutcome {
  if (signal?.aborted) return 'aborted';
  const chain: unknown[] = [];
  for (let cause = error; cause instanceof Error && chain.length < 5; cause = cause.cause) chain.push(cause);
  if (chain.some((cause) => cause instanceof PrivateAddressError)) return 'private_address';
  if (chain.some((cause) => cause instanceof McpSignInRequiredError)) return 'sign_in_required';
  if (chain.some((cause) => cause instanceof ResponseTooLargeError)) return 'too_large';
  if (chain.some((cause) => cause instanceof Error && (cause.name === 'TimeoutError' || /timed out|timeout/i.test(cause.message))))
    return 'timeout';
  return 'failed';
}

function failureText(outcome: McpCallOutcome, limits: McpLimits): string {
  switch (outcome) {
    case 'private_address':
      return 'could not run: its server is at a private address.';
    case 'too_large':
      return `failed: its server answered more than ${limits.maxResponseBytes} bytes.`;
    case 'timeout':
      return `did not answer within ${limits.timeoutMs} ms.`;
    case 'aborted':
      return 'was cancelled.';
    case 'sign_in_required':
      return 'could not run: its server wants its owner to sign in (again) in Switchboard first.';
    default:
      return 'failed: its server could not be reached or did not answer as MCP.';
  }
}

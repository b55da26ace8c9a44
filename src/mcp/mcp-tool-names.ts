/** How MCP tools are named where models and flow definitions see them; no SDK needed to read a name. */

/** Every MCP tool a model sees is named `mcp__<server>__<tool>`. */
export const MCP_TOOL_PREFIX = 'mcp__';
/** A server's name: lowercase letters and digits in words joined by one `_` (no `__`, which separates it from the tool). */
export const MCP_SERVER_NAME_PATTERN = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
export const mcpToolName = (server: string, tool: string) => `${MCP_TOOL_PREFIX}${server}__${tool}`;

/** `mcp__<server>__<tool>` as its parts, or undefined for any other name. */
export function parseMcpToolName(name: string): { server: string; tool: string } | undefined {
  if (!name.startsWith(MCP_TOOL_PREFIX)) return undefined;
  const rest = name.slice(MCP_TOOL_PREFIX.length);
  const at = rest.indexOf('__');
  if (at <= 0) return undefined;
  const server = rest.slice(0, at);
  const tool = rest.slice(at + 2);
  return MCP_SERVER_NAME_PATTERN.test(server) && tool ? { server, tool } : undefined;
}

export const isMcpToolName = (name: string): boolean => parseMcpToolName(name) !== undefined;

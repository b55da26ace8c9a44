import { isMcpToolName, mcpToolName, parseMcpToolName } from '../../src/mcp/mcp-tool-names';

/** MCP tools are `mcp__<server>__<tool>`: a server name holds no `__`, so a name splits one way only. */
describe('MCP tool names', () => {
  test('a qualified name splits into its server and tool, the tool keeping its own underscores', () => {
    expect(parseMcpToolName('mcp__shop__lookup_order')).toEqual({ server: 'shop', tool: 'lookup_order' });
    expect(parseMcpToolName('mcp__my_shop__get__all')).toEqual({ server: 'my_shop', tool: 'get__all' });
    expect(parseMcpToolName(mcpToolName('crm2', 'find-contact'))).toEqual({ server: 'crm2', tool: 'find-contact' });
  });

  test.each(['list_tasks', 'mcp__', 'mcp____tool', 'mcp__shop__', 'mcp__Shop__x', 'mcp___shop__x', 'mcp__1shop__x', 'MCP__shop__x'])(
    '%s is not an MCP tool name',
    (name) => {
      expect(isMcpToolName(name)).toBe(false);
    },
  );
});

import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import express from 'express';

/**
 * A stateless Streamable HTTP MCP server at `<origin>/mcp` on 127.0.0.1, served by the SDK: each
 * request gets a fresh server on which `register` declares the tools, so a test can change what
 * is listed between requests. With `accepts`, a request whose headers it refuses is 401 (a server
 * that wants an auth header). `close` ends it and its connections.
 */
export async function serveMcpTools(
  name: string,
  register: (server: McpServer) => void,
  options: { accepts?(headers: IncomingHttpHeaders): boolean } = {},
) {
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.post('/mcp', async (req, res) => {
    if (options.accepts && !options.accepts(req.headers)) return void res.status(401).json({ error: 'no key' });
    const server = new McpServer({ name, version: '1.0.0' });
    register(server);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  const http: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return {
    origin,
    url: `${origin}/mcp`,
    close: () => {
      http.closeAllConnections();
      return new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

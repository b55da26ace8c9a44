import { mcpAllowedOrigins } from '../../src/http/middleware/mcp-origin';

/** The browser origins `/mcp` answers: this deployment's public origin and CORS_ORIGINS, nothing from the request. */
describe('MCP allowed origins', () => {
  test('the public URL counts by its origin alone: path and trailing slash dropped, default port folded', () => {
    expect(mcpAllowedOrigins('https://switchboard.example.com/base/', [])).toEqual(['https://switchboard.example.com']);
    expect(mcpAllowedOrigins('https://switchboard.example.com:443', [])).toEqual(['https://switchboard.example.com']);
    expect(mcpAllowedOrigins('http://127.0.0.1:3000', [])).toEqual(['http://127.0.0.1:3000']);
  });

  test('CORS_ORIGINS are added once each, after the public origin', () => {
    expect(mcpAllowedOrigins('https://sb.example.com', ['https://app.example.com', 'https://sb.example.com'])).toEqual([
      'https://sb.example.com',
      'https://app.example.com',
    ]);
  });
});

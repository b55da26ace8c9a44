import type { NextFunction, Request, Response } from 'express';

/**
 * The browser origins the MCP endpoint answers: this server's own public origin (the origin of
 * `publicUrl`) and the API's browser origins (`CORS_ORIGINS`). The request's `Host` plays no part:
 * a page that rebinds its own name to this server sends that name as both `Host` and `Origin`.
 */
export function mcpAllowedOrigins(publicUrl: string, corsOrigins: readonly string[]): string[] {
  return [...new Set([new URL(publicUrl).origin, ...corsOrigins])];
}

/**
 * Refuses a request whose `Origin` is not one of `allowed` with 403 and a JSON-RPC error (`id`
 * null, as the MCP transport answers a request it will not read), before its key is checked or its
 * body read: a web page (a foreign site, a sandboxed `null` origin, or a DNS-rebinding name that
 * resolves to this server) cannot drive a user's tools. A request without `Origin` is not from a
 * browser page (a server-side client, a CLI, an IDE) and passes: its API key is all that counts.
 */
export function mcpOriginGuard(allowed: readonly string[]) {
  const origins = new Set(allowed);
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.headers.origin;
    if (origin === undefined || origins.has(origin)) return next();
    res.status(403).json({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32000,
        message: 'origin_not_allowed: This Origin may not call the MCP endpoint (allowed: PUBLIC_URL and CORS_ORIGINS)',
        data: { status: 403 },
      },
    });
  };
}

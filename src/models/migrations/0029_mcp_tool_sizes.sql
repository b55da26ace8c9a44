-- The size of each allowed tool's definition as the server last listed it (UTF-8 bytes of the
-- definition a model call sends, by tool name): a request counts them into the budget reservation
-- of its first model call before anything is written. Recorded by the worker that lists the tools.
ALTER TABLE mcp_servers ADD COLUMN tool_sizes jsonb NOT NULL DEFAULT '{}'::jsonb;

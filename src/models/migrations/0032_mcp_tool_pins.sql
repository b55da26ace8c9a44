-- The hash of each tool's definition (name, description, input schema) as it was when the server
-- was registered or its owner approved its tools, by tool name. A listing whose hash differs does
-- not offer that tool to a model until the owner approves it again.
ALTER TABLE mcp_servers ADD COLUMN tool_pins jsonb NOT NULL DEFAULT '{}'::jsonb;

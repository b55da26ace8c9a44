-- MCP servers a user registered (or, with no user, an operator shared with every user): their
-- tools become tools of the agentflow nodes and assistant of the user (of every user). The auth header's value is stored only sealed (AES-256-GCM, bound to the row's id),
-- like OAuth tokens; `allowed_tools` are the only tools offered, `safe_tools` the ones that run
-- without the owner's approval (every other one is dangerous).
CREATE TABLE IF NOT EXISTS mcp_servers (
  id uuid PRIMARY KEY,
  user_id uuid REFERENCES users(id) ON DELETE CASCADE,
  name text NOT NULL,
  url text NOT NULL,
  auth_header_name text,
  auth_header_sealed text,
  allowed_tools text[] NOT NULL,
  safe_tools text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT mcp_servers_user_name_key UNIQUE (user_id, name)
);
--> statement-breakpoint
-- Shared servers (no user) have unique names too: NULLs are distinct in the constraint above.
CREATE UNIQUE INDEX IF NOT EXISTS mcp_servers_shared_name_key ON mcp_servers (name) WHERE user_id IS NULL;

-- An MCP server that answered its registration with 401 and a Bearer `WWW-Authenticate` challenge
-- is signed in to with OAuth: each user who uses it signs in with their own account there.
ALTER TABLE mcp_servers ADD COLUMN IF NOT EXISTS oauth boolean NOT NULL DEFAULT false;
--> statement-breakpoint
-- One user's OAuth sign-in to one MCP server. `sealed` holds the client registration, the
-- authorization server's metadata, the PKCE verifier of a sign-in under way and the tokens, as one
-- AES-256-GCM sealed JSON document bound to the server and the user (another user's row never
-- opens under one's own). `state_hash` (sha256 of the authorization request's `state`) and
-- `binding_hash` (sha256 of the browser binding cookie) name a sign-in under way, until
-- `state_expires_at`; a callback consumes them once. `status`: `pending` (never signed in),
-- `signed_in`, or `sign_in_required` (the refresh token was refused: sign in again).
CREATE TABLE IF NOT EXISTS mcp_oauth_grants (
  server_id uuid NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  status text NOT NULL,
  sealed text NOT NULL,
  state_hash text,
  binding_hash text,
  state_expires_at timestamptz,
  expires_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (server_id, user_id)
);
--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS mcp_oauth_grants_state_key ON mcp_oauth_grants (state_hash) WHERE state_hash IS NOT NULL;

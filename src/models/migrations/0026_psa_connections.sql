-- A user's PSA (ConnectWise-Manage-style) connection: where resolved sessions' ticket notes are
-- pushed. The credentials are one AES-256-GCM sealed JSON value (key_id names the key that sealed
-- it), never stored or answered in clear.
CREATE TABLE psa_connections (
  user_id uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  provider text NOT NULL CHECK (provider IN ('connectwise')),
  base_url text NOT NULL,
  company_id text NOT NULL,
  client_id text,
  member_identifier text,
  auth_type text NOT NULL CHECK (auth_type IN ('member_keys', 'api_key')),
  key_id text NOT NULL,
  ciphertext text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
-- The PSA ticket a session's notes go to, and how the last push went.
ALTER TABLE chat_sessions
  ADD COLUMN psa_ticket_id text,
  ADD COLUMN psa_push_status text CHECK (psa_push_status IN ('sent', 'pending_retry', 'no_psa', 'failed')),
  ADD COLUMN psa_push_error text,
  ADD COLUMN member_mapping_warning text;

-- Assistant chat: one session per conversation, owned by one user and bound to the device
-- its tools run on; every message of it in order (user, assistant and tool results).
CREATE TABLE chat_sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  device_id text,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'resolved', 'escalated', 'paused')),
  title text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX chat_sessions_user_idx ON chat_sessions (user_id, updated_at);
--> statement-breakpoint
CREATE TABLE chat_messages (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Insertion order: created_at ties within one transaction, seq never does.
  seq bigserial NOT NULL,
  session_id uuid NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
  content text NOT NULL,
  -- For assistant and tool messages: the user message of the turn they belong to.
  reply_to uuid,
  tool_name text,
  provider text,
  model text,
  input_tokens integer NOT NULL DEFAULT 0,
  output_tokens integer NOT NULL DEFAULT 0,
  cost_usd double precision NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX chat_messages_session_idx ON chat_messages (session_id, seq);

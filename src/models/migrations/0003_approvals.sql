-- Approvals (decision 0021): a dangerous assistant tool call waits for its user's decision.
-- The row also keeps the parked turn's continuation (the conversation so far and the calls left in
-- the round), so the turn resumes on any worker, after any restart, without holding a worker slot.
CREATE TABLE hitl_requests (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  session_id uuid NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,
  -- The user message of the parked turn and the device its tools run on.
  message_id uuid NOT NULL,
  device_id text NOT NULL,
  tool_name text NOT NULL,
  parameters jsonb NOT NULL,
  reason text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'timeout')),
  continuation jsonb NOT NULL,
  expires_at timestamptz NOT NULL,
  decided_at timestamptz,
  decided_by uuid,
  created_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX hitl_requests_user_idx ON hitl_requests (user_id, created_at);
--> statement-breakpoint
CREATE INDEX hitl_requests_pending_idx ON hitl_requests (expires_at) WHERE status = 'pending';

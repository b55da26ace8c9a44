-- Flows: saved chatflows and agentflows, and the executions of agentflows with
-- one row per node. A node's completion is committed here before anything it unblocks is dispatched,
-- so a worker that dies afterwards never makes a finished node run again (decision 0115).
CREATE TABLE flows (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  type text NOT NULL CHECK (type IN ('chatflow', 'agentflow')),
  name text NOT NULL,
  definition jsonb NOT NULL,
  -- Milliseconds, as the list cursors carry them (an ISO timestamp): no row falls between pages.
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
-- GET /flows: the owner's flows, newest first, keyset-paginated on (created_at, id).
CREATE INDEX flows_user_recent_idx ON flows (user_id, created_at DESC, id DESC);
--> statement-breakpoint
-- Chat sessions of a chatflow (`flowId`, the column added by 0006): found by flow.
CREATE INDEX chat_sessions_flow_idx ON chat_sessions (flow_id) WHERE flow_id IS NOT NULL;
--> statement-breakpoint
CREATE TABLE flow_executions (
  id uuid PRIMARY KEY,
  flow_id uuid NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  -- The definition as it was when the execution started: a PATCH of the flow never changes a run.
  definition jsonb NOT NULL,
  input jsonb NOT NULL,
  output jsonb,
  error_code text,
  error_message text,
  -- The tier at execute time (usage metrics are labelled by it).
  tier text NOT NULL DEFAULT 'free',
  input_tokens integer NOT NULL DEFAULT 0,
  output_tokens integer NOT NULL DEFAULT 0,
  cost_usd double precision NOT NULL DEFAULT 0,
  cancel_requested_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  started_at timestamptz,
  completed_at timestamptz
);
--> statement-breakpoint
-- GET /flows/:id/executions: newest first, keyset-paginated on (created_at, id).
CREATE INDEX flow_executions_flow_recent_idx ON flow_executions (flow_id, created_at DESC, id DESC);
--> statement-breakpoint
-- The reaper's scan: executions still open.
CREATE INDEX flow_executions_open_idx ON flow_executions (created_at) WHERE status IN ('queued', 'running');
--> statement-breakpoint
CREATE TABLE flow_execution_nodes (
  execution_id uuid NOT NULL REFERENCES flow_executions(id) ON DELETE CASCADE,
  node_id text NOT NULL,
  -- Definition order, so a node list reads as the flow was written.
  position integer NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped', 'cancelled')),
  output jsonb,
  error_code text,
  error_message text,
  attempts integer NOT NULL DEFAULT 0,
  provider text,
  model text,
  input_tokens integer NOT NULL DEFAULT 0,
  output_tokens integer NOT NULL DEFAULT 0,
  cost_usd double precision NOT NULL DEFAULT 0,
  started_at timestamptz,
  completed_at timestamptz,
  -- When its terminal event (node_completed / node_failed) was written: a retry of a job whose
  -- worker died between the commit and the event writes it then, and only then.
  announced_at timestamptz,
  PRIMARY KEY (execution_id, node_id)
);

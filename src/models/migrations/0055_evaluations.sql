-- Evaluations of agentflows. A dataset is a user's rows of inputs and expected outputs (uploaded,
-- or copied from past executions); an evaluation runs a dataset against one or several versions of
-- one flow, each (version, row) pair a normal flow execution, and scores each answer. A result row
-- is claimed (`running`, with the id of the execution it starts) before the execution is started,
-- and scored by one conditional UPDATE: a worker killed anywhere in between neither loses the row
-- nor counts it twice. Totals are always computed from the result rows, never kept as counters.
CREATE TABLE IF NOT EXISTS eval_datasets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name text NOT NULL,
  source text NOT NULL CHECK (source IN ('upload', 'executions')),
  row_count integer NOT NULL,
  bytes integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS eval_datasets_user_idx ON eval_datasets (user_id, created_at DESC, id DESC);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS eval_dataset_rows (
  dataset_id uuid NOT NULL REFERENCES eval_datasets(id) ON DELETE CASCADE,
  position integer NOT NULL,
  input jsonb NOT NULL,
  expected jsonb,
  PRIMARY KEY (dataset_id, position)
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS evaluations (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  flow_id uuid NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
  dataset_id uuid NOT NULL REFERENCES eval_datasets(id) ON DELETE CASCADE,
  versions integer[] NOT NULL,
  scorers jsonb NOT NULL,
  tier text NOT NULL DEFAULT 'free',
  concurrency integer NOT NULL,
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
  error_code text,
  error_message text,
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS evaluations_user_idx ON evaluations (user_id, created_at DESC, id DESC);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS evaluations_running_idx ON evaluations (created_at) WHERE status = 'running';
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS evaluation_results (
  evaluation_id uuid NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
  version integer NOT NULL,
  position integer NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'scored', 'failed', 'cancelled')),
  execution_id uuid UNIQUE,
  claimed_at timestamptz,
  output jsonb,
  scores jsonb,
  score double precision,
  input_tokens integer NOT NULL DEFAULT 0,
  output_tokens integer NOT NULL DEFAULT 0,
  cost_usd double precision NOT NULL DEFAULT 0,
  judge_cost_usd double precision NOT NULL DEFAULT 0,
  latency_ms integer,
  error_code text,
  error_message text,
  completed_at timestamptz,
  PRIMARY KEY (evaluation_id, version, position)
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS evaluation_results_status_idx ON evaluation_results (evaluation_id, status);

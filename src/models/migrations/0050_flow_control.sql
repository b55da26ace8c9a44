-- Control flow in agentflows. A subflow node runs another agentflow of the same owner as a child
-- execution: the child names its parent execution and node (a cancel of the parent cascades to it),
-- and its depth bounds nesting. A foreach node runs one item job per element of its list, a loop one
-- per iteration: each is a row here, committed before the next is queued, so a worker killed in the
-- middle never makes a finished item call the model again.
ALTER TABLE flow_executions ADD COLUMN IF NOT EXISTS parent_execution_id uuid REFERENCES flow_executions(id) ON DELETE SET NULL;
--> statement-breakpoint
ALTER TABLE flow_executions ADD COLUMN IF NOT EXISTS parent_node_id text;
--> statement-breakpoint
ALTER TABLE flow_executions ADD COLUMN IF NOT EXISTS depth integer NOT NULL DEFAULT 0;
--> statement-breakpoint
-- One child per subflow node of an execution: a re-run node job finds the child it started.
CREATE UNIQUE INDEX IF NOT EXISTS flow_executions_parent_node_idx ON flow_executions (parent_execution_id, parent_node_id)
  WHERE parent_execution_id IS NOT NULL;
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS flow_execution_items (
  execution_id uuid NOT NULL REFERENCES flow_executions(id) ON DELETE CASCADE,
  node_id text NOT NULL,
  -- The element's position in the foreach's list, or the loop's iteration from 0.
  item_index integer NOT NULL,
  -- pending: not yet queued (the concurrency cap); queued: its job is on the queue.
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'queued', 'running', 'completed', 'failed')),
  input jsonb,
  output jsonb,
  error_code text,
  attempts integer NOT NULL DEFAULT 0,
  input_tokens integer NOT NULL DEFAULT 0,
  output_tokens integer NOT NULL DEFAULT 0,
  cost_usd double precision NOT NULL DEFAULT 0,
  started_at timestamptz,
  completed_at timestamptz,
  PRIMARY KEY (execution_id, node_id, item_index)
);

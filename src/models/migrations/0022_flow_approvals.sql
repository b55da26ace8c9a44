-- An approval request belongs to a chat session (an assistant turn) or to an agentflow execution (a
-- node's dangerous device tool call), never both: deleting either removes its requests.
ALTER TABLE hitl_requests ALTER COLUMN session_id DROP NOT NULL;
--> statement-breakpoint
ALTER TABLE hitl_requests ADD COLUMN IF NOT EXISTS execution_id uuid REFERENCES flow_executions(id) ON DELETE CASCADE;
--> statement-breakpoint
ALTER TABLE hitl_requests ADD CONSTRAINT hitl_requests_owner_check CHECK ((session_id IS NULL) <> (execution_id IS NULL));

-- Replays and lanes of agentflow executions. A replay is a new execution that starts from one node
-- of an ended execution: the nodes it reuses are written `completed` (or `skipped`) with the
-- source's outputs, no attempt and no cost, marked `reused`, and it names its source execution and
-- node. An execution's lane is kept on its row, so every job queued for it later (foreach and loop
-- items, approval resumes, a subflow's notice, the reaper's) waits in the lane it started in.
ALTER TABLE flow_executions ADD COLUMN IF NOT EXISTS lane text CHECK (lane IN ('evaluation'));
--> statement-breakpoint
ALTER TABLE flow_executions ADD COLUMN IF NOT EXISTS replay_of uuid REFERENCES flow_executions(id) ON DELETE SET NULL;
--> statement-breakpoint
ALTER TABLE flow_executions ADD COLUMN IF NOT EXISTS replay_from text;
--> statement-breakpoint
ALTER TABLE flow_execution_nodes ADD COLUMN IF NOT EXISTS reused boolean NOT NULL DEFAULT false;
--> statement-breakpoint
-- Evaluations' executions still open when this runs keep their lane.
UPDATE flow_executions e SET lane = 'evaluation'
  FROM evaluation_results r
  WHERE r.execution_id = e.id AND e.status IN ('queued', 'running');

-- A manual agent run is listed from the moment it is asked for: its row is written `queued` with
-- the request, and the worker that takes its job moves it to `running`.
ALTER TABLE agent_runs DROP CONSTRAINT IF EXISTS agent_runs_status_check;
--> statement-breakpoint
ALTER TABLE agent_runs ADD CONSTRAINT agent_runs_status_check
  CHECK (status IN ('queued', 'running', 'success', 'error', 'partial', 'waiting_device', 'cancelled'));

-- Agent runs can be cancelled (decision 0206): `cancelled` is a terminal status beside success,
-- error and partial, and `cancel_requested_at` records that the owner asked while a worker held the
-- run, so a run whose worker died still ends as cancelled when it is swept up.
ALTER TABLE agent_runs DROP CONSTRAINT IF EXISTS agent_runs_status_check;
--> statement-breakpoint
ALTER TABLE agent_runs ADD CONSTRAINT agent_runs_status_check
  CHECK (status IN ('running', 'success', 'error', 'partial', 'waiting_device', 'cancelled'));
--> statement-breakpoint
ALTER TABLE agent_runs ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz;

-- Waiting is a run state (decision 0490): a run parked on what it awaits (a person's approval or
-- input, a device coming online, a deadline, another run) is `waiting`; no worker holds it. The
-- completion that leaves it nothing pending moves it back to `queued` and its kind queues its job.
ALTER TABLE runs DROP CONSTRAINT IF EXISTS runs_status_check;
--> statement-breakpoint
ALTER TABLE runs ADD CONSTRAINT runs_status_check
  CHECK (status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled', 'timed_out'));
--> statement-breakpoint
-- One row per thing a run awaits. `pending` until its one completion (a conditional UPDATE: the
-- first wins), which keeps the output. The run it blocks is (run_kind, run_id); user_id is its
-- owner, the only user who may complete it. A deadline keeps its time in complete_after.
CREATE TABLE IF NOT EXISTS waitpoints (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind text NOT NULL CHECK (kind IN ('approval', 'input', 'device', 'deadline', 'run')),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed')),
  user_id uuid NOT NULL,
  run_kind text NOT NULL,
  run_id uuid NOT NULL,
  idempotency_key text NOT NULL,
  ref text,
  complete_after timestamptz,
  output jsonb,
  completed_at timestamptz,
  completed_by uuid,
  -- When the run went on past it: each completed waitpoint is handed to one continuation.
  released_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (run_kind, run_id) REFERENCES runs (kind, id) ON DELETE CASCADE
);
--> statement-breakpoint
-- The same key (per owner) names the same waitpoint: a second create returns the first.
CREATE UNIQUE INDEX IF NOT EXISTS waitpoints_idempotency ON waitpoints (user_id, idempotency_key);
--> statement-breakpoint
-- What still blocks a run.
CREATE INDEX IF NOT EXISTS waitpoints_pending_by_run ON waitpoints (run_kind, run_id) WHERE status = 'pending';
--> statement-breakpoint
-- Deadlines recovery completes when their delayed job was lost.
CREATE INDEX IF NOT EXISTS waitpoints_pending_deadlines ON waitpoints (complete_after) WHERE status = 'pending' AND complete_after IS NOT NULL;

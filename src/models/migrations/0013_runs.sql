-- One row per run of any kind (decision 0201): a generation, a chat turn (keyed by its user
-- message), a session's ticket notes (keyed by the session), a flow execution, an agent run, a
-- journey turn. The row is the truth about where a run is: queued → running → succeeded | failed |
-- cancelled | timed_out, each move a conditional UPDATE, so exactly one process ends a run. Each
-- kind keeps its own table and public statuses beside it. `queue` + `job_id` name the BullMQ job
-- that carries the run, so whether it can still run is asked the same way for every kind.
CREATE TABLE IF NOT EXISTS runs (
  kind text NOT NULL CHECK (kind IN ('generation', 'chat', 'notes', 'flow', 'agent', 'journey')),
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
  queue text,
  job_id text,
  cancel_requested_at timestamptz,
  cancel_requested_by uuid,
  error_code text,
  error_message text,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  ended_at timestamptz,
  PRIMARY KEY (kind, id)
);
--> statement-breakpoint
-- The reaper's candidates: runs not yet ended, oldest first.
CREATE INDEX IF NOT EXISTS runs_open_by_created ON runs (created_at) WHERE status IN ('queued', 'running');
--> statement-breakpoint
-- Generations still open when this migration runs get their run, so cancel and the reaper reach them.
INSERT INTO runs (kind, id, user_id, status, queue, job_id, cancel_requested_at, created_at, started_at)
SELECT 'generation', id, user_id, status, 'generation', id::text, cancel_requested_at, created_at, started_at
FROM generations WHERE status IN ('queued', 'running')
ON CONFLICT DO NOTHING;
--> statement-breakpoint
-- Ticket notes still pending or being written get their run (keyed by the session) likewise.
INSERT INTO runs (kind, id, user_id, status, queue, job_id, created_at)
SELECT 'notes', id, user_id, CASE WHEN documentation_status = 'generating' THEN 'running' ELSE 'queued' END, 'assistant', 'notes-' || id::text, updated_at
FROM chat_sessions WHERE documentation_status IN ('pending', 'generating')
ON CONFLICT DO NOTHING;
--> statement-breakpoint
-- Flow executions still open likewise (carried by one job per node: no single job id).
INSERT INTO runs (kind, id, user_id, status, queue, cancel_requested_at, created_at, started_at)
SELECT 'flow', id, user_id, status, 'flows', cancel_requested_at, created_at, started_at
FROM flow_executions WHERE status IN ('queued', 'running')
ON CONFLICT DO NOTHING;
--> statement-breakpoint
-- Chat turns still waiting for their answer (asked within the last hour, the longest a turn's event
-- log lives) get their run likewise, keyed by the user message; its job id is the message id.
INSERT INTO runs (kind, id, user_id, status, queue, job_id, cancel_requested_at, created_at)
SELECT 'chat', m.id, s.user_id, 'queued', 'assistant', m.id::text, m.cancel_requested_at, m.created_at
FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id
WHERE m.role = 'user' AND m.created_at > now() - interval '1 hour'
  AND NOT EXISTS (SELECT 1 FROM chat_messages reply WHERE reply.reply_to = m.id AND reply.role = 'assistant')
ON CONFLICT DO NOTHING;

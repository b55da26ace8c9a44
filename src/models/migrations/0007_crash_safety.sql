-- Crash safety: a decided approval whose resume never started (the enqueue failed, or
-- Redis lost the job) is found by the reaper and resumed; `resumed_at` says the resume has begun.
ALTER TABLE hitl_requests ADD COLUMN resumed_at timestamptz;
--> statement-breakpoint
-- The reaper's scans: pending past expiry, decided but not resumed.
CREATE INDEX hitl_requests_open_idx ON hitl_requests (status, expires_at) WHERE resumed_at IS NULL;

-- Cancellation (decision 0080). A generation can end `cancelled`; the API records that a
-- cancel was asked for on the row the worker reads (generations, and the user message of a chat
-- turn), so the request and the worker's last write are ordered by the row lock.
ALTER TABLE generations DROP CONSTRAINT IF EXISTS generations_status_check;
--> statement-breakpoint
ALTER TABLE generations ADD CONSTRAINT generations_status_check CHECK (status IN ('queued', 'running', 'completed', 'failed', 'undone', 'cancelled'));
--> statement-breakpoint
ALTER TABLE generations ADD COLUMN cancel_requested_at timestamptz;
--> statement-breakpoint
-- An assistant answer cut short by a cancel is kept, marked `cancelled`.
ALTER TABLE chat_messages ADD COLUMN status text NOT NULL DEFAULT 'completed' CHECK (status IN ('completed', 'cancelled'));
--> statement-breakpoint
ALTER TABLE chat_messages ADD COLUMN cancel_requested_at timestamptz;
--> statement-breakpoint
-- Who ended an approval: the user, the timeout, or a cancel of its turn (`reason` stays the policy's).
ALTER TABLE hitl_requests ADD COLUMN decision_reason text CHECK (decision_reason IN ('user', 'timeout', 'cancelled'));
--> statement-breakpoint
UPDATE hitl_requests SET decision_reason = CASE WHEN status = 'timeout' THEN 'timeout' ELSE 'user' END WHERE status <> 'pending';
--> statement-breakpoint
-- Usage of a call the provider reported no usage for (an aborted stream) is an estimate.
ALTER TABLE llm_usage ADD COLUMN estimated boolean NOT NULL DEFAULT false;

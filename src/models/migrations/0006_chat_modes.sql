-- Chat without a device: a session runs with the device's tools (`device`) or as a plain
-- assistant (`none`); flows add `flow` sessions. The escalation reason is kept.
ALTER TABLE chat_sessions ADD COLUMN mode text NOT NULL DEFAULT 'device' CHECK (mode IN ('device', 'none', 'flow'));
--> statement-breakpoint
ALTER TABLE chat_sessions ADD COLUMN flow_id uuid;
--> statement-breakpoint
ALTER TABLE chat_sessions ADD COLUMN escalation_reason text;
--> statement-breakpoint
-- GET /chat/sessions: newest first, keyset-paginated on (updated_at, id).
CREATE INDEX chat_sessions_user_recent_idx ON chat_sessions (user_id, updated_at DESC, id DESC);

-- Session ticket notes: resolving a session queues the notes; the worker
-- streams them and keeps the final text here. documentation_status is null until a resolve asks
-- for notes, then pending → generating → ready (or failed, which a later resolve may retry).
ALTER TABLE chat_sessions ADD COLUMN resolution_summary text;
--> statement-breakpoint
ALTER TABLE chat_sessions ADD COLUMN documentation text;
--> statement-breakpoint
ALTER TABLE chat_sessions ADD COLUMN documentation_status text CHECK (documentation_status IN ('pending', 'generating', 'ready', 'failed'));

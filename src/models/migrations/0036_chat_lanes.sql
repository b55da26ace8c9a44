-- One session, one lane: what a second message does while a turn of the session runs. NULL is
-- the default strategy (enqueue). A user message whose turn is rolled back is marked when the
-- rollback is asked for; the turn's end removes its messages.
ALTER TABLE chat_sessions ADD COLUMN multitask text
  CHECK (multitask IN ('enqueue', 'reject', 'interrupt', 'rollback'));
--> statement-breakpoint
ALTER TABLE chat_messages ADD COLUMN rollback_requested_at timestamptz;

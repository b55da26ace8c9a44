-- Room threads: a chat session bound to a canvas is that canvas's thread. Every member who can read
-- the canvas reads it, editors and owners post to it; the thread goes with its canvas. A user
-- message records who sent it (`author_id`, the user who pays for its turn) and the display name
-- it was sent under; null on messages of a session without a canvas (its owner wrote them).
-- `room_seq` on a thread's user message is the canvas room seq of its `message` event: a late
-- joiner replays the turn from there.
ALTER TABLE chat_sessions ADD COLUMN canvas_id uuid REFERENCES canvases(id) ON DELETE CASCADE;
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS chat_sessions_canvas_idx ON chat_sessions (canvas_id, updated_at DESC) WHERE canvas_id IS NOT NULL;
--> statement-breakpoint
ALTER TABLE chat_messages ADD COLUMN author_id uuid;
--> statement-breakpoint
ALTER TABLE chat_messages ADD COLUMN author_name text;
--> statement-breakpoint
ALTER TABLE chat_messages ADD COLUMN room_seq bigint;

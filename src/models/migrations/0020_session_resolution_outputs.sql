-- What resolving a session leaves behind besides its markdown notes: the problem as the notes
-- state it and the diagnostic steps taken (a JSON array of {description}); the resolution summary
-- already has its column (0004).
ALTER TABLE chat_sessions ADD COLUMN IF NOT EXISTS problem_summary text;
--> statement-breakpoint
ALTER TABLE chat_sessions ADD COLUMN IF NOT EXISTS diagnostic_steps jsonb;
--> statement-breakpoint
-- A resolved session's embedding (a JSON array of numbers, with the model that made it), so later
-- sessions can find resolved ones like them. Its own table: session reads never carry the vector.
CREATE TABLE IF NOT EXISTS chat_session_embeddings (
  session_id uuid PRIMARY KEY REFERENCES chat_sessions (id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  model text NOT NULL,
  vector jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
-- Similar-session lookups read one user's embeddings of one model, most recent first.
CREATE INDEX IF NOT EXISTS chat_session_embeddings_user_idx ON chat_session_embeddings (user_id, model, updated_at DESC);

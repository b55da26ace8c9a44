-- The index on (user_id, updated_at) from the assistant's first migration is covered by
-- chat_sessions_user_recent_idx on (user_id, updated_at DESC, id DESC), which serves the same
-- lookups and orders in either direction. Every write that moves a session's updated_at paid for
-- both.
DROP INDEX IF EXISTS chat_sessions_user_idx;

-- What the user's app says about where the user is (the open project, the selected task, the
-- screen), sent with a chat request and kept on the session: every turn of the session gives it to
-- the model. Null when no request of the session carried any (or the last one cleared it with {}).
ALTER TABLE chat_sessions ADD COLUMN IF NOT EXISTS context jsonb;

-- One claim of a session's PSA push has one id: the resolve and the finished notes may both queue
-- the push of a claim, and both name it by this id, so the push runs once.
ALTER TABLE chat_sessions ADD COLUMN psa_push_claim uuid;

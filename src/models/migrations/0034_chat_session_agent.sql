-- The coding agent that works on a session: the one its latest coding turn was routed to, or the
-- agent of the plan step running now. Null for a session that never had a coding turn.
ALTER TABLE chat_sessions ADD COLUMN coding_agent text CHECK (coding_agent IN ('orchestrator', 'ask', 'coder', 'debug', 'architect'));

-- GET /usage?all=true (admins) reads every user's usage of a date range: without this index it scans
-- llm_usage whole; (user_id, created_at) serves only one user's range.
CREATE INDEX IF NOT EXISTS llm_usage_created_idx ON llm_usage (created_at);

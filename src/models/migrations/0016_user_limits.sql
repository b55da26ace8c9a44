-- Per-user limit overrides set by an operator (decision 0222): a JSON object of budget limits and
-- features laid over the user's tier; null = the tier's limits as they are.
ALTER TABLE users ADD COLUMN IF NOT EXISTS limit_overrides jsonb;

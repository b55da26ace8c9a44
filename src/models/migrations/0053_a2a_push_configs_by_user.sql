-- Whether a user has any A2A push config is read when their subscriptions are loaded (once per
-- user and process, then cached): an index by user keeps that read from scanning every config.
CREATE INDEX IF NOT EXISTS a2a_push_configs_user_idx ON a2a_push_configs (user_id);

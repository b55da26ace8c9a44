-- A2A push notification configs: where a task's state changes are POSTed (the caller's URL and
-- the token sent back in `X-A2A-Notification-Token`). A task is a chat turn, so `task_id` is the
-- turn's user message id; `config_id` is the caller's name for the config, unique per task. The
-- token is stored sealed (AES-GCM, like webhook secrets): it is sent, so it cannot be a hash.
CREATE TABLE IF NOT EXISTS a2a_push_configs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  task_id uuid NOT NULL,
  config_id text NOT NULL,
  url text NOT NULL,
  token_sealed text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT a2a_push_configs_task_config_key UNIQUE (task_id, config_id)
);

-- Background agents. Local agents read folders on one device; cloud
-- agents fetch Gmail / Outlook / Teams with an OAuth credential. next_run_at drives the scheduler
-- (indexed, so a tick reads only due agents); last_scheduled_at is the last slot it enqueued.
CREATE TABLE oauth_credentials (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  provider text NOT NULL CHECK (provider IN ('gmail', 'outlook', 'teams')),
  -- AES-256-GCM ciphertext of the token set; key_id names the key that sealed it (rotation).
  key_id text NOT NULL,
  ciphertext text NOT NULL,
  scope text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX oauth_credentials_user_idx ON oauth_credentials (user_id, provider);
--> statement-breakpoint
CREATE TABLE local_agents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  device_id text NOT NULL,
  name text NOT NULL,
  directory_paths jsonb NOT NULL,
  data_types jsonb NOT NULL,
  prompt_template text NOT NULL,
  file_extensions jsonb NOT NULL,
  schedule_cron text,
  timezone text NOT NULL DEFAULT 'UTC',
  enabled boolean NOT NULL DEFAULT true,
  last_run_at timestamptz,
  next_run_at timestamptz,
  last_scheduled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX local_agents_user_idx ON local_agents (user_id);
--> statement-breakpoint
CREATE INDEX local_agents_due_idx ON local_agents (next_run_at) WHERE enabled;
--> statement-breakpoint
CREATE TABLE cloud_agents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  provider text NOT NULL CHECK (provider IN ('gmail', 'outlook', 'teams')),
  name text NOT NULL,
  data_types jsonb NOT NULL,
  prompt_template text NOT NULL,
  schedule_cron text,
  timezone text NOT NULL DEFAULT 'UTC',
  filter_config jsonb NOT NULL DEFAULT '{}',
  credential_id uuid REFERENCES oauth_credentials(id) ON DELETE SET NULL,
  -- reauth_required: the provider refused the refresh token (invalid_grant); runs stop until reconnected.
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'reauth_required')),
  enabled boolean NOT NULL DEFAULT true,
  last_run_at timestamptz,
  next_run_at timestamptz,
  last_scheduled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX cloud_agents_user_idx ON cloud_agents (user_id);
--> statement-breakpoint
CREATE INDEX cloud_agents_due_idx ON cloud_agents (next_run_at) WHERE enabled;
--> statement-breakpoint
-- One row per run. A scheduled run carries its slot: (agent_id, slot) is unique, so a slot runs
-- once however many schedulers enqueue it. At most one run per agent waits for a device.
CREATE TABLE agent_runs (
  id uuid PRIMARY KEY,
  agent_id uuid NOT NULL,
  agent_type text NOT NULL CHECK (agent_type IN ('local', 'cloud')),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
  slot timestamptz,
  device_id text,
  status text NOT NULL CHECK (status IN ('running', 'success', 'error', 'partial', 'waiting_device')),
  items_processed integer NOT NULL DEFAULT 0,
  items_created integer NOT NULL DEFAULT 0,
  errors jsonb NOT NULL DEFAULT '[]',
  -- Cloud runs: the items fetched, kept until a device takes the extracted suggestions.
  fetched jsonb,
  started_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
);
--> statement-breakpoint
CREATE UNIQUE INDEX agent_runs_slot_idx ON agent_runs (agent_id, slot) WHERE slot IS NOT NULL;
--> statement-breakpoint
CREATE UNIQUE INDEX agent_runs_waiting_idx ON agent_runs (agent_id) WHERE status = 'waiting_device';
--> statement-breakpoint
CREATE INDEX agent_runs_user_idx ON agent_runs (user_id, started_at DESC);
--> statement-breakpoint
CREATE INDEX agent_runs_agent_idx ON agent_runs (agent_id, started_at DESC);

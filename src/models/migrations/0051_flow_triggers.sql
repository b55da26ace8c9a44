-- Flow triggers: what starts an agentflow besides a person or an app calling it. A `schedule`
-- holds a cron expression in an IANA time zone and the next time it fires; a `webhook` holds its
-- signing secret sealed (AES-GCM, like outgoing webhook secrets: it is used to verify, so it
-- cannot be a hash); a `connector` names the cloud agent whose fetched mails fire it. Each may
-- carry a concurrency key and limit, a debounce and a rate limit (`settings`).
CREATE TABLE flow_triggers (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  flow_id uuid NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  type text NOT NULL CHECK (type IN ('schedule', 'webhook', 'connector')),
  name text NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  -- schedule: {cron, timezone, catchUp, input}; webhook: {}; connector: {agentId}.
  config jsonb NOT NULL,
  -- {concurrency?: {key?, limit}, debounceSeconds?, rateLimit?: {limit, perSeconds}}
  settings jsonb NOT NULL DEFAULT '{}'::jsonb,
  secret_sealed text,
  -- A schedule's next slot; the scheduler moves it with a conditional UPDATE (one scheduler wins).
  next_run_at timestamptz,
  last_fired_at timestamptz,
  last_execution_id uuid,
  last_error_code text,
  last_error_message text,
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX flow_triggers_flow_idx ON flow_triggers (flow_id, created_at DESC, id DESC);
--> statement-breakpoint
-- The scheduler's scan: enabled schedules by their next slot.
CREATE INDEX flow_triggers_due_idx ON flow_triggers (next_run_at) WHERE enabled AND type = 'schedule';
--> statement-breakpoint
-- A cloud agent's connector triggers, found when its run has fetched items.
CREATE INDEX flow_triggers_connector_idx ON flow_triggers ((config ->> 'agentId')) WHERE type = 'connector';
--> statement-breakpoint
-- Which trigger fire started an execution: one execution per fire (a retried fire job, a replayed
-- delivery or a second scheduler finds it), and the concurrency key the fire computed.
ALTER TABLE flow_executions ADD COLUMN trigger_id uuid;
--> statement-breakpoint
ALTER TABLE flow_executions ADD COLUMN trigger_fire text;
--> statement-breakpoint
ALTER TABLE flow_executions ADD COLUMN concurrency_key text;
--> statement-breakpoint
CREATE UNIQUE INDEX flow_executions_trigger_fire_key ON flow_executions (trigger_id, trigger_fire) WHERE trigger_id IS NOT NULL;
--> statement-breakpoint
-- A trigger's open executions per concurrency key: what a fire over the limit waits for.
CREATE INDEX flow_executions_trigger_open_idx ON flow_executions (trigger_id, concurrency_key) WHERE trigger_id IS NOT NULL AND status IN ('queued', 'running');

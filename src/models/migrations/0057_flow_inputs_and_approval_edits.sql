-- A human_input node of an agentflow asks people for a form's answer: one request per execution
-- and node (a re-run of the node finds it). `user_id` is the flow's owner, whose execution waits;
-- `recipients` are the users who may answer (the owner by default). The first answer wins once: a
-- conditional UPDATE from `pending`; the timeout makes it `timeout`, the end of the execution
-- `cancelled`. `announced_at` is when the recipients were told (a re-run of the node tells them
-- only when that never happened).
CREATE TABLE IF NOT EXISTS input_requests (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL,
  execution_id uuid NOT NULL REFERENCES flow_executions(id) ON DELETE CASCADE,
  node_id text NOT NULL,
  recipients uuid[] NOT NULL,
  prompt text NOT NULL DEFAULT '',
  form jsonb NOT NULL,
  decisions jsonb NOT NULL DEFAULT '[]',
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'answered', 'timeout', 'cancelled')),
  answer jsonb,
  decision text,
  answered_by uuid,
  answered_at timestamptz,
  expires_at timestamptz NOT NULL,
  announced_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (execution_id, node_id)
);
--> statement-breakpoint
-- A recipient's list of the forms waiting for them.
CREATE INDEX IF NOT EXISTS input_requests_recipients_idx ON input_requests USING gin (recipients);
--> statement-breakpoint
-- Approvals gain two answers besides yes and no: approve with edited arguments (the call runs with
-- them; the original arguments stay in `parameters`), and reject with a reply (the model reads it
-- as the tool's result and the turn goes on).
ALTER TABLE hitl_requests ADD COLUMN IF NOT EXISTS edited_arguments jsonb;
--> statement-breakpoint
ALTER TABLE hitl_requests ADD COLUMN IF NOT EXISTS reply text;

-- Deciding together and lending devices in room threads. `approval_policy` says who may decide an
-- approval asked by a thread's turn: the requester (default), any editor, the canvas owner, or a
-- quorum of `approval_quorum` editors. `addressed_to` is the one member who decides a request
-- whatever the policy: the owner of a device lent to the thread when another member's turn wants to
-- use it. `hitl_votes` holds each member's vote on a quorum request, once per member.
-- `thread_device_loans` lists the devices their owners lent to a thread (one owner per device id
-- in a thread); a loan goes with its thread and with its owner's account.
ALTER TABLE chat_sessions ADD COLUMN approval_policy text NOT NULL DEFAULT 'requester'
  CHECK (approval_policy IN ('requester', 'any_editor', 'canvas_owner', 'quorum'));
--> statement-breakpoint
ALTER TABLE chat_sessions ADD COLUMN approval_quorum integer CHECK (approval_quorum IS NULL OR approval_quorum >= 1);
--> statement-breakpoint
ALTER TABLE hitl_requests ADD COLUMN addressed_to uuid;
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS hitl_requests_addressed_idx ON hitl_requests (addressed_to, created_at DESC) WHERE addressed_to IS NOT NULL;
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS hitl_votes (
  approval_id uuid NOT NULL REFERENCES hitl_requests(id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  approved boolean NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (approval_id, user_id)
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS thread_device_loans (
  thread_id uuid NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,
  device_id text NOT NULL,
  owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (thread_id, device_id)
);

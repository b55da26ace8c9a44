CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL UNIQUE,
  name text NOT NULL,
  password_hash text,
  tier text NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro', 'enterprise')),
  role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin', 'service')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
-- The AI service user (S6): authors every block an AI generation creates. It has no password,
-- so nobody can sign in as it.
INSERT INTO users (id, email, name, role, tier)
VALUES ('00000000-0000-4000-8000-0000000000a1', 'ai-agent@switchboard.internal', 'Switchboard AI', 'service', 'enterprise');
--> statement-breakpoint
CREATE TABLE refresh_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  family_id uuid NOT NULL,
  token_hash text NOT NULL UNIQUE,
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  revoked_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
--> statement-breakpoint
CREATE TABLE canvases (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  title text NOT NULL,
  owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE TABLE canvas_members (
  canvas_id uuid NOT NULL REFERENCES canvases(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (canvas_id, user_id)
);
--> statement-breakpoint
CREATE INDEX canvas_members_user_idx ON canvas_members (user_id);
--> statement-breakpoint
CREATE TABLE blocks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  canvas_id uuid NOT NULL REFERENCES canvases(id) ON DELETE CASCADE,
  type text NOT NULL,
  content jsonb NOT NULL,
  -- "C" collation: byte order, so the database sorts base-62 ranks exactly as the code compares them.
  rank text COLLATE "C" NOT NULL,
  generation_session_id uuid,
  created_by uuid NOT NULL REFERENCES users(id),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Deferrable so a rebalance can rewrite every rank of a canvas in one statement.
  CONSTRAINT blocks_canvas_rank_unique UNIQUE (canvas_id, rank) DEFERRABLE INITIALLY IMMEDIATE
);
--> statement-breakpoint
CREATE INDEX blocks_generation_idx ON blocks (generation_session_id) WHERE generation_session_id IS NOT NULL;
--> statement-breakpoint
CREATE TABLE generations (
  id uuid PRIMARY KEY,
  canvas_id uuid NOT NULL REFERENCES canvases(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  prompt text NOT NULL,
  after_id uuid,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed', 'undone')),
  block_count integer NOT NULL DEFAULT 0,
  truncated boolean NOT NULL DEFAULT false,
  provider text,
  model text,
  input_tokens integer NOT NULL DEFAULT 0,
  output_tokens integer NOT NULL DEFAULT 0,
  cost_usd double precision NOT NULL DEFAULT 0,
  error_code text,
  error_message text,
  attempts integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  completed_at timestamptz,
  undone_at timestamptz
);
--> statement-breakpoint
CREATE INDEX generations_canvas_idx ON generations (canvas_id, created_at);
--> statement-breakpoint
CREATE TABLE system_audit (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  actor_id uuid NOT NULL REFERENCES users(id),
  on_behalf_of uuid REFERENCES users(id) ON DELETE SET NULL,
  action text NOT NULL,
  canvas_id uuid REFERENCES canvases(id) ON DELETE CASCADE,
  target_type text,
  target_id uuid,
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX system_audit_canvas_idx ON system_audit (canvas_id, created_at);
--> statement-breakpoint
CREATE TABLE llm_usage (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  generation_id uuid,
  session_id uuid,
  purpose text NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  input_tokens integer NOT NULL,
  output_tokens integer NOT NULL,
  cost_usd double precision NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX llm_usage_user_idx ON llm_usage (user_id, created_at);

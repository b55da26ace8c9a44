-- Credentials of agentflow HTTP tools: a user's named secrets, sealed (AES-256-GCM, as OAuth
-- tokens are) and bound to their owner and name. A tool names one; the API never answers the secret.
CREATE TABLE http_credentials (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name text NOT NULL,
  scheme text NOT NULL CHECK (scheme IN ('bearer', 'basic', 'header')),
  -- The header a `header` credential is sent in (e.g. X-Api-Key); null for bearer and basic.
  header_name text,
  sealed_value text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, name)
);

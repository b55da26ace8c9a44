-- An agent may name its own model, {provider, model}; null = the deployment's default chain.
ALTER TABLE local_agents ADD COLUMN IF NOT EXISTS model jsonb;
--> statement-breakpoint
ALTER TABLE cloud_agents ADD COLUMN IF NOT EXISTS model jsonb;

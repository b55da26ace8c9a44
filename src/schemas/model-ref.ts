import { z } from 'zod';

/** A model by `{provider, model}`, as flows, agents and requests name it; checked against the configured models on save. */
export const modelRefSchema = z.strictObject({
  provider: z.string().min(1).max(100),
  model: z.string().min(1).max(200),
});

import { z } from 'zod';

/** Request bodies of the HTTP API (one schema per payload). */
export const registerSchema = z.strictObject({
  email: z.email().max(254),
  password: z.string().min(8).max(200),
  name: z.string().trim().min(1).max(100),
});
export const loginSchema = z.strictObject({ email: z.string().max(254), password: z.string().max(200) });
export const refreshSchema = z.strictObject({ refreshToken: z.string().min(1).max(500) });
/** Refresh and logout: the token in the body, or none with `X-Session-Cookie: 1` (the cookie holds it). */
export const refreshOrCookieSchema = z.strictObject({
  refreshToken: z
    .string()
    .min(1)
    .max(500)
    .optional()
    .describe('The refresh token; leave it out with `X-Session-Cookie: 1` to use the session cookie'),
});

export const createCanvasSchema = z.strictObject({ title: z.string().trim().min(1).max(200) });
export const updateCanvasSchema = z.strictObject({ title: z.string().trim().min(1).max(200) });
export const addMemberSchema = z.strictObject({ email: z.email().max(254), role: z.enum(['owner', 'editor', 'viewer']) });

export const MAX_PROMPT_CHARS = 8_000;
export const generateSchema = z.strictObject({
  prompt: z.string().trim().min(1).max(MAX_PROMPT_CHARS),
  afterId: z.uuid().optional(),
});
/**
 * `POST …/undo`: `force` removes the blocks people edited since the generation, too; `askIfEdited`
 * makes an undo that would keep edited blocks a 409 `edited_blocks` that changes nothing, so a
 * client can ask its user first.
 */
export const undoSchema = z.strictObject({ force: z.boolean().optional(), askIfEdited: z.boolean().optional() });
export const idempotencyKeySchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** A UUID path parameter, lower-cased so it names the same room and row however the client spelled it. */
export const uuidParam = z.uuid().transform((id) => id.toLowerCase());

export const MAX_EMBED_TEXT_CHARS = 8_000;
export const embedSchema = z.strictObject({ text: z.string().min(1).max(MAX_EMBED_TEXT_CHARS) });

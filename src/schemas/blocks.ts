import { z } from 'zod';

/** Largest block content, measured as its JSON text. */
export const MAX_BLOCK_CONTENT_CHARS = 20_000;

const text = z.string().min(1).max(MAX_BLOCK_CONTENT_CHARS);
const httpUrl = z
  .string()
  .max(2_048)
  .refine((value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');

/**
 * The content schema of each block type. The same objects validate HTTP bodies, socket payloads,
 * queue payloads and the arguments of the AI's `create_*` tools.
 */
export const blockContentSchemas = {
  text: z.strictObject({ text: text.describe('Paragraph text') }),
  heading: z.strictObject({ text: text.describe('Heading text'), level: z.number().int().min(1).max(3).describe('1, 2 or 3') }),
  todo: z.strictObject({ text: text.describe('What to do'), checked: z.boolean().describe('Done already?') }),
  bullet_list: z.strictObject({ items: z.array(z.string().min(1).max(2_000)).min(1).max(200).describe('List items') }),
  code: z.strictObject({
    code: z.string().max(MAX_BLOCK_CONTENT_CHARS).describe('Source code'),
    language: z.string().min(1).max(40).describe('Language, e.g. ts'),
  }),
  quote: z.strictObject({ text: text.describe('Quoted text') }),
  divider: z.strictObject({}),
  image: z.strictObject({ url: httpUrl.describe('http(s) image URL'), alt: z.string().max(500).describe('Alternative text') }),
} as const;

export type BlockType = keyof typeof blockContentSchemas;
export const BLOCK_TYPES = Object.keys(blockContentSchemas) as BlockType[];

const withinSize = (content: unknown) => JSON.stringify(content).length <= MAX_BLOCK_CONTENT_CHARS;
const sizeMessage = { message: `content must be at most ${MAX_BLOCK_CONTENT_CHARS} characters`, path: ['content'] };

/** `{type, content}` with content checked against its type. */
export const blockInputSchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('text'), content: blockContentSchemas.text }),
    z.object({ type: z.literal('heading'), content: blockContentSchemas.heading }),
    z.object({ type: z.literal('todo'), content: blockContentSchemas.todo }),
    z.object({ type: z.literal('bullet_list'), content: blockContentSchemas.bullet_list }),
    z.object({ type: z.literal('code'), content: blockContentSchemas.code }),
    z.object({ type: z.literal('quote'), content: blockContentSchemas.quote }),
    z.object({ type: z.literal('divider'), content: blockContentSchemas.divider }),
    z.object({ type: z.literal('image'), content: blockContentSchemas.image }),
  ])
  .refine((block) => withinSize(block.content), sizeMessage);
export type BlockInput = z.infer<typeof blockInputSchema>;

const placement = { afterId: z.uuid().optional(), beforeId: z.uuid().optional() };

/**
 * `POST /canvases/:id/blocks`: a block and where to put it. Strict like every other request body:
 * an unknown key is a 400 rather than silently dropped.
 */
export const createBlockSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('text'), content: blockContentSchemas.text, ...placement }),
    z.strictObject({ type: z.literal('heading'), content: blockContentSchemas.heading, ...placement }),
    z.strictObject({ type: z.literal('todo'), content: blockContentSchemas.todo, ...placement }),
    z.strictObject({ type: z.literal('bullet_list'), content: blockContentSchemas.bullet_list, ...placement }),
    z.strictObject({ type: z.literal('code'), content: blockContentSchemas.code, ...placement }),
    z.strictObject({ type: z.literal('quote'), content: blockContentSchemas.quote, ...placement }),
    z.strictObject({ type: z.literal('divider'), content: blockContentSchemas.divider, ...placement }),
    z.strictObject({ type: z.literal('image'), content: blockContentSchemas.image, ...placement }),
  ])
  .refine((block) => withinSize(block.content), sizeMessage);

/** `PATCH /canvases/:id/blocks/:blockId`: new content (same type), and/or a move. */
export const updateBlockSchema = z
  .strictObject({
    content: z.record(z.string(), z.unknown()).optional(),
    afterId: z.uuid().nullable().optional(),
    beforeId: z.uuid().nullable().optional(),
  })
  .refine((body) => body.content !== undefined || body.afterId !== undefined || body.beforeId !== undefined, {
    message: 'nothing to update: give content, afterId or beforeId',
  });

/** Validates `content` against the schema of `type` (for PATCH, where the type is the stored one). */
export function parseBlockContent(type: BlockType, content: unknown) {
  const result = blockContentSchemas[type].safeParse(content);
  if (result.success && !withinSize(result.data)) {
    return { success: false as const, error: { issues: [{ path: ['content'], message: sizeMessage.message }] } };
  }
  return result;
}

/** A block as clients see it. */
export interface Block {
  id: string;
  canvasId: string;
  type: BlockType;
  content: Record<string, unknown>;
  rank: string;
  generationSessionId: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

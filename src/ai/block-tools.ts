import { tool } from '@langchain/core/tools';
import { blockContentSchemas, type BlockInput, type BlockType } from '../schemas/blocks';

/** Tool name → block type: `create_text` → `text`. */
export const TOOL_BLOCK_TYPES: Record<string, BlockType> = {
  create_text: 'text',
  create_heading: 'heading',
  create_todo: 'todo',
  create_bullet_list: 'bullet_list',
  create_code: 'code',
  create_quote: 'quote',
  create_divider: 'divider',
  create_image: 'image',
};

const DESCRIPTIONS: Record<BlockType, string> = {
  text: 'Add a paragraph of text to the canvas.',
  heading: 'Add a heading (level 1-3) to the canvas.',
  todo: 'Add one to-do item; use one call per item.',
  bullet_list: 'Add a bulleted list holding several items.',
  code: 'Add a code block with its language.',
  quote: 'Add a quotation.',
  divider: 'Add a horizontal divider.',
  image: 'Add an image by http(s) URL with alternative text.',
};

/**
 * One `create_<type>` tool per block type. Their argument schemas ARE the block content schemas (src/schemas/blocks.ts), so the model
 * sees exactly what the database accepts. Calls are validated and collected by the canvas turn,
 * which is why the tool bodies only echo.
 */
export const blockTools = Object.entries(TOOL_BLOCK_TYPES).map(([name, type]) =>
  tool(async () => `created ${type}`, { name, description: DESCRIPTIONS[type], schema: blockContentSchemas[type] }),
);

/**
 * The same `create_<type>` tools as specs for the tool loop of a chat turn in a canvas's room thread:
 * the same names, descriptions and argument schemas as a generation's.
 */
export const BLOCK_TOOL_SPECS = Object.entries(TOOL_BLOCK_TYPES).map(([name, type]) => ({
  name,
  description: DESCRIPTIONS[type],
  schema: blockContentSchemas[type],
}));

export type ToolCallCheck = { ok: true; block: BlockInput } | { ok: false; error: string };

/** Validates one tool call's name and arguments into a block, or says what is wrong in words the model can act on. */
export function checkToolCall(name: string | undefined, rawArgs: unknown): ToolCallCheck {
  const type = name ? TOOL_BLOCK_TYPES[name] : undefined;
  if (!type) return { ok: false, error: `Unknown tool "${name}". Use one of: ${Object.keys(TOOL_BLOCK_TYPES).join(', ')}.` };
  let args = rawArgs;
  if (typeof rawArgs === 'string') {
    try {
      args = rawArgs.trim() ? JSON.parse(rawArgs) : {};
    } catch {
      return { ok: false, error: 'Arguments are not valid JSON.' };
    }
  }
  const parsed = blockContentSchemas[type].safeParse(args);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'arguments'}: ${issue.message}`).join('; ');
    return { ok: false, error: `Invalid arguments for ${name}: ${problems}. Fix them and call the tool again.` };
  }
  if (JSON.stringify(parsed.data).length > 20_000) return { ok: false, error: 'Block content is too large (max 20000 characters).' };
  return { ok: true, block: { type, content: parsed.data } as BlockInput };
}

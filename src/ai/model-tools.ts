import { tool, type StructuredToolInterface } from '@langchain/core/tools';
import { convertToOpenAITool } from '@langchain/core/utils/function_calling';
import type { z } from 'zod';
import type { ToolDefinition } from './model-stream';

/**
 * A tool offered to the model: its name, description and argument schema. The gateway turns it
 * into the provider's wire form; the model's calls come back as `ModelToolCall`s, and running them
 * is the caller's business (it validates, applies its policy, turns failures into text), so an
 * offered tool has no body. Callers outside src/ai build tools with {@link offeredTool} and never
 * import LangChain.
 */
export type ModelTool = StructuredToolInterface | ToolDefinition;

/** What the model sees of a tool. */
export interface ToolSpec {
  name: string;
  description: string;
  /** The arguments the model must send, as a zod object (the JSON schema the model sees is derived from it). */
  schema: z.ZodObject;
}

/**
 * A tool to offer the model. Build each once (at module load, or cached by name) and pass it on every
 * call that offers it: the JSON schema is derived again for every new tool object.
 */
export function offeredTool(spec: ToolSpec): ModelTool {
  // Never run: the caller executes the calls the model makes (see ModelTool).
  return tool(async () => '', { name: spec.name, description: spec.description, schema: spec.schema });
}

/** UTF-8 bytes of a tool's definition as a call's reservation counts it (each tool is one text of the prompt). */
export function toolDefinitionBytes(spec: ToolSpec): number {
  return Buffer.byteLength(JSON.stringify(convertToOpenAITool(offeredTool(spec))), 'utf8');
}

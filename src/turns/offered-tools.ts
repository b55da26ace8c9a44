import { offeredTool, type ModelTool, type ToolSpec } from '../ai/model-tools';
import { TOOLS_BY_NAME, type AssistantTool } from './device-tools';

/*
 * The tools as the model client offers them. Kept apart from the tool catalog (device-tools.ts), so
 * a process that only checks arguments against the catalog's schemas (the API, deciding an
 * approval) never loads the model client.
 */

const offered = new Map<string, ModelTool>();
/**
 * The tools to offer the model for `tools` (name, description, JSON schema from zod), built once
 * per name. They have no bodies: the tool loop executes calls itself, so it can validate, apply
 * the ToolPolicy and turn device errors into text.
 */
export function modelTools(tools: Array<AssistantTool | ToolSpec>): ModelTool[] {
  return tools.map((t) => {
    // Only the catalog's tools are cached by name: a flow's HTTP tool is its own.
    if (TOOLS_BY_NAME.get(t.name) !== t) return offeredTool(t);
    let built = offered.get(t.name);
    if (!built) {
      built = offeredTool(t);
      offered.set(t.name, built);
    }
    return built;
  });
}

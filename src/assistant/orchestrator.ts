import { ASSISTANT_TOOLS, type ToolsetName, type AssistantTool } from '../turns/device-tools';

export { classifyIntent, plainSystemPrompt, systemPrompt, type Intent } from './turn-prompt';

/** The tools of the chosen toolsets, in catalogue order. */
export function toolsFor(toolsets: ToolsetName[]): AssistantTool[] {
  return ASSISTANT_TOOLS.filter((t) => (toolsets as string[]).includes(t.toolset));
}

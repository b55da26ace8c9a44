import { EXTRACTION_TOOL } from '../../src/agents/extraction-prompt';
import { messageText, type ChatResponder, type ChatTurn } from '../../src/demo-model/openai-compatible-server';

/** Lines a document marks as a note or a project: `NOTE: title` and `PROJECT: name`. */
const MARKED = /^\s*(NOTE|PROJECT):\s*(.+?)\s*$/gm;

/**
 * Wraps a responder so an extraction (a forced `record_items` call) also suggests the notes and
 * projects the document marks with `NOTE:` and `PROJECT:` lines; the demo model extracts tasks
 * only. Every other request is answered by `base` unchanged.
 */
export function suggestingNotesAndProjects(base: ChatResponder): ChatResponder {
  return async (request) => {
    const turn: ChatTurn = await base(request);
    const forced = request.tool_choice;
    if (typeof forced !== 'object' || forced?.function?.name !== EXTRACTION_TOOL) return turn;
    const text = request.messages
      .filter((message) => message.role === 'user')
      .map(messageText)
      .join('\n');
    const marked = [...text.matchAll(MARKED)].map(([, kind, title]) => ({
      type: kind === 'NOTE' ? 'notes' : 'projects',
      title,
      description: `${title} (from the document)`,
    }));
    if (!marked.length) return turn;
    const items = turn.toolCalls?.flatMap((call) => ((call.args as { items?: unknown[] }).items ?? []) as unknown[]) ?? [];
    return { toolCalls: [{ name: EXTRACTION_TOOL, args: { items: [...items, ...marked] } }] };
  };
}

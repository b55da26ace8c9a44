import { messageText, type ChatRequest, type ChatTurn } from './openai-compatible-server';
import { promptText } from './conversation';

/** One extracted work item, in the shape the extraction worker expects. */
export interface ExtractedItem {
  title: string;
  type: 'task';
}

/** Lines that announce an action item; what follows the marker is the title. */
const MARKER = /^\s*(?:TODO\b|todo:|action:|[-*]\s*\[\s\])\s*:?\s*(.*)$/i;
const STRICT_TODO = /^\s*(?:TODO\b|todo:)/;

/** Action items in a text: one per line starting with `TODO`, `Action:` or `- [ ]`. */
export function extractItems(text: string): ExtractedItem[] {
  const items: ExtractedItem[] = [];
  for (const line of text.split('\n')) {
    const match = MARKER.exec(line);
    // "Todo list for today" is prose, not an item: only upper-case TODO or "todo:" count.
    if (!match || (/^\s*todo/i.test(line) && !STRICT_TODO.test(line))) continue;
    const title = match[1].trim();
    if (title) items.push({ title, type: 'task' });
  }
  return items;
}

/** Whether a request asks to extract items: the prompt says "extract" and carries marker lines or asks for JSON. */
export function isExtractionRequest(request: ChatRequest): boolean {
  const prompt = promptText(request.messages);
  if (!/\bextract/i.test(prompt)) return false;
  const wantsStructure = request.response_format?.type?.startsWith('json') === true || typeof request.tool_choice === 'object';
  return wantsStructure || extractItems(prompt).length > 0;
}

/**
 * Answers with the items found in the user messages (system messages only when users gave none,
 * since instructions often quote the markers). A forced tool gets them as its arguments, otherwise
 * they are JSON text.
 */
export function extractionTurn(request: ChatRequest): ChatTurn {
  const from = (role: string): ExtractedItem[] =>
    extractItems(
      request.messages
        .filter((m) => m.role === role)
        .map(messageText)
        .join('\n'),
    );
  const userItems = from('user');
  const items = userItems.length > 0 ? userItems : from('system');
  const forced = request.tool_choice;
  if (typeof forced === 'object' && forced?.function?.name) return { toolCalls: [{ name: forced.function.name, args: { items } }] };
  return { text: JSON.stringify({ items }) };
}

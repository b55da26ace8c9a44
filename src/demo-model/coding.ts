import { currentExchange, errorFacts, isErrorResult, lastUserText, offeredToolNames, toolResultText } from './conversation';
import type { ChatRequest, ChatTurn } from './openai-compatible-server';

/**
 * The demo model as a coding agent: deterministic commands instead of understanding. It reads
 * `read <path>`, `search <text>`, `list files`, `run <command>`, `replace "<old>" with "<new>" in
 * <path>` and `create <path> with "<content>"`, with the tools the turn offers (Ask gets no
 * write or run tools), and once the results are in it answers with what they said.
 */

/** Whether the request is a coding turn: it offers the project tools. */
export const isCodingRequest = (request: ChatRequest): boolean => offeredToolNames(request).has('read_file');

const PATTERNS: Array<{ tool: string; pattern: RegExp; args: (m: RegExpExecArray) => Record<string, unknown> }> = [
  {
    tool: 'edit_file',
    pattern: /\breplace\s+"([^"]+)"\s+with\s+"([^"]*)"\s+in\s+([\w./-]+)/i,
    args: (m) => ({ path: m[3], edits: [{ search: m[1], replace: m[2] }] }),
  },
  {
    tool: 'write_file',
    pattern: /\bcreate\s+([\w./-]+)\s+with\s+"([^"]*)"/i,
    args: (m) => ({ path: m[1], content: `${m[2]}\n` }),
  },
  { tool: 'execute_command', pattern: /\brun\s+[`"']?([^`"']+?)[`"']?\s*$/i, args: (m) => ({ command: m[1] }) },
  { tool: 'read_file', pattern: /\b(?:read|open|show)\s+([\w./-]+\.[\w]+)/i, args: (m) => ({ path: m[1] }) },
  {
    tool: 'search_files',
    pattern: /\b(?:search|find|grep)\s+(?:for\s+)?"?([^"]+?)"?\s*$/i,
    args: (m) => ({ pattern: m[1], literal: true }),
  },
  { tool: 'list_files', pattern: /\blist\b/i, args: () => ({ recursive: true }) },
];

export function codingTurn(request: ChatRequest): ChatTurn {
  const exchange = currentExchange(request.messages);
  const results = exchange.filter((m) => m.role === 'tool').map(toolResultText);
  if (results.length) {
    const failed = results.find(isErrorResult);
    if (failed) return { text: `That did not work: ${errorFacts(failed)}` };
    const shown = results.join('\n\n');
    return { text: `Here is what I found:\n${shown.length > 1_500 ? `${shown.slice(0, 1_500)}…` : shown}` };
  }
  const message = lastUserText(request.messages);
  const offered = offeredToolNames(request);
  for (const { tool, pattern, args } of PATTERNS) {
    const match = pattern.exec(message);
    if (match && offered.has(tool)) return { toolCalls: [{ name: tool, args: args(match) }] };
  }
  return {
    text:
      'I am the offline demo model. Ask me to read <path>, search <text>, list files' +
      (offered.has('execute_command') ? ', run <command>' : '') +
      (offered.has('edit_file') ? ', replace "<old>" with "<new>" in <path> or create <path> with "<content>"' : '') +
      '.',
  };
}

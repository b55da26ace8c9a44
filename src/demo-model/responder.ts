import type { ChatRequest, ChatTurn } from './openai-compatible-server';
import { canvasTurn, isCanvasRequest } from './canvas';
import { chatToolsTurn } from './chat-tools';
import { codingTurn, isCodingRequest } from './coding';
import { lastUserText } from './conversation';
import { extractionTurn, isExtractionRequest } from './extraction';
import { flowNodeTurn, isFlowNodeRequest } from './flow-node';
import { isJourneyRequest, journeyTurn } from './journey';
import { isTicketNotesRequest, ticketNotesTurn } from './ticket-notes';

/** The plain-text answer when no behaviour applies; it says what it is rather than imitate a model. */
export function fallbackText(request: ChatRequest): string {
  const said = lastUserText(request.messages).trim().replace(/\s+/g, ' ');
  const quote = said.length > 200 ? `${said.slice(0, 200)}…` : said;
  return quote
    ? `This is the offline demo model (no LLM is configured), so it cannot really answer. You said: "${quote}"`
    : 'This is the offline demo model (no LLM is configured).';
}

/**
 * Routes a chat request to the demo behaviour it looks like, most specific first: agentflow nodes, canvas tools,
 * the agent setup journey (its prompt says "extraction" too), extraction, ticket notes, the coding
 * agents' project tools, then any other offered tools, else a plain text reply. Deterministic.
 */
export function demoResponder(request: ChatRequest): ChatTurn {
  // First: an agentflow node's task may say "extract" or "todo" and still be a node.
  if (isFlowNodeRequest(request)) return flowNodeTurn(request);
  if (isCanvasRequest(request)) return canvasTurn(request);
  if (isJourneyRequest(request)) return journeyTurn(request);
  if (isExtractionRequest(request)) return extractionTurn(request);
  if (isTicketNotesRequest(request)) return ticketNotesTurn(request);
  if (isCodingRequest(request) && request.tool_choice !== 'none') return codingTurn(request);
  if ((request.tools?.length ?? 0) > 0 && request.tool_choice !== 'none') return chatToolsTurn(request);
  return { text: fallbackText(request) };
}

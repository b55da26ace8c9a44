import { messageText, type ChatRequest, type ChatTurn } from './openai-compatible-server';
import { canvasTurn, isCanvasRequest } from './canvas';
import { chatToolsTurn } from './chat-tools';
import { codingTurn, isCodingRequest } from './coding';
import { lastUserText } from './conversation';
import { extractionTurn, isExtractionRequest } from './extraction';
import { flowNodeTurn, isFlowNodeRequest } from './flow-node';
import { isJudgeRequest, judgeTurn } from './eval-judge';
import { isJourneyRequest, journeyTurn } from './journey';
import { isTicketNotesRequest, ticketNotesTurn } from './ticket-notes';
import { knowledgeTurn } from './knowledge';

/** The plain-text answer when no behaviour applies; it says what it is rather than imitate a model. */
export function fallbackText(request: ChatRequest): string {
  const said = lastUserText(request.messages).trim().replace(/\s+/g, ' ');
  const quote = said.length > 200 ? `${said.slice(0, 200)}…` : said;
  return quote
    ? `This is the offline demo model (no LLM is configured), so it cannot really answer. You said: "${quote}"`
    : 'This is the offline demo model (no LLM is configured).';
}

/** An agentflow node that must answer JSON: it keeps its own behaviour. */
const wantsJson = (request: ChatRequest) =>
  request.messages.some((message) => message.role === 'system' && messageText(message).includes('validates against this JSON Schema:'));

/**
 * Routes a chat request to the demo behaviour it looks like, most specific first: evaluation judges, retrieved knowledge, agentflow nodes, canvas tools,
 * the agent setup journey (its prompt says "extraction" too), extraction, ticket notes, the coding
 * agents' project tools, then any other offered tools, else a plain text reply. Deterministic.
 */
export function demoResponder(request: ChatRequest): ChatTurn {
  // An evaluation's judge answers its strict JSON verdict, whatever the sample says.
  if (isJudgeRequest(request)) return judgeTurn(request);
  // Retrieved passages (or the knowledge search offered): a grounded, cited answer.
  const grounded = wantsJson(request) ? undefined : knowledgeTurn(request);
  if (grounded) return grounded;
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

import { messageText, type ChatMessage, type ChatRequest, type ChatTurn } from './openai-compatible-server';
import { promptText } from './conversation';

/** The sections ticket notes must have, in order. */
export const TICKET_NOTE_SECTIONS = ['Problem Summary', 'Steps Taken', 'Resolution', 'Next Steps'] as const;

const RESOLVED = /\b(?:resolv\w*|fix(?:ed|es)?|solved|works? now|working now|restored|succeeded|success\w*)\b/i;
const FOLLOW_UP = /\b(?:follow[ -]?up|next|will|should|monitor\w*|schedul\w*|todo|remind\w*|check back)\b/i;
/** Lines that are the instructions rather than the conversation. */
const INSTRUCTION =
  /\b(?:write|create|generate|produce|draft|summari[sz]e|document)\b.*\b(?:notes?|sections?|documentation|markdown)\b|^#|:\s*$/i;

/**
 * The labelled lines a notes prompt carries beside the conversation: the engineer's own resolution
 * summary ("Resolution summary:" or "Resolution notes:") and problem summary. They fill the
 * Resolution and Problem Summary sections as given, never the steps.
 */
const RESOLUTION_LABEL = /^resolution (?:summary|notes?):\s*(.+)$/i;
const PROBLEM_LABEL = /^problem summary:\s*(.+)$/i;
/** The session's facts a notes prompt states before the conversation: not part of it. */
const SESSION_FACT = /^(?:session status|time spent|problem domain):/i;

/** The value of the first line matching `label`, unless it only says nothing was given. */
function labelled(messages: ChatMessage[], label: RegExp): string | undefined {
  for (const m of messages) {
    if (m.role !== 'user') continue;
    for (const line of messageText(m).split('\n')) {
      const value = label.exec(line.trim())?.[1]?.trim();
      if (value && !/^not specified$/i.test(value)) return value;
    }
  }
  return undefined;
}

/** Whether the request asks for ticket/session notes or sectioned documentation. */
export function isTicketNotesRequest(request: ChatRequest): boolean {
  const prompt = promptText(request.messages);
  return (
    /\b(?:ticket|session|support)\s+(?:notes?|summary|documentation)\b/i.test(prompt) ||
    /problem summary/i.test(prompt) ||
    (/\bdocument(?:ation)?\b/i.test(prompt) && /\bsections?\b/i.test(prompt))
  );
}

/** Conversation lines (speaker prefixes like "Customer:" removed), skipping system prompts and instructions. */
export function conversationLines(messages: ChatMessage[]): string[] {
  return messages
    .filter((m) => m.role === 'user' || m.role === 'assistant')
    .flatMap((m) => messageText(m).split('\n'))
    .map((line) => line.trim())
    .filter(
      (line) => line && !INSTRUCTION.test(line) && !RESOLUTION_LABEL.test(line) && !PROBLEM_LABEL.test(line) && !SESSION_FACT.test(line),
    )
    .map((line) => line.replace(/^[\w .'-]{1,24}:\s+/, '').trim())
    .filter(Boolean);
}

/**
 * Markdown notes with exactly the four {@link TICKET_NOTE_SECTIONS}: the prompt's problem summary
 * (else the first line) states the problem, its resolution summary (else the last "fixed"-sounding
 * line) is the resolution, follow-up lines are next steps and everything else is a step taken.
 */
export function writeTicketNotes(messages: ChatMessage[]): string {
  const lines = conversationLines(messages);
  const givenProblem = labelled(messages, PROBLEM_LABEL);
  const [first, ...others] = lines;
  const problem = givenProblem ?? first;
  const rest = givenProblem ? lines : others;
  const resolution = labelled(messages, RESOLUTION_LABEL) ?? [...rest].reverse().find((l) => RESOLVED.test(l));
  const next = rest.filter((l) => l !== resolution && FOLLOW_UP.test(l));
  const steps = rest.filter((l) => l !== resolution && !next.includes(l));
  const bullets = (items: string[], empty: string): string => (items.length > 0 ? items : [empty]).map((i) => `- ${i}`).join('\n');
  return [
    `## ${TICKET_NOTE_SECTIONS[0]}\n${problem ?? 'No conversation was provided.'}`,
    `## ${TICKET_NOTE_SECTIONS[1]}\n${bullets(steps, 'No troubleshooting steps were recorded.')}`,
    `## ${TICKET_NOTE_SECTIONS[2]}\n${resolution ?? 'Not resolved yet.'}`,
    `## ${TICKET_NOTE_SECTIONS[3]}\n${bullets(next, resolution ? 'No further action needed.' : 'Continue troubleshooting with the customer.')}`,
  ].join('\n\n');
}

/** Ticket notes as the turn's text. */
export function ticketNotesTurn(request: ChatRequest): ChatTurn {
  return { text: writeTicketNotes(request.messages) };
}

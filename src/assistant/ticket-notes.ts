/** The sections ticket notes must have, in this order. */
export const NOTE_SECTIONS = ['Problem Summary', 'Steps Taken', 'Resolution', 'Next Steps'] as const;

/** A session message as the notes see it. */
export interface NotesMessage {
  role: 'user' | 'assistant' | 'tool';
  content: string;
}

/** Whether `text` has exactly the four `## ` section headings, in order (other `## ` headings fail it). */
export function hasNoteSections(text: string): boolean {
  const headings = text
    .split(/\r?\n/)
    .filter((line) => /^##(?!#)/.test(line))
    .map((line) => line.replace(/^##\s*/, '').trim());
  return headings.length === NOTE_SECTIONS.length && headings.every((heading, i) => heading === NOTE_SECTIONS[i]);
}

const oneLine = (text: string, max = 300) => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

/**
 * The deterministic notes used when the model's text lacks the sections: one body per section. An
 * escalated session's Resolution says it was escalated, and why.
 */
export function templateSections(
  messages: NotesMessage[],
  resolutionSummary?: string | null,
  escalation?: { reason: string | null },
): string[] {
  const users = messages.filter((m) => m.role === 'user');
  const replies = messages.filter((m) => m.role === 'assistant');
  const problem = users[0] ? oneLine(users[0].content) : 'No conversation was recorded.';
  const steps = [
    ...users.slice(1).map((m) => `Customer: ${oneLine(m.content, 200)}`),
    ...replies.map((m) => `Assistant: ${oneLine(m.content, 200)}`),
  ];
  const resolution = escalation
    ? `Escalated${escalation.reason?.trim() ? `: ${oneLine(escalation.reason, 1_000)}` : ' without a reason.'}`
    : resolutionSummary?.trim()
      ? oneLine(resolutionSummary, 1_000)
      : 'Marked resolved without a summary.';
  return [
    problem,
    (steps.length ? steps : ['No troubleshooting steps were recorded.']).map((s) => `- ${s}`).join('\n'),
    resolution,
    '- No further action needed unless the customer reports the problem again.',
  ];
}

/** The whole deterministic notes document. */
export function templateNotes(messages: NotesMessage[], resolutionSummary?: string | null): string {
  return completeFrom(0, templateSections(messages, resolutionSummary));
}

/** The template's sections from `index` on, as markdown. */
const completeFrom = (index: number, bodies: string[]) =>
  NOTE_SECTIONS.slice(index)
    .map((name, i) => `## ${name}\n${bodies[index + i]}`)
    .join('\n\n');

/**
 * Lets the model's streamed text through while it is still a valid prefix of four-section notes,
 * so listeners see the model live, and completes it from the template when the model strays: a
 * wrong or out-of-order `## ` heading, text before the first heading, or missing sections at the
 * end. What was forwarded plus {@link end}'s completion is exactly the stored document.
 *
 * Lines starting with `#` are held until complete (a heading is judged whole); other lines pass
 * through as they arrive.
 */
export class NotesGate {
  private expected = 0;
  private held = '';
  private inBody = false;
  private failed = false;
  private forwarded = '';

  /** Feeds a model chunk; returns the text to forward now (possibly empty). */
  push(chunk: string): string {
    if (this.failed) return '';
    let out = '';
    for (const c of chunk) {
      if (this.failed) break;
      if (this.inBody) {
        out += c;
        if (c === '\n') this.inBody = false;
        continue;
      }
      if (c === '\n') {
        out += this.acceptLine(this.held, '\n');
        this.held = '';
        continue;
      }
      this.held += c;
      if (this.held.startsWith('#') || this.held.trim() === '') continue;
      // A body line: allowed once the first heading is out.
      if (this.expected === 0) this.failed = true;
      else {
        out += this.held;
        this.held = '';
        this.inBody = true;
      }
    }
    this.forwarded += out;
    return out;
  }

  /** Ends the stream: the text still to forward, the final notes, and whether the template filled in. */
  end(fallbackBodies: string[]): { tail: string; notes: string; completed: boolean } {
    let tail = '';
    if (!this.failed && this.held) tail += this.acceptLine(this.held, '');
    this.held = '';
    if (!this.failed && this.expected === NOTE_SECTIONS.length) {
      this.forwarded += tail;
      return { tail, notes: this.forwarded, completed: false };
    }
    const sofar = this.forwarded + tail;
    const separator = sofar.trim() === '' ? '' : sofar.endsWith('\n\n') ? '' : sofar.endsWith('\n') ? '\n' : '\n\n';
    // An unfinished heading was never forwarded, so the completion starts at the next section.
    tail += separator + completeFrom(this.expected, fallbackBodies);
    this.forwarded += tail;
    return { tail, notes: this.forwarded, completed: true };
  }

  private acceptLine(line: string, newline: string): string {
    if (line.trim() === '') return this.expected === 0 ? '' : line + newline;
    if (/^##(?!#)/.test(line)) {
      if (this.expected < NOTE_SECTIONS.length && line.replace(/^##\s*/, '').trim() === NOTE_SECTIONS[this.expected]) {
        this.expected += 1;
        return line + newline;
      }
      this.failed = true;
      return '';
    }
    if (this.expected === 0) {
      this.failed = true;
      return '';
    }
    return line + newline;
  }
}

/** What resolving a session leaves besides the markdown: the problem, the steps taken, the resolution. */
export interface ResolutionOutputs {
  problemSummary: string;
  diagnosticSteps: Array<{ description: string }>;
  /** The summary the user gave when resolving, else the notes' Resolution section. */
  resolutionSummary: string;
}

/** The body of each of the four sections of `notes` (empty for a section it lacks). */
function sectionBodies(notes: string): string[] {
  const bodies: string[] = NOTE_SECTIONS.map(() => '');
  let current = -1;
  for (const line of notes.split(/\r?\n/)) {
    if (/^##(?!#)/.test(line)) {
      current = NOTE_SECTIONS.indexOf(line.replace(/^##\s*/, '').trim() as (typeof NOTE_SECTIONS)[number]);
      continue;
    }
    if (current >= 0) bodies[current] += `${line}\n`;
  }
  return bodies.map((body) => body.trim());
}

/**
 * The resolution outputs of stored notes: the Problem Summary section as the problem, each item of
 * Steps Taken (a bullet, or a line) as one diagnostic step, and the user's resolution summary or,
 * when they gave none, the Resolution section.
 */
export function resolutionOutputs(notes: string, givenSummary: string | null): ResolutionOutputs {
  const [problem, steps, resolution] = sectionBodies(notes);
  const diagnosticSteps = steps
    .split('\n')
    .map((line) => line.replace(/^\s*(?:[-*+]|\d+[.)])\s+/, '').trim())
    .filter(Boolean)
    .map((description) => ({ description }));
  return {
    problemSummary: problem,
    diagnosticSteps,
    resolutionSummary: givenSummary?.trim() ? givenSummary.trim() : resolution,
  };
}

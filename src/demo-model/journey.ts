import { messageText, type ChatRequest, type ChatTurn } from './openai-compatible-server';
import { offeredToolNames } from './conversation';

/**
 * The agent setup journey, played offline: ask about the topics the journey's system prompt lists
 * (the first one, file format, is asked by the server), skip a topic the user already covered,
 * and once the finish tool is offered and nothing is left to ask (or the user says that is all,
 * or the tool is forced) call it with a template composed from the answers. Deterministic.
 */

type Topic = 'format' | 'extract' | 'naming' | 'priority' | 'mapping' | 'extra';
const ASKED_IN_ORDER: Topic[] = ['extract', 'naming', 'priority', 'mapping'];

/** Words that show an answer already covered a topic, so it is not asked again. */
const COVERS: Record<Exclude<Topic, 'format' | 'extra'>, RegExp> = {
  extract: /\b(?:extract\w*|pull out|action items?|todos?|to-dos?|deadlines?|decisions?)\b/i,
  naming: /\b(?:nam(?:e|es|ed|ing)|titles?|prefix(?:es|ed)?|conventions?)\b/i,
  priority: /\b(?:priorit(?:y|ies|ise|ize)|urgent|asap|important|critical)\b/i,
  mapping: /\b(?:map(?:s|ped|ping)?|belongs? to|goes? to|assign(?:ed)? to)\b|->|→/i,
};
/** An answer that closes the conversation ("no", "that's all", "nothing else"). */
const NOTHING_MORE = /^\s*(?:no|nope|none|nothing(?: else)?|that'?s (?:all|it)|all good|no,? that'?s (?:all|it))\b[\s.!]*$/i;

const KNOWN_TYPES = ['tasks', 'notes', 'checkpoints', 'projects'] as const;

/** Whether the request is a journey turn: the journey's system prompt is there. */
export function isJourneyRequest(request: ChatRequest): boolean {
  return request.messages.some(
    (m) => (m.role === 'system' || m.role === 'developer') && /configuring a data extraction agent/i.test(messageText(m)),
  );
}

interface JourneyContext {
  agentType: 'local' | 'cloud';
  dataTypes: string[];
  answers: string[];
}

function contextOf(request: ChatRequest): JourneyContext {
  const system = request.messages
    .filter((m) => m.role === 'system' || m.role === 'developer')
    .map(messageText)
    .join('\n');
  const agentType = /agent type:\s*cloud/i.test(system) ? 'cloud' : 'local';
  const listed = /data types to extract:\s*([^\n]+)/i.exec(system)?.[1] ?? '';
  const dataTypes = KNOWN_TYPES.filter((type) => new RegExp(`\\b${type}\\b`, 'i').test(listed));
  const answers = request.messages.filter((m) => m.role === 'user').map((m) => messageText(m).trim());
  return { agentType, dataTypes: dataTypes.length > 0 ? [...dataTypes] : ['tasks'], answers };
}

/**
 * The topic each answer replied to: the first answer to the server's format question, each later
 * one to the question asked after the answer before it. `next` is the topic to ask now.
 */
export function planJourney(answers: string[]): { topics: Topic[]; next: Topic | undefined } {
  const topics: Topic[] = [];
  const asked = new Set<Topic>(['format']);
  let next: Topic | undefined = 'format';
  for (let i = 0; i < answers.length; i += 1) {
    topics.push(next ?? 'extra');
    const said = answers.slice(0, i + 1).join('\n');
    next = ASKED_IN_ORDER.find((topic) => !asked.has(topic) && !COVERS[topic as keyof typeof COVERS].test(said));
    if (next) asked.add(next);
  }
  return { topics, next };
}

const list = (items: string[]) => (items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`);

function question(topic: Topic | undefined, context: JourneyContext): string {
  const them = context.agentType === 'local' ? 'those files' : 'those messages';
  switch (topic) {
    case 'extract':
      return `Which ${list(context.dataTypes)} should I pull out of ${them}, and how do I recognise one? (e.g. lines starting with "TODO", action items in meeting notes)`;
    case 'naming':
      return 'Are there naming conventions I should follow? (e.g. how titles are worded, project or client codes in file names or subjects)';
    case 'priority':
      return 'How should I set priority? (e.g. "urgent" or "ASAP" means high priority)';
    case 'mapping':
      return 'Any special mapping? (e.g. a folder, sender or tag that belongs to a particular project or client)';
    default:
      return 'Anything else I should know, such as things to ignore or how to read dates?';
  }
}

const LABELS: Record<Topic, string> = {
  format: 'Source material',
  extract: 'What to extract',
  naming: 'Naming conventions',
  priority: 'Priority rules',
  mapping: 'Special mapping',
  extra: 'Also',
};

const oneLine = (text: string) => {
  const line = text
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[.\s]+$/, '');
  return line.length > 500 ? `${line.slice(0, 499)}…` : line;
};

/** A prompt template for the extraction model, from the answers and the data types. */
export function composeDemoTemplate(context: JourneyContext): string {
  const source = context.agentType === 'local' ? 'each file' : 'each email or message';
  const { topics } = planJourney(context.answers);
  const told = context.answers
    .map((answer, i) => ({ label: LABELS[topics[i]], answer: oneLine(answer) }))
    .filter(({ answer }) => answer && !NOTHING_MORE.test(answer))
    .map(({ label, answer }) => `${label}: ${answer}.`);
  const perType: Record<string, string> = {
    tasks: `Extract tasks from ${source}: one task per action to take, titled with the action in a few words. If the text says 'urgent' or 'ASAP', set priority to high; otherwise medium. Extract due dates if mentioned.`,
    notes: `Extract notes from ${source}: decisions, facts and summaries worth keeping, titled with their subject, content in the author's words.`,
    checkpoints: `Extract checkpoints from ${source}: milestones and deliverables, with their target date when one is given.`,
    projects: `Extract projects from ${source}: projects or clients mentioned by name; reuse existing names exactly.`,
  };
  return [
    `Extract ${list(context.dataTypes)} for a freelancer from ${source}${context.agentType === 'local' ? ' in the monitored directories' : ''}.`,
    ...told,
    ...context.dataTypes.map((type) => perType[type]),
    'Only extract what the text supports; skip anything uncertain.',
  ].join('\n');
}

/** A journey turn: the next question, or the finish tool call with the template. */
export function journeyTurn(request: ChatRequest): ChatTurn {
  const context = contextOf(request);
  const forced = typeof request.tool_choice === 'object' ? request.tool_choice.function?.name : undefined;
  const finishTool = forced ?? [...offeredToolNames(request)].find((name) => /finish|complete/i.test(name));
  const { next } = planJourney(context.answers);
  const last = context.answers[context.answers.length - 1] ?? '';
  const wantsToFinish = forced !== undefined || next === undefined || NOTHING_MORE.test(last);
  if (finishTool && request.tool_choice !== 'none' && wantsToFinish) {
    return {
      toolCalls: [
        {
          name: finishTool,
          args: {
            promptTemplate: composeDemoTemplate(context),
            message:
              "Here's your configuration, drafted by the offline demo model from your answers. Review the prompt template and edit it if needed.",
          },
        },
      ],
    };
  }
  return { text: question(next, context) };
}

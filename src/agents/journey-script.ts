import { z } from 'zod';

/**
 * The fixed parts of the agent setup journey: the rules the server enforces, the
 * questions it asks itself, the system prompt, and the template it composes when the model's is
 * unusable. Pure: loaded by the API (no LangChain) and by the worker.
 */

export const JOURNEY_AGENT_TYPES = ['local', 'cloud'] as const;
export type JourneyAgentType = (typeof JOURNEY_AGENT_TYPES)[number];
/** The data types an agent may extract. */
export const JOURNEY_DATA_TYPES = ['tasks', 'notes', 'checkpoints', 'projects'] as const;
export type JourneyDataType = (typeof JOURNEY_DATA_TYPES)[number];

/** The model may finish only from the user's third answer on… */
export const MIN_ANSWERS = 3;
/** …and at the fifth the server makes it finish. */
export const MAX_ANSWERS = 5;
/** Longest answer the journey takes. */
export const MAX_ANSWER_CHARS = 4_000;
/** Longest prompt template accepted (bounds prompts at 8, 000 characters). */
export const MAX_PROMPT_TEMPLATE_CHARS = 8_000;
/** Shortest template worth keeping: anything shorter cannot say what to extract. */
export const MIN_PROMPT_TEMPLATE_CHARS = 20;
/** Longest question or closing message kept from the model. */
export const MAX_REPLY_CHARS = 2_000;

/** The tool the model calls to end the journey. */
export const FINISH_TOOL = 'finish_configuration';

/** Arguments of {@link FINISH_TOOL} as offered to the model. */
export const finishArgsSchema = z.object({
  promptTemplate: z
    .string()
    .describe('The complete instruction for the extraction model: what to extract, titles, priority rules, dates, mappings.'),
  message: z.string().describe('A short message to the user presenting the configuration.'),
});

/** A template the server keeps: trimmed, at least a sentence, within the prompt bound. */
export const promptTemplateSchema = z.string().trim().min(MIN_PROMPT_TEMPLATE_CHARS).max(MAX_PROMPT_TEMPLATE_CHARS);

/** From the seed (Step 3.5), word for word. */
export const JOURNEY_SYSTEM_PROMPT =
  'You are configuring a data extraction agent for a freelancer. Ask about file format, what data to extract (tasks, notes, checkpoints), naming conventions, priority rules, and any special mapping. After 3-5 questions, generate a detailed prompt_template.';

const SOURCES: Record<JourneyAgentType, string> = {
  local: "a local agent: it reads files in directories on the user's computer",
  cloud: "a cloud agent: it reads the user's emails and messages (Gmail, Outlook, Teams)",
};

/** The first question, asked by the server at start (no model call). */
export const FIRST_QUESTIONS: Record<JourneyAgentType, string> = {
  local: 'What kind of files are in the directories you want to monitor? (emails, documents, logs, etc.)',
  cloud: 'What kind of emails/messages should I look for? (client communications, invoices, meeting notes, etc.)',
};

/** Questions after answer 1..4, used when the model gives no usable question. */
export const FALLBACK_QUESTIONS = [
  'Which of these should I pull out of them, and what counts as one item (for example a line starting with TODO, or an action in a meeting note)?',
  'Are there naming conventions I should follow, for titles or for the project and client names that appear in them?',
  'How should I set priority? For example, should "urgent" or "ASAP" make a task high priority?',
  'Any special mapping, for example a folder, sender or tag that belongs to a particular project or client?',
] as const;

export const DONE_MESSAGE = "Here's your configuration. Review the prompt template below; you can edit it before you save the agent.";

/** What the model is told each turn: the seed's prompt, the agent it configures, and how to finish. */
export function journeySystemPrompt(agentType: JourneyAgentType, dataTypes: readonly JourneyDataType[]): string {
  return [
    JOURNEY_SYSTEM_PROMPT,
    '',
    `Agent type: ${agentType} (${SOURCES[agentType]}).`,
    `Data types to extract: ${dataTypes.join(', ')}.`,
    'Ask one short question at a time, building on the answers so far.',
    `Once the ${FINISH_TOOL} tool is offered and you have enough context, call it with promptTemplate (a detailed instruction for the extraction model: what to extract from each ${agentType === 'local' ? 'file' : 'email or message'}, how to title items, priority rules, due dates and mappings) and message (a short note to the user).`,
  ].join('\n');
}

/** Told at the last answer, with the tool forced. */
export const FINISH_NOW = `The user has answered ${MAX_ANSWERS} questions. Do not ask anything else: call ${FINISH_TOOL} now with the complete promptTemplate.`;

/** Told when the model tried to finish before the user's third answer. */
export const tooEarly = (answers: number) =>
  `It is too early to finish: the user has answered ${answers} question(s) and at least ${MIN_ANSWERS} answers are needed. Ask your next question now, as plain text.`;

const PER_TYPE: Record<JourneyDataType, string> = {
  tasks:
    "Tasks: one item per action someone has to take; the title is the action in a few words. Set priority to high when the text says 'urgent' or 'ASAP', otherwise medium unless the rules above say otherwise. Extract a due date when one is mentioned.",
  notes:
    "Notes: information worth keeping that is not an action (decisions, facts, meeting summaries); a short title and the content in the author's words.",
  checkpoints: 'Checkpoints: milestones or deliverables, with their target date when one is given.',
  projects: 'Projects: projects or client engagements mentioned by name; reuse an existing name exactly instead of creating a variant.',
};

/**
 * The template the server writes when the model gave none it could keep: the user's own answers,
 * each under the question it answers, then fixed guidance per data type.
 */
export function composeTemplate(input: {
  agentType: JourneyAgentType;
  dataTypes: readonly JourneyDataType[];
  exchanges: Array<{ question: string; answer: string }>;
}): string {
  const source = input.agentType === 'local' ? 'each file in the monitored directories' : 'each email or message';
  const lines = [
    `Extract ${listed(input.dataTypes)} for a freelancer from ${source}. Extract only these data types.`,
    '',
    'What the user told us while setting up this agent:',
    ...input.exchanges.map(({ question, answer }) => `- ${oneLine(question, 200)} → ${oneLine(answer, 1_000)}`),
    '',
    ...input.dataTypes.map((type) => PER_TYPE[type]),
    '',
    'Only extract what the text supports; skip anything you are unsure of rather than guess.',
  ];
  let template = lines.join('\n');
  // Five 1,000-character answers fit; this only guards the bound.
  if (template.length > MAX_PROMPT_TEMPLATE_CHARS) template = `${template.slice(0, MAX_PROMPT_TEMPLATE_CHARS - 1)}…`;
  return template;
}

const listed = (items: readonly string[]) =>
  items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;

const oneLine = (text: string, max: number) => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

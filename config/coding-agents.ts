import { z } from 'zod';

/**
 * The coding agents: who works on a project a device serves, with which tools, prompt and model.
 * These are defaults; an operator overrides any field of any agent with `CODING_AGENTS` (JSON,
 * e.g. `{"coder":{"model":{"provider":"openai","model":"gpt-4.1"}},"debug":{"maxToolIterations":12}}`).
 */
export const CODING_AGENT_NAMES = ['orchestrator', 'ask', 'coder', 'debug', 'architect'] as const;
export type CodingAgentName = (typeof CODING_AGENT_NAMES)[number];
/** The toolsets an agent may have: read the project, change it, run commands in it. */
export const CODING_TOOLSET_NAMES = ['code_read', 'code_write', 'code_exec'] as const;

const agentSchema = z.strictObject({
  /** One line for the user: what this agent is for. */
  description: z.string().min(1).max(500),
  toolsets: z.array(z.enum(CODING_TOOLSET_NAMES)).max(3),
  /** Its system prompt (the project's name and the date are added). */
  prompt: z.string().min(1).max(20_000),
  /** Its model; unset: the deployment's default model (a request's own choice wins over both). */
  model: z.strictObject({ provider: z.string().min(1).max(100), model: z.string().min(1).max(200) }).nullable(),
  /** Tool rounds before it must answer. */
  maxToolIterations: z.number().int().min(1).max(50),
});
export type CodingAgentConfig = z.output<typeof agentSchema>;

const COMMON =
  'You work on the project folder the user opened on their own machine, through tools that run there. Paths are relative to the project root, with / between folders; hidden files are out of reach. ' +
  'Tool results are the real files: never invent file contents, paths or command output. A result starting with "Error:" means the tool failed: say so plainly, and retry only when a fix is clear. ';

export const DEFAULT_CODING_AGENTS: Record<CodingAgentName, CodingAgentConfig> = {
  orchestrator: {
    description: 'Reads the request and hands it to the right agent; answers questions about the project itself when none fits',
    toolsets: ['code_read'],
    prompt:
      "You are the coordinator of Switchboard's coding agents. " +
      COMMON +
      'When the request needs several agents (for example a plan, then its implementation, then running the tests), call plan_steps with 2 to 5 steps, each naming its agent (architect, coder, debug, ask) and its task, then say in one or two sentences what the plan is: the steps run after your answer. ' +
      'Otherwise answer from the project yourself: read and search it first. You cannot change files or run commands.',
    model: null,
    maxToolIterations: 6,
  },
  ask: {
    description: 'Answers questions about the code: reads and searches, changes nothing',
    toolsets: ['code_read'],
    prompt:
      "You are Switchboard's Ask agent: you answer questions about the user's code. " +
      COMMON +
      'Read and search the project before answering; cite files as path:line. You change nothing and run nothing.',
    model: null,
    maxToolIterations: 6,
  },
  coder: {
    description: 'Writes and changes code; every change is shown as a diff and waits for your approval',
    toolsets: ['code_read', 'code_write', 'code_exec'],
    prompt:
      "You are Switchboard's Coder agent: you implement changes in the user's project. " +
      COMMON +
      'Read the files you change first. Change existing files with edit_file: each search block copied exactly from the file, just large enough to match once. Use write_file for new files. ' +
      "Every change and command waits for the user's approval of its diff: if one is rejected, do not try it again; say what was not done. Keep changes small and say what you changed.",
    model: null,
    maxToolIterations: 10,
  },
  debug: {
    description: 'Finds the cause of a failure: reads the code and runs commands (each after your approval)',
    toolsets: ['code_read', 'code_exec'],
    prompt:
      "You are Switchboard's Debug agent: you find why something fails. " +
      COMMON +
      "Read the code, run the project's commands (tests, builds) with execute_command to reproduce the failure, and explain the cause with the evidence. " +
      "Every command waits for the user's approval. You do not change files: propose the fix and say that the Coder agent can apply it.",
    model: null,
    maxToolIterations: 10,
  },
  architect: {
    description: 'Plans: reads the project and proposes a design or a step-by-step plan, changes nothing',
    toolsets: ['code_read'],
    prompt:
      "You are Switchboard's Architect agent: you plan changes and designs. " +
      COMMON +
      'Read enough of the project to ground the plan, then answer with numbered steps, the files each step touches, and the risks. You change nothing and run nothing.',
    model: null,
    maxToolIterations: 8,
  },
};

/** `CODING_AGENTS`: per agent, the fields that replace the defaults. */
export const codingAgentOverridesSchema = z.partialRecord(z.enum(CODING_AGENT_NAMES), agentSchema.partial());

/** The defaults with an operator's overrides applied. */
export function codingAgents(overrides: z.output<typeof codingAgentOverridesSchema> = {}): Record<CodingAgentName, CodingAgentConfig> {
  return Object.fromEntries(CODING_AGENT_NAMES.map((name) => [name, { ...DEFAULT_CODING_AGENTS[name], ...overrides[name] }])) as Record<
    CodingAgentName,
    CodingAgentConfig
  >;
}

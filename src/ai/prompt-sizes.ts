import type { PromptPart } from '../budget/budget-door';

/**
 * The fixed parts of first model calls, measured as the model gateway counts a prompt for its
 * reservation (UTF-8 bytes of the texts, and how many texts: see `promptTokenBound`). A request
 * reserves its job's first call before anything is written, in a process that never loads the
 * model client or the tool definitions, so the sizes of what the worker adds to the user's text
 * are kept here as numbers. test/unit/prompt-sizes.test.ts fails, with the numbers to put here,
 * when a system prompt or a tool definition changes.
 */

export type { PromptPart } from '../budget/budget-door';

/** The canvas turn's system prompt and block tools (src/ai/canvas-turn.ts): its first call is these plus the user's prompt. */
export const CANVAS_TURN_FIXED: PromptPart = { bytes: 3_499, texts: 9 };

/** The tool definitions of each assistant toolset (src/turns/device-tools.ts); a turn offers those of the toolsets it is routed to. */
export const ASSISTANT_TOOLSET_TOOLS: Readonly<Record<'task' | 'project' | 'checkpoint' | 'note', PromptPart>> = {
  task: { bytes: 4_355, texts: 8 },
  project: { bytes: 2_458, texts: 6 },
  checkpoint: { bytes: 2_026, texts: 4 },
  note: { bytes: 2_120, texts: 5 },
};

/** The canvas block tools a room thread's turn is offered (src/assistant/thread-tools.ts), beside its routed toolsets. */
export const THREAD_BLOCK_TOOLS: PromptPart = { bytes: 3_022, texts: 8 };

/** The tool definitions of each coding toolset (src/coding/code-tools.ts); a coding turn offers those of its agent's toolsets. */
export const CODING_TOOLSET_TOOLS: Readonly<Record<'code_read' | 'code_write' | 'code_exec', PromptPart>> = {
  code_read: { bytes: 1_983, texts: 3 },
  code_write: { bytes: 2_091, texts: 3 },
  code_exec: { bytes: 557, texts: 1 },
};

/** The Orchestrator's plan tool (src/coding/coding-plan.ts), offered with its own when it answers a request. */
export const CODING_PLAN_TOOL: PromptPart = { bytes: 775, texts: 1 };

/** The journey's finish tool (src/agents/journey-runner.ts), offered from the third answer on. */
export const JOURNEY_FINISH_TOOL: PromptPart = { bytes: 619, texts: 1 };

/** The extraction tool of agent runs (src/agents/extraction.ts), sent with every extraction call. */
export const EXTRACTION_TOOL_SIZE: PromptPart = { bytes: 677, texts: 1 };

/**
 * The UTF-8 bytes of each device tool's definition (src/turns/device-tools.ts), one text each: what an
 * agentflow node that names the tool is offered.
 */
export const DEVICE_TOOL_BYTES: Readonly<Record<string, number>> = {
  list_tasks: 575,
  create_task: 1_003,
  update_task: 1_046,
  delete_task: 333,
  list_tasks_due_today: 237,
  list_task_comments: 348,
  add_task_comment: 455,
  delete_task_comment: 358,
  list_projects: 472,
  list_all_projects: 252,
  get_project: 355,
  create_project: 389,
  update_project: 642,
  delete_project: 348,
  list_checkpoints: 358,
  create_checkpoint: 671,
  update_checkpoint: 634,
  delete_checkpoint: 363,
  list_notes: 508,
  get_note: 354,
  create_note: 476,
  update_note: 449,
  delete_note: 333,
};

/**
 * A flow's HTTP tool definition (src/flows/node-tools.ts) without its name and description: the
 * bytes of the rest (the argument schema every HTTP tool shares). The whole definition is this plus
 * the name and the description as JSON strings (src/flows/node-prompt.ts).
 */
export const HTTP_TOOL_FRAME_BYTES = 479;

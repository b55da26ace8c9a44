/**
 * The names of the device tools (the catalog in ./tools.ts), without their bodies: the API process
 * checks flow definitions against them and must not load the model layer to do it.
 */
export const DEVICE_TOOL_NAMES = [
  'list_tasks',
  'create_task',
  'update_task',
  'delete_task',
  'list_tasks_due_today',
  'list_task_comments',
  'add_task_comment',
  'delete_task_comment',
  'list_projects',
  'list_all_projects',
  'get_project',
  'create_project',
  'update_project',
  'delete_project',
  'list_checkpoints',
  'create_checkpoint',
  'update_checkpoint',
  'delete_checkpoint',
  'list_notes',
  'get_note',
  'create_note',
  'update_note',
  'delete_note',
] as const;

export const isDeviceToolName = (name: string): boolean => (DEVICE_TOOL_NAMES as readonly string[]).includes(name);

/** The coding assistant's toolsets: reading the project, changing it, running commands in it. */
export const CODE_TOOLSETS = ['code_read', 'code_write', 'code_exec'] as const;
export type CodeToolsetName = (typeof CODE_TOOLSETS)[number];

/**
 * The coding tools (./code-tools) by risk: `read` runs at once, `write` and `execute` wait for the
 * user's approval whatever the deployment's list of dangerous tools says.
 */
export const CODE_TOOL_RISK: Readonly<Record<string, 'read' | 'write' | 'execute'>> = {
  read_file: 'read',
  list_files: 'read',
  search_files: 'read',
  write_file: 'write',
  edit_file: 'write',
  delete_file: 'write',
  execute_command: 'execute',
};

/** A coding tool that changes the project or runs a command. */
export const isRiskyCodeTool = (name: string): boolean => {
  const risk = Object.hasOwn(CODE_TOOL_RISK, name) ? CODE_TOOL_RISK[name] : undefined;
  return risk === 'write' || risk === 'execute';
};

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

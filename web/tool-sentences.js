// Tool calls told in words: "delete_task wants to delete the task 3f2b…", with the arguments as a
// readable list. One sentence per device tool the assistant and agentflow nodes may call (the
// catalog in src/assistant/tools.ts); any other tool (a flow's HTTP tool, a tool a deployment
// adds) gets a plain "wants to run with these arguments".
import { el } from './blocks.js';

const quoted = (value) => (value === undefined || value === null || value === '' ? '' : `“${String(value)}”`);
const of = (label, value) => (value ? ` ${label} ${quoted(value)}` : '');

/** What each tool does, as the end of "<tool> wants to …", from its arguments. */
const SENTENCES = {
  list_tasks: (a) => `list your tasks${a.status ? ` that are ${a.status}` : ''}${of('matching', a.search)}`,
  create_task: (a) => `create a task ${quoted(a.title)}${of('in project', a.project_id)}`,
  update_task: (a) => `change the task ${quoted(a.task_id)}`,
  delete_task: (a) => `delete the task ${quoted(a.task_id)}`,
  list_tasks_due_today: () => 'list the tasks due today',
  list_task_comments: (a) => `list the comments on the task ${quoted(a.task_id)}`,
  add_task_comment: (a) => `comment on the task ${quoted(a.task_id)}`,
  delete_task_comment: (a) => `delete the task comment ${quoted(a.comment_id)}`,
  list_projects: (a) => `list your projects${a.include_archived ? ', archived ones included' : ''}${of('of client', a.client_id)}`,
  list_all_projects: () => 'list every project, archived ones included',
  get_project: (a) => `read the project ${quoted(a.project_id)}`,
  create_project: (a) => `create a project ${quoted(a.name)}`,
  update_project: (a) => `change the project ${quoted(a.project_id)}`,
  delete_project: (a) => `delete the project ${quoted(a.project_id)}`,
  list_checkpoints: (a) => `list the checkpoints${of('of project', a.project_id)}`,
  create_checkpoint: (a) => `create a checkpoint ${quoted(a.title)}${of('in project', a.project_id)}`,
  update_checkpoint: (a) => `change the checkpoint ${quoted(a.checkpoint_id)}`,
  delete_checkpoint: (a) => `delete the checkpoint ${quoted(a.checkpoint_id)}`,
  list_notes: (a) => `list your notes${of('about', a.query)}${of('of project', a.project_id)}`,
  get_note: (a) => `read the note ${quoted(a.note_id)}`,
  create_note: (a) => `create a note ${quoted(a.title)}`,
  update_note: (a) => `change the note ${quoted(a.note_id)}`,
  delete_note: (a) => `delete the note ${quoted(a.note_id)}`,
};

/** The device tools' names, as agentflow nodes may list them. */
export const DEVICE_TOOLS = Object.keys(SENTENCES);

/** "task_id" → "Task id", "dueDate" → "Due date". */
export function fieldLabel(key) {
  const words = String(key)
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .trim()
    .toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The end of "<tool> wants to …" for a call of `toolName` with `parameters`. */
export function toolAction(toolName, parameters) {
  const sentence = SENTENCES[toolName];
  const args = parameters && typeof parameters === 'object' ? parameters : {};
  return sentence ? sentence(args).replace(/\s+/g, ' ').trim() : 'run with these arguments';
}

/** "delete_task wants to delete the task “…”" as a heading element: the tool's name in code. */
export function toolSentence(toolName, parameters) {
  return el('strong', { class: 'tool-sentence' }, el('code', {}, toolName), ` wants to ${toolAction(toolName, parameters)}`);
}

/** One value as text: strings as they are, yes/no, lists joined, anything nested as compact JSON. */
function valueText(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'string') return value === '' ? '(empty)' : value;
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value) && value.every((item) => typeof item !== 'object' || item === null)) return value.join(', ') || '(none)';
  return JSON.stringify(value);
}

/** The arguments as a definition list (`Task id: 3f2b…`), one row per argument. */
export function argumentList(parameters, testid = 'tool-arguments') {
  const entries = Object.entries(parameters && typeof parameters === 'object' ? parameters : {});
  if (!entries.length) return el('p', { class: 'small', dataset: { testid } }, 'No arguments.');
  return el(
    'dl',
    { class: 'tool-arguments', dataset: { testid } },
    entries.flatMap(([key, value]) => [el('dt', {}, fieldLabel(key)), el('dd', { dataset: { key } }, valueText(value))]),
  );
}

import { z } from 'zod';
import type { DeviceAction, DeviceReply, DeviceTable, ToolCallInput } from '../schemas/device-protocol';
import { describeRedacted } from '../lib/redact-error';
import type { CodeToolsetName } from './tool-contract';
import {
  changes,
  defined,
  describeCheckpoint,
  describeComment,
  describeNote,
  describeProject,
  describeTask,
  flag,
  listText,
  toEpochMs,
  todayRange,
} from './tool-format';

import type { ToolsetName } from './tool-contract';

export { TOOLSETS, type ToolsetName } from './tool-contract';

/** Runs one operation on the device of the turn (the device channel's `callDevice` bound to user and device). */
export type DeviceCall = <A extends DeviceAction>(call: ToolCallInput & { action: A }) => Promise<DeviceReply<A>>;

/** What a tool may use besides the device: the text embedder (through the `embeddings` queue). */
export interface ToolContext {
  /** The vector of `text` (the model's embedding); throws when the embedding model fails. */
  embed?(text: string): Promise<number[]>;
  /** The parameters of the approval this call runs under (a change's `expectedHash`), when it waited for one. */
  approved?: Record<string, unknown>;
}

/** One assistant tool: what the model sees (name, description, zod schema) and what it does. */
export interface AssistantTool {
  name: string;
  toolset: ToolsetName | CodeToolsetName;
  description: string;
  schema: z.ZodObject;
  /** Returns readable text built from the device's reply; throws DeviceRpcError / ToolInputError. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each tool's args are its own schema's output; the catalog holds them all
  run(args: any, device: DeviceCall, context?: ToolContext): Promise<string>;
}

const id = (what: string) => z.string().min(1).max(128).describe(`The ${what}'s id`);
const optionalId = (what: string) => z.string().min(1).max(128).optional().describe(`The ${what}'s id`);
const title = z.string().trim().min(1).max(500);
const date = (what: string) =>
  z
    .union([z.string().max(40), z.number()])
    .nullable()
    .optional()
    .describe(`${what}: a date like 2026-03-01, or null to clear it`);
const taskStatus = z.enum(['todo', 'in_progress', 'done']);
const priority = z.enum(['high', 'medium', 'low']);
const assignees = z.array(z.string().min(1).max(200)).max(50).optional().describe('Names of the people assigned');

const define = <S extends z.ZodObject>(t: {
  name: string;
  toolset: ToolsetName;
  description: string;
  schema: S;
  run(args: z.infer<S>, device: DeviceCall, context?: ToolContext): Promise<string>;
}): AssistantTool => t;

/** A device row's field as text: strings as they are, anything else as JSON (never `[object Object]`). */
const asText = (value: unknown): string => (typeof value === 'string' ? value : (JSON.stringify(value) ?? ''));

/** Deletes the row `id` of `table` on the device and says whether there was one (`noun`: "Task", "Comment"). */
async function deleteRow(device: DeviceCall, table: DeviceTable, noun: string, id: string): Promise<string> {
  const { deleted } = await device({ action: 'delete', table, data: { id } });
  return deleted ? `${noun} ${id} deleted.` : `No ${noun.toLowerCase()} with id ${id} was found; nothing deleted.`;
}

/**
 * Embeds a note (title and content) and stores the vector on the device (`vector_upsert`), so
 * `list_notes {query}` finds it. A failure leaves the note saved and says so; it never fails the call.
 */
async function indexNote(row: Record<string, unknown>, device: DeviceCall, context?: ToolContext): Promise<string> {
  if (!context?.embed) return '';
  const content = asText(row.content ?? '');
  const title = asText(row.title ?? '');
  try {
    const vector = await context.embed(`${title}\n\n${content}`.trim());
    await device({
      action: 'vector_upsert',
      table: 'notes',
      data: defined({
        id: String(row.id),
        content,
        title,
        projectId: typeof row.projectId === 'string' ? row.projectId : undefined,
      }) as never,
      vector,
    });
    return '';
  } catch (error) {
    // The model (and the history the user reads) gets the kind of failure, not a provider's text.
    return ` (saved, but not indexed for search: ${describeRedacted(error)})`;
  }
}

/** The 23 tools. Field names sent to the device are camelCase; the device adds ids and timestamps. */
export const ASSISTANT_TOOLS: AssistantTool[] = [
  // Tasks (8)
  define({
    name: 'list_tasks',
    toolset: 'task',
    description:
      "List the user's tasks, optionally filtered by project, status or a text search, and ordered by a field (prefix - for descending).",
    schema: z.object({
      project_id: optionalId('project'),
      status: taskStatus.optional(),
      search: z.string().max(200).optional(),
      order_by: z.string().max(64).optional(),
    }),
    run: async (a, device) => {
      const { rows } = await device({
        action: 'select',
        table: 'tasks',
        filters: defined({ projectId: a.project_id, status: a.status, search: a.search, orderBy: a.order_by }) as Record<string, string>,
      });
      return listText(rows, 'task', describeTask);
    },
  }),
  define({
    name: 'create_task',
    toolset: 'task',
    description: 'Create a task.',
    schema: z.object({
      title,
      description: z.string().max(20_000).optional(),
      status: taskStatus.default('todo'),
      priority: priority.default('medium'),
      assignees,
      due_date: date('Due date'),
      project_id: optionalId('project'),
      is_ai_suggested: z.boolean().optional(),
      is_approved: z.boolean().optional(),
    }),
    run: async (a, device) => {
      const data = defined({
        title: a.title,
        description: a.description,
        status: a.status,
        priority: a.priority,
        assignee: a.assignees ? JSON.stringify(a.assignees) : undefined,
        dueDate: toEpochMs(a.due_date, 'due_date'),
        projectId: a.project_id,
        isAiSuggested: flag(a.is_ai_suggested),
        isApproved: flag(a.is_approved),
      });
      const { row } = await device({ action: 'insert', table: 'tasks', data });
      return `Task created: '${String(row.title)}' (id: ${row.id}, status: ${String(row.status)}, priority: ${String(row.priority)})`;
    },
  }),
  define({
    name: 'update_task',
    toolset: 'task',
    description: 'Change fields of a task (title, description, status, priority, assignees, due date, project).',
    schema: z.object({
      task_id: id('task'),
      title: title.optional(),
      description: z.string().max(20_000).optional(),
      status: taskStatus.optional(),
      priority: priority.optional(),
      assignees,
      due_date: date('Due date'),
      project_id: optionalId('project'),
    }),
    run: async (a, device) => {
      const updates = changes(
        {
          title: a.title,
          description: a.description,
          status: a.status,
          priority: a.priority,
          assignee: a.assignees ? JSON.stringify(a.assignees) : undefined,
          dueDate: toEpochMs(a.due_date, 'due_date'),
          projectId: a.project_id,
        },
        'task',
      );
      const { row } = await device({ action: 'update', table: 'tasks', data: { id: a.task_id, updates } });
      return `Task updated: ${describeTask(row)}`;
    },
  }),
  define({
    name: 'delete_task',
    toolset: 'task',
    description: 'Delete a task by id.',
    schema: z.object({ task_id: id('task') }),
    run: (a, device) => deleteRow(device, 'tasks', 'Task', a.task_id),
  }),
  define({
    name: 'list_tasks_due_today',
    toolset: 'task',
    description: 'List the tasks due today.',
    schema: z.object({}),
    run: async (_a, device) => {
      const { from, to } = todayRange();
      const { rows } = await device({ action: 'select', table: 'tasks', filters: { dueDateFrom: from, dueDateTo: to } });
      return listText(rows, 'task', describeTask, 'No tasks are due today.');
    },
  }),
  define({
    name: 'list_task_comments',
    toolset: 'task',
    description: 'List the comments on a task.',
    schema: z.object({ task_id: id('task') }),
    run: async (a, device) =>
      listText(
        (await device({ action: 'select', table: 'taskComments', filters: { taskId: a.task_id } })).rows,
        'comment',
        describeComment,
        `Task ${a.task_id} has no comments.`,
      ),
  }),
  define({
    name: 'add_task_comment',
    toolset: 'task',
    description: 'Add a comment to a task.',
    schema: z.object({ task_id: id('task'), content: z.string().trim().min(1).max(20_000), author: z.string().max(200).optional() }),
    run: async (a, device) => {
      const { row } = await device({
        action: 'insert',
        table: 'taskComments',
        data: defined({ taskId: a.task_id, content: a.content, author: a.author }),
      });
      return `Comment added to task ${a.task_id} (id: ${row.id}).`;
    },
  }),
  define({
    name: 'delete_task_comment',
    toolset: 'task',
    description: 'Delete a task comment by id.',
    schema: z.object({ comment_id: id('comment') }),
    run: (a, device) => deleteRow(device, 'taskComments', 'Comment', a.comment_id),
  }),

  // Projects (6)
  define({
    name: 'list_projects',
    toolset: 'project',
    description: 'List projects, optionally of one client; archived ones only when include_archived is true.',
    schema: z.object({ client_id: optionalId('client'), include_archived: z.boolean().default(false) }),
    run: async (a, device) =>
      listText(
        (
          await device({
            action: 'select',
            table: 'projects',
            filters: defined({ clientId: a.client_id, includeArchived: a.include_archived }) as Record<string, string | boolean>,
          })
        ).rows,
        'project',
        describeProject,
      ),
  }),
  define({
    name: 'list_all_projects',
    toolset: 'project',
    description: 'List every project, archived ones included.',
    schema: z.object({}),
    run: async (_a, device) =>
      listText((await device({ action: 'select', table: 'projects' })).rows, 'project', describeProject, 'There are no projects.'),
  }),
  define({
    name: 'get_project',
    toolset: 'project',
    description: 'Get one project with its details.',
    schema: z.object({ project_id: id('project') }),
    run: async (a, device) => {
      const { row } = await device({ action: 'get', table: 'projects', data: { id: a.project_id } });
      return row
        ? `Project ${describeProject(row)}${row.aiSummary ? `\nSummary: ${asText(row.aiSummary)}` : ''}`
        : `Project ${a.project_id} not found.`;
    },
  }),
  define({
    name: 'create_project',
    toolset: 'project',
    description: 'Create a project.',
    schema: z.object({ name: title, client_id: optionalId('client') }),
    run: async (a, device) => {
      const { row } = await device({ action: 'insert', table: 'projects', data: defined({ name: a.name, clientId: a.client_id }) });
      return `Project created: '${String(row.name)}' (id: ${row.id}, status: ${asText(row.status ?? 'active')})`;
    },
  }),
  define({
    name: 'update_project',
    toolset: 'project',
    description: 'Change a project (name, status active/archived, summary, client).',
    schema: z.object({
      project_id: id('project'),
      name: title.optional(),
      status: z.enum(['active', 'archived']).optional(),
      ai_summary: z.string().max(20_000).optional(),
      client_id: optionalId('client'),
    }),
    run: async (a, device) => {
      const updates = changes({ name: a.name, status: a.status, aiSummary: a.ai_summary, clientId: a.client_id }, 'project');
      return `Project updated: ${describeProject((await device({ action: 'update', table: 'projects', data: { id: a.project_id, updates } })).row)}`;
    },
  }),
  define({
    name: 'delete_project',
    toolset: 'project',
    description: 'Delete a project by id.',
    schema: z.object({ project_id: id('project') }),
    run: (a, device) => deleteRow(device, 'projects', 'Project', a.project_id),
  }),

  // Checkpoints (4)
  define({
    name: 'list_checkpoints',
    toolset: 'checkpoint',
    description: 'List checkpoints (milestones), optionally of one project.',
    schema: z.object({ project_id: optionalId('project') }),
    run: async (a, device) =>
      listText(
        (
          await device({
            action: 'select',
            table: 'checkpoints',
            filters: defined({ projectId: a.project_id, orderBy: 'date' }) as Record<string, string>,
          })
        ).rows,
        'checkpoint',
        describeCheckpoint,
      ),
  }),
  define({
    name: 'create_checkpoint',
    toolset: 'checkpoint',
    description: 'Create a checkpoint (milestone) in a project.',
    schema: z.object({
      project_id: id('project'),
      title,
      date: date('Date'),
      is_ai_suggested: z.boolean().optional(),
      is_approved: z.boolean().optional(),
    }),
    run: async (a, device) => {
      const data = defined({
        projectId: a.project_id,
        title: a.title,
        date: toEpochMs(a.date, 'date'),
        isAiSuggested: flag(a.is_ai_suggested),
        isApproved: flag(a.is_approved),
      });
      const { row } = await device({ action: 'insert', table: 'checkpoints', data });
      return `Checkpoint created: ${describeCheckpoint(row)}`;
    },
  }),
  define({
    name: 'update_checkpoint',
    toolset: 'checkpoint',
    description: 'Change a checkpoint (title, date, approval).',
    schema: z.object({ checkpoint_id: id('checkpoint'), title: title.optional(), date: date('Date'), is_approved: z.boolean().optional() }),
    run: async (a, device) => {
      const updates = changes({ title: a.title, date: toEpochMs(a.date, 'date'), isApproved: flag(a.is_approved) }, 'checkpoint');
      return `Checkpoint updated: ${describeCheckpoint((await device({ action: 'update', table: 'checkpoints', data: { id: a.checkpoint_id, updates } })).row)}`;
    },
  }),
  define({
    name: 'delete_checkpoint',
    toolset: 'checkpoint',
    description: 'Delete a checkpoint by id.',
    schema: z.object({ checkpoint_id: id('checkpoint') }),
    run: (a, device) => deleteRow(device, 'checkpoints', 'Checkpoint', a.checkpoint_id),
  }),

  // Notes (5). Created and updated notes are embedded and vector_upserted on the device.
  define({
    name: 'list_notes',
    toolset: 'note',
    description: 'List notes, optionally of one project; with query, find the notes about that topic (semantic search, best first).',
    schema: z.object({
      project_id: optionalId('project'),
      query: z.string().trim().min(1).max(500).optional().describe('Find notes about this topic'),
    }),
    run: async (a, device, context) => {
      const filters = defined({ projectId: a.project_id }) as Record<string, string>;
      if (!a.query || !context?.embed)
        return listText((await device({ action: 'select', table: 'notes', filters })).rows, 'note', describeNote);
      const vector = await context.embed(a.query);
      const { results } = await device({ action: 'vector_search', table: 'notes', vector, filters, limit: 10 });
      if (!results.length) return `No notes found about "${a.query}".`;
      return `Found ${results.length} note(s) about "${a.query}", best match first:\n${results.map((r) => `- ${describeNote(r as never)} (score: ${r.score.toFixed(2)})`).join('\n')}`;
    },
  }),
  define({
    name: 'get_note',
    toolset: 'note',
    description: 'Get one note with its full markdown content.',
    schema: z.object({ note_id: id('note') }),
    run: async (a, device) => {
      const { row } = await device({ action: 'get', table: 'notes', data: { id: a.note_id } });
      return row ? `Note ${describeNote(row)}\n\n${asText(row.content ?? '')}` : `Note ${a.note_id} not found.`;
    },
  }),
  define({
    name: 'create_note',
    toolset: 'note',
    description: 'Create a note (markdown content).',
    schema: z.object({ title, content: z.string().max(100_000).default(''), project_id: optionalId('project') }),
    run: async (a, device, context) => {
      const { row } = await device({
        action: 'insert',
        table: 'notes',
        data: defined({ title: a.title, content: a.content, projectId: a.project_id }),
      });
      return `Note created: '${String(row.title)}' (id: ${row.id})${await indexNote(row, device, context)}`;
    },
  }),
  define({
    name: 'update_note',
    toolset: 'note',
    description: "Change a note's title or content.",
    schema: z.object({ note_id: id('note'), title: title.optional(), content: z.string().max(100_000).optional() }),
    run: async (a, device, context) => {
      const updates = changes({ title: a.title, content: a.content }, 'note');
      const { row } = await device({ action: 'update', table: 'notes', data: { id: a.note_id, updates } });
      return `Note updated: ${describeNote(row)}${await indexNote(row, device, context)}`;
    },
  }),
  define({
    name: 'delete_note',
    toolset: 'note',
    description: 'Delete a note by id.',
    schema: z.object({ note_id: id('note') }),
    run: (a, device) => deleteRow(device, 'notes', 'Note', a.note_id),
  }),
];

export const TOOLS_BY_NAME = new Map(ASSISTANT_TOOLS.map((t) => [t.name, t]));

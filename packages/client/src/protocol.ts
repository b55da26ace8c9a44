import { z } from 'zod';
import { CODE_ACTIONS, codeCallShapes as code, codeReplySchemas, deviceProjectSchema } from './code-protocol';

export * from './code-protocol';

/**
 * The `/device` wire protocol: the server asks a device to run a CRUD or
 * vector operation on its local database with `tool_call`, and the device answers through the
 * Socket.IO ack. One zod schema per payload, used by the server before emitting, by the device
 * simulator on receipt, and by the server again on the reply.
 *
 * Field names are camelCase (the device's Drizzle schema maps them to snake_case). The device
 * owns ids and timestamps: `insert` data never carries `id`, `createdAt` or `updatedAt`.
 */

/** The table actions, then the project actions of the coding assistant (./code-protocol). */
export const DEVICE_ACTIONS = ['select', 'get', 'insert', 'update', 'delete', 'vector_upsert', 'vector_search', ...CODE_ACTIONS] as const;
export type DeviceAction = (typeof DEVICE_ACTIONS)[number];

export const DEVICE_TABLES = ['tasks', 'projects', 'checkpoints', 'notes', 'taskComments', 'clients'] as const;
export type DeviceTable = (typeof DEVICE_TABLES)[number];

/** What a device calls itself in the handshake: 1-128 of `[A-Za-z0-9._:-]`. */
export const deviceIdSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'deviceId must be 1-128 characters of A-Z a-z 0-9 . _ : -');

/** Fields the device sets itself; rejected in `insert` data and in `update` changes. */
export const DEVICE_OWNED_FIELDS = ['id', 'createdAt', 'updatedAt'] as const;

const refId = z.string().min(1).max(128);
const flag = z.union([z.literal(0), z.literal(1)]);
const epochMs = z.number().int().nonnegative();
const line = z.string().min(1).max(500);
const longText = z.string().max(100_000);

/** Columns of the device's local tables ("SQLite Schema Reference"), without the device-owned ones. */
const COLUMNS: Record<DeviceTable, { shape: Record<string, z.ZodType>; required: string[] }> = {
  tasks: {
    shape: {
      projectId: refId.nullable(),
      title: line,
      description: longText.nullable(),
      status: z.enum(['todo', 'in_progress', 'done']),
      priority: z.enum(['high', 'medium', 'low']),
      /** A JSON array string on the device; an array of names is accepted too. */
      assignee: z.union([z.string().max(2_000), z.array(z.string().max(200)).max(50)]).nullable(),
      dueDate: epochMs.nullable(),
      isAiSuggested: flag,
      isApproved: flag,
    },
    required: ['title'],
  },
  projects: {
    shape: {
      clientId: refId.nullable(),
      name: line,
      status: z.enum(['active', 'archived']),
      aiSummary: longText.nullable(),
      isAiSuggested: flag,
      isApproved: flag,
    },
    required: ['name'],
  },
  checkpoints: {
    shape: { projectId: refId, title: line, date: epochMs.nullable(), isAiSuggested: flag, isApproved: flag },
    required: ['projectId', 'title'],
  },
  notes: {
    shape: { projectId: refId.nullable(), title: line, content: longText, isAiSuggested: flag, isApproved: flag },
    required: ['title'],
  },
  taskComments: {
    shape: { taskId: refId, author: z.string().max(200).nullable(), content: z.string().min(1).max(20_000) },
    required: ['taskId', 'content'],
  },
  clients: { shape: { parentId: refId.nullable(), name: line, industry: z.string().max(200).nullable() }, required: ['name'] },
};

const ownedFieldsCheck = (what: string) => (data: Record<string, unknown>, ctx: z.RefinementCtx) => {
  for (const field of DEVICE_OWNED_FIELDS) {
    if (field in data)
      ctx.addIssue({ code: 'custom', path: [field], message: `${field} is set by the device and may not be sent in ${what}` });
  }
};

/** Per table: the data an `insert` may carry, and the changes an `update` may make. */
export const tableSchemas = Object.fromEntries(
  DEVICE_TABLES.map((table) => {
    const { shape, required } = COLUMNS[table];
    const insertShape = Object.fromEntries(
      Object.entries(shape).map(([key, schema]) => [key, required.includes(key) ? schema : schema.optional()]),
    );
    const updateShape = Object.fromEntries(Object.entries(shape).map(([key, schema]) => [key, schema.optional()]));
    return [
      table,
      {
        // Checked in this order so that `id` in insert data gets its own message, not "unrecognized key".
        insert: z.record(z.string(), z.unknown()).superRefine(ownedFieldsCheck('insert data')).pipe(z.strictObject(insertShape)),
        update: z
          .record(z.string(), z.unknown())
          .superRefine(ownedFieldsCheck('update changes'))
          .pipe(z.strictObject(updateShape))
          .refine((changes) => Object.keys(changes).length > 0, 'updates must change at least one field'),
      },
    ];
  }),
) as unknown as Record<DeviceTable, { insert: z.ZodType<Record<string, unknown>>; update: z.ZodType<Record<string, unknown>> }>;

/**
 * `select` filters: equality on a column, plus the conventions the assistant's tools use (seed
 * 001): `search` (text match), `<field>From` / `<field>To` (inclusive range), `orderBy`
 * (`field` or `-field`), `includeArchived`. A `null` value means "no filter" and is dropped.
 */
export const filtersSchema = z
  .record(z.string().regex(/^[a-z][A-Za-z0-9]{0,63}$/), z.union([z.string().max(1_000), z.number().finite(), z.boolean(), z.null()]))
  .refine((filters) => Object.keys(filters).length <= 20, 'at most 20 filters')
  .transform(
    (filters) =>
      Object.fromEntries(Object.entries(filters).filter(([, value]) => value !== null)) as Record<string, string | number | boolean>,
  );

const tableSchema = z.enum(DEVICE_TABLES, {
  error: (issue) => `table must be one of ${DEVICE_TABLES.join(', ')} (got ${JSON.stringify(issue.input)})`,
});
const limitSchema = z.number().int().min(1).max(1_000);
const vectorSchema = z.array(z.number().finite()).min(1).max(8_192);
const byId = z.strictObject({ id: refId });

const selectCall = z.strictObject({
  action: z.literal('select'),
  table: tableSchema,
  filters: filtersSchema.optional(),
  limit: limitSchema.optional(),
});
const getCall = z.strictObject({ action: z.literal('get'), table: tableSchema, data: byId });
const insertCall = z.strictObject({ action: z.literal('insert'), table: tableSchema, data: z.record(z.string(), z.unknown()) });
const updateCall = z.strictObject({
  action: z.literal('update'),
  table: tableSchema,
  data: z.strictObject({ id: refId, updates: z.record(z.string(), z.unknown()) }),
});
const deleteCall = z.strictObject({ action: z.literal('delete'), table: tableSchema, data: byId });
const vectorUpsertCall = z.strictObject({
  action: z.literal('vector_upsert'),
  table: tableSchema.optional(),
  data: z.looseObject({ id: refId, content: longText, projectId: refId.nullable().optional(), title: z.string().max(500).optional() }),
  vector: vectorSchema,
});
const vectorSearchCall = z.strictObject({
  action: z.literal('vector_search'),
  table: tableSchema.optional(),
  vector: vectorSchema,
  filters: filtersSchema.optional(),
  limit: limitSchema.optional(),
});

const unknownAction = {
  error: (issue: { code: string }) => (issue.code === 'invalid_union' ? `action must be one of ${DEVICE_ACTIONS.join(', ')}` : undefined),
};

/** Column checks depend on the table, so they run once the shape is known. */
function checkColumns(call: { action: string; table?: DeviceTable; data?: unknown }, ctx: z.RefinementCtx): void {
  if ((call.action !== 'insert' && call.action !== 'update') || !call.table) return;
  const schemas = tableSchemas[call.table];
  const [schema, value, path] =
    call.action === 'insert'
      ? [schemas.insert, call.data, ['data']]
      : [schemas.update, (call.data as { updates: unknown }).updates, ['data', 'updates']];
  schema.safeParse(value).error?.issues.forEach((issue) => ctx.addIssue({ ...issue, path: [...path, ...issue.path] }));
}

/** The operation without its `id`: what a caller of the RPC passes. */
export const toolCallInputSchema = z
  .discriminatedUnion(
    'action',
    [
      selectCall,
      getCall,
      insertCall,
      updateCall,
      deleteCall,
      vectorUpsertCall,
      vectorSearchCall,
      code.read_file,
      code.list_files,
      code.search_files,
      code.write_file,
      code.edit_file,
      code.delete_file,
      code.execute_command,
      code.list_changes,
      code.undo_change,
    ],
    unknownAction,
  )
  .superRefine(checkColumns);

const withId = {
  id: z.string().min(1).max(128),
  /** Stable across re-runs of the same assistant turn: a repeated write with it is answered from memory. */
  idempotencyKey: z.string().min(1).max(128).optional(),
};
/** `tool_call` as sent to the device: the operation plus a correlation `id`. */
export const toolCallSchema = z
  .discriminatedUnion(
    'action',
    [
      selectCall.extend(withId),
      getCall.extend(withId),
      insertCall.extend(withId),
      updateCall.extend(withId),
      deleteCall.extend(withId),
      vectorUpsertCall.extend(withId),
      vectorSearchCall.extend(withId),
      code.read_file.extend(withId),
      code.list_files.extend(withId),
      code.search_files.extend(withId),
      code.write_file.extend(withId),
      code.edit_file.extend(withId),
      code.delete_file.extend(withId),
      code.execute_command.extend(withId),
      code.list_changes.extend(withId),
      code.undo_change.extend(withId),
    ],
    unknownAction,
  )
  .superRefine(checkColumns);

export type ToolCallInput = z.input<typeof toolCallInputSchema>;
export type ToolCall = z.output<typeof toolCallSchema>;

/** A row as the device returns it: its columns plus `id` and timestamps. */
export type DeviceRow = Record<string, unknown> & { id: string };
const row = z.record(z.string(), z.unknown());
const storedRow = z.looseObject({ id: z.string().min(1) }) as unknown as z.ZodType<DeviceRow>;
const replyId = z.string().min(1);

/** The ack a device sends for each action when it succeeds. */
export const replySchemas = {
  select: z.object({ id: replyId, rows: z.array(row) }),
  get: z.object({ id: replyId, row: storedRow.nullable() }),
  insert: z.object({ id: replyId, row: storedRow }),
  update: z.object({ id: replyId, row: storedRow }),
  delete: z.object({ id: replyId, deleted: z.boolean() }),
  vector_upsert: z.object({ id: replyId, ok: z.boolean() }),
  vector_search: z.object({
    id: replyId,
    results: z.array(z.looseObject({ id: z.string(), score: z.number(), content: z.string().optional() })),
  }),
  ...codeReplySchemas,
} satisfies Record<DeviceAction, z.ZodType>;

/** The ack a device sends when the operation failed on its side. */
export const errorReplySchema = z.object({ id: replyId, error: z.string().min(1).max(2_000) });

export type DeviceReply<A extends DeviceAction = DeviceAction> = z.output<(typeof replySchemas)[A]>;
/** Any ack: one of the success shapes, or `{id, error}`. */
export type ToolReply = DeviceReply | z.output<typeof errorReplySchema>;

/** `device_hello`: the device says which of the user's local agents it runs. */
export const deviceHelloSchema = z.strictObject({
  deviceId: deviceIdSchema,
  agentIds: z.array(z.string().min(1).max(128)).max(100).default([]),
  /** The project folder the device serves to the coding assistant, when it serves one. */
  project: deviceProjectSchema.optional(),
  /**
   * `false`: the device has no local tables for the task, project, checkpoint and note tools (it
   * serves a project folder only), so a turn that needs them looks elsewhere. Unsaid: it has them.
   */
  tables: z.boolean().optional(),
  /**
   * A connection receives the messages (`text_chunk`, `final`, `error`/`chat_error`, `cancelled`) of
   * the chat turns it started itself; `true` asks for those of every turn that runs on the device too
   * (a turn started over HTTP for it, or by another connection). A later hello without it goes back
   * to its own turns.
   */
  allTurns: z.boolean().optional(),
});
export type DeviceHello = z.input<typeof deviceHelloSchema>;
export type DeviceHelloAck = { ok: true } | { ok: false; error: { code: string; message?: string } };

/** zod issues as one readable line (for error acks and for the model). */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
}

/* ---- Background agent runs ------------------------------------- */

export const AGENT_DATA_TYPES = ['tasks', 'notes', 'checkpoints', 'projects'] as const;
export type AgentDataType = (typeof AGENT_DATA_TYPES)[number];

/** `agent_run` (server → device): read the agent's folders and send the files back. */
export const agentRunSchema = z.strictObject({
  runId: z.string().min(1).max(128),
  agentId: z.string().min(1).max(128),
  config: z.strictObject({
    paths: z.array(z.string().min(1).max(1_024)).min(1).max(50),
    fileExtensions: z.array(z.string().max(16)).max(50),
    promptTemplate: z.string().max(8_000),
    dataTypes: z.array(z.enum(AGENT_DATA_TYPES)).min(1),
    /** Bounds the server enforces; a well-behaved device stays within them. */
    maxFiles: z.number().int().positive(),
    maxBytes: z.number().int().positive(),
    maxFileBytes: z.number().int().positive(),
  }),
});
export type AgentRunRequest = z.output<typeof agentRunSchema>;

/** One file read by the device. `content` is text (the device extracts text from PDFs etc.). */
export const agentFileSchema = z.strictObject({
  path: z.string().min(1).max(1_024),
  name: z.string().min(1).max(255),
  content: z.string(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type AgentFile = z.output<typeof agentFileSchema>;

/** `agent_data` (device → server): some of the files of a run; a run may send many frames. */
export const agentDataSchema = z.strictObject({
  runId: z.string().min(1).max(128),
  files: z.array(agentFileSchema).max(1_000),
});
export type AgentData = z.output<typeof agentDataSchema>;

/** `agent_complete` (device → server): the device has sent every file of the run. */
export const agentCompleteSchema = z.strictObject({
  runId: z.string().min(1).max(128),
  filesRead: z.number().int().nonnegative(),
  errors: z.array(z.string().max(2_000)).max(1_000).default([]),
});
export type AgentComplete = z.input<typeof agentCompleteSchema>;

/** The ack of `agent_data` / `agent_complete`. */
export type AgentFrameAck = { ok: true } | { ok: false; error: { code: string; message?: string } };

/** Actions that change the device's data: a repeat with the same idempotency key must not run twice. */
export const WRITE_ACTIONS: ReadonlySet<string> = new Set([
  'insert',
  'update',
  'delete',
  'vector_upsert',
  'write_file',
  'edit_file',
  'delete_file',
  'execute_command',
  'undo_change',
]);

/**
 * Remembers the replies of writes by idempotency key (the last `capacity`), for devices that
 * dedupe repeated tool calls: the SDK's device helper and the simulator use it.
 */
export class IdempotentReplies {
  private readonly replies = new Map<string, Record<string, unknown>>();

  constructor(private readonly capacity = 1_000) {}

  /** The stored reply for a repeated write, re-addressed to this call's `id`; undefined otherwise. */
  replay(call: { id: string; action: string; idempotencyKey?: string }): Record<string, unknown> | undefined {
    if (!call.idempotencyKey || !WRITE_ACTIONS.has(call.action)) return undefined;
    const stored = this.replies.get(call.idempotencyKey);
    return stored ? { ...stored, id: call.id } : undefined;
  }

  /** Keeps a successful write's reply. */
  remember(call: { action: string; idempotencyKey?: string }, reply: unknown): void {
    if (!call.idempotencyKey || !WRITE_ACTIONS.has(call.action) || !reply || typeof reply !== 'object' || 'error' in reply) return;
    this.replies.delete(call.idempotencyKey);
    this.replies.set(call.idempotencyKey, reply as Record<string, unknown>);
    if (this.replies.size > this.capacity) this.replies.delete(this.replies.keys().next().value!);
  }
}

import type { DeviceProject, ToolCall, ToolReply } from './protocol';

/**
 * The device's local tables as the `tool_call` protocol sees them: one validated call in, one
 * ack out (`{id, rows|row|deleted|ok|results}` or `{id, error}`). `MemoryStore` implements it;
 * `tableStore()` builds one from per-action functions over a real database.
 */
export interface TableStore {
  execute(call: ToolCall): ToolReply | Promise<ToolReply>;
}

/**
 * A project folder the device serves to the coding assistant: it answers the project actions
 * (`read_file`, `write_file`, `execute_command`, …). Node: `projectTools({ root })` from `./node`.
 */
export interface ProjectServer {
  /** Sent in `device_hello`. */
  readonly project: DeviceProject;
  execute(call: ToolCall): ToolReply | Promise<ToolReply>;
  /** The server stopped waiting for call `id` (`tool_cancel`): stop it if it still runs. */
  cancel?(id: string): void;
}

/**
 * One store for every `tool_call`: project actions go to `project`, table actions to `tables`;
 * a device without the one asked for answers an error.
 */
export function deviceStore(
  tables: TableStore | undefined,
  project: ProjectServer | undefined,
  codeActions: readonly string[],
): TableStore {
  return {
    execute(call) {
      if (codeActions.includes(call.action))
        return project ? project.execute(call) : { id: call.id, error: `this device serves no project (${call.action})` };
      return tables ? tables.execute(call) : { id: call.id, error: `this device has no local tables (${call.action})` };
    },
  };
}

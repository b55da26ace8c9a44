import type { ToolCall, ToolReply } from '@switchboard/client';

/** What `switchboard device` writes: lines on stdout, the one line of a failure on stderr. */
export interface DeviceCommandOutput {
  say(line: string): void;
  fail(line: string): void;
}

const console: DeviceCommandOutput = {
  say: (line) => void process.stdout.write(`${line}\n`),
  fail: (line) => void process.stderr.write(`${line}\n`),
};

/**
 * `switchboard device --project <dir>`: serves a folder to the coding agents as one of the caller's
 * devices until stopped. It says each change and command as the device applies it, each disconnect
 * and reconnect; a connection that cannot be opened is one line naming the URL and the cause.
 */
export async function deviceCommand(
  env: NodeJS.ProcessEnv,
  values: { project?: string; url?: string; 'device-id'?: string },
  out: DeviceCommandOutput = console,
): Promise<'running' | number> {
  const token = env.SWITCHBOARD_TOKEN;
  if (!token) {
    out.fail('switchboard device: set SWITCHBOARD_TOKEN to an API key (POST /api-keys) or an access token');
    return 2;
  }
  const [{ connectDevice }, { projectTools }, { hostname }] = await Promise.all([
    import('@switchboard/client'),
    import('@switchboard/client/node'),
    import('node:os'),
  ]);
  const project = await projectTools({ root: values.project! });
  const url = values.url ?? env.SWITCHBOARD_URL ?? 'http://127.0.0.1:3000';
  // A stable id per machine and folder, in the characters a device id may have.
  const deviceId =
    values['device-id'] ??
    env.SWITCHBOARD_DEVICE_ID ??
    `${hostname()}-${project.project.name}`.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 128);
  let device: Awaited<ReturnType<typeof connectDevice>>;
  try {
    device = await connectDevice({
      url,
      token,
      deviceId,
      project,
      onCall: (call, reply) => {
        const line = describeDeviceCall(call, reply);
        if (line) out.say(line);
      },
    });
  } catch (error) {
    out.fail(`switchboard device: cannot connect to ${url}: ${connectFailure(error)}`);
    return 1;
  }
  let connected = true;
  device.socket.on('disconnect', (reason) => {
    connected = false;
    out.say(`Disconnected from ${url} (${reason}); reconnecting…`);
  });
  device.socket.on('connect', () => {
    if (connected) return;
    connected = true;
    out.say(`Reconnected to ${url} as device ${deviceId}`);
  });
  const stop = () => {
    device.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  out.say(`Serving ${project.root} to the coding agents at ${url} as device ${deviceId} (Ctrl-C stops)`);
  return 'running';
}

/** The line for a call that changed the folder or ran a command; null for reads and previews. */
export function describeDeviceCall(call: ToolCall, reply: ToolReply): string | null {
  const { action } = call;
  const error = (reply as { error?: unknown }).error;
  const path = (call as { path?: unknown }).path;
  const command = (call as { command?: unknown }).command;
  const target = typeof path === 'string' ? path : typeof command === 'string' ? command : '';
  if (action === 'execute_command') {
    if (typeof error === 'string') return `Refused to run ${target}: ${error}`;
    const run = reply as { exitCode?: number | null; signal?: string | null; timedOut?: boolean; durationMs?: number };
    const ended = run.timedOut ? 'timed out' : run.signal ? `killed by ${run.signal}` : `exit ${run.exitCode}`;
    return `Ran ${target} (${ended}, ${((run.durationMs ?? 0) / 1000).toFixed(1)} s)`;
  }
  if (action !== 'write_file' && action !== 'edit_file' && action !== 'delete_file' && action !== 'undo_change') return null;
  if (typeof error === 'string') return `Refused ${action} ${target}: ${error}`;
  const change = reply as { path?: string; applied?: boolean; created?: boolean; deleted?: boolean };
  if (!change.applied) return null;
  const verb =
    action === 'undo_change'
      ? 'Undid a change of'
      : change.deleted
        ? 'Deleted'
        : change.created
          ? 'Created'
          : action === 'edit_file'
            ? 'Edited'
            : 'Wrote';
  return `${verb} ${change.path ?? target}`;
}

/** Why a device connection could not be opened, in words: the refusal, or the network's cause. */
export function connectFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'unauthorized') return 'the server refused SWITCHBOARD_TOKEN (a wrong, revoked or expired key or token)';
  const code = networkCode(error);
  if (code === 'ECONNREFUSED') return 'connection refused (is Switchboard running at that address?)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET') return 'the connection was reset';
  if (code === 'ETIMEDOUT') return 'timed out';
  if (code) return `${message} (${code})`;
  return message;
}

/** The system error code (`ECONNREFUSED`, …) inside a Socket.IO connect error, wherever it nests. */
function networkCode(error: unknown, depth = 0): string | undefined {
  if (!error || typeof error !== 'object' || depth > 4) return undefined;
  const { code, description, error: inner, cause } = error as { code?: unknown; description?: unknown; error?: unknown; cause?: unknown };
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  return networkCode(description, depth + 1) ?? networkCode(inner, depth + 1) ?? networkCode(cause, depth + 1);
}

import type { Config } from '../../config';
import type { DevicePort } from '../devices/device-channel';
import type { AgentFile } from '../schemas/device-protocol';
import type { AgentRunRow, LocalAgentRow } from '../models/schema';
import type { ExtractionDocument } from './extraction';
import type { AgentRunChannel } from './run-channel';
import { RunTimedOutError } from './run-outcome';

/**
 * A local run's reading step: sends `agent_run` to the agent's device and collects its
 * `agent_data` frames (through the run's channel) until `agent_complete`, keeping at most
 * `maxFiles` files and `maxBytes` bytes; a file over `maxFileBytes`, or past a limit, is skipped
 * with an error in `errors`. Throws `gone`'s reason when it aborts (the device went away, or the
 * run was cancelled), and {@link RunTimedOutError} when no `agent_complete` came within `runTimeoutMs`.
 */
export async function readDeviceFiles(
  deps: { devices: DevicePort; channel: AgentRunChannel; limits: Config['agents'] },
  input: { run: AgentRunRow; agent: LocalAgentRow; deviceId: string; errors: string[]; gone: AbortSignal },
): Promise<ExtractionDocument[]> {
  const { channel } = deps;
  const { run, agent, deviceId, errors, gone } = input;
  const { maxFiles, maxBytes, maxFileBytes, runTimeoutMs } = deps.limits;
  await channel.open(run.id, run.userId, deviceId, runTimeoutMs + 60_000);
  const stop = AbortSignal.any([gone, AbortSignal.timeout(runTimeoutMs)]);
  const documents: ExtractionDocument[] = [];
  let bytes = 0;
  let completed = false;
  try {
    deps.devices.send(run.userId, deviceId, 'agent_run', {
      runId: run.id,
      agentId: agent.id,
      config: {
        paths: agent.directoryPaths,
        fileExtensions: agent.fileExtensions,
        promptTemplate: agent.promptTemplate,
        dataTypes: agent.dataTypes,
        maxFiles,
        maxBytes,
        maxFileBytes,
      },
    });
    for await (const frame of channel.frames(run.id, stop)) {
      if (frame.type === 'complete') {
        completed = true;
        errors.push(...frame.errors.slice(0, 100).map((message) => `device: ${message}`));
        break;
      }
      for (const file of frame.files) {
        const size = Buffer.byteLength(file.content, 'utf8');
        if (size > maxFileBytes) errors.push(`${file.path}: skipped, ${size} bytes is over the ${maxFileBytes}-byte file limit`);
        else if (documents.length >= maxFiles) errors.push(`${file.path}: skipped, the run's ${maxFiles}-file limit was reached`);
        else if (bytes + size > maxBytes) errors.push(`${file.path}: skipped, the run's ${maxBytes}-byte limit was reached`);
        else {
          bytes += size;
          documents.push(fileDocument(file));
        }
      }
    }
  } finally {
    // eslint-disable-next-line no-restricted-syntax -- the run ends either way; the channel closes with its socket
    await channel.close(run.id).catch(() => undefined);
  }
  if (gone.aborted) throw gone.reason as Error;
  if (!completed) throw new RunTimedOutError(`the device sent no agent_complete within ${runTimeoutMs} ms`);
  return documents;
}

function fileDocument(file: AgentFile): ExtractionDocument {
  return { source: `file ${file.path}`, title: file.name, text: file.content };
}

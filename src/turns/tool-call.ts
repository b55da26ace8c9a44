import type { ZodType } from 'zod';
import { describeIssues } from '../schemas/device-protocol';
import { DeviceRpcError } from '../devices/device-rpc';
import type { Logger } from '../lib/logger';
import type { ToolDecision } from './tool-policy';
import { ToolInputError } from './tool-format';

/** How one executed call ended, for its audit line (undefined: the executor is not audited). */
export interface ToolCallSettled {
  text: string;
  outcome?: string;
}

/**
 * One tool call as a turn asks to run it, through the one pipeline every tool-using turn uses
 * (the chat turn, the coding turn, the agentflow node): offered → arguments → policy → limits →
 * audit → execute. Each step that refuses gives the model an `Error: …` text and the turn goes on;
 * from the policy on, a refusal is audited as the executed call is.
 */
export interface ToolCallPipeline<A = unknown> {
  name: string;
  args: unknown;
  /** What the turn offered its model: a name not among them never runs. */
  offered: Iterable<string>;
  /** The executor is not here (no device named, no MCP client on this worker): the model reads this whole text. */
  unavailable?: string;
  /** The arguments' schema of a tool that declares one (device and coding tools); others check their own. */
  schema?: Pick<ZodType<A>, 'safeParse'>;
  /** The policy's say on a call its contract (or the deployment) marks dangerous, asked unless a person approved it. */
  policy?: { dangerous: boolean; approved: boolean; check: (args: A) => Promise<ToolDecision> };
  /** The caller's hourly limits: a refusal's audit outcome and the model's text, or null within them. */
  limit?: () => Promise<{ outcome: string; text: string } | null>;
  /** Writes the call's audit line with how it ended. */
  audit?: (outcome: string) => Promise<void>;
  /** Runs the call once everything before allowed it. */
  execute: (args: A) => Promise<ToolCallSettled>;
}

/** Runs one call through the pipeline; every refusal and failure is `Error: …` text for the model. */
export async function runToolCall<A>(call: ToolCallPipeline<A>): Promise<string> {
  const { name } = call;
  const offered = [...call.offered];
  if (!offered.includes(name)) return `Error: there is no tool called "${name}" here; use one of: ${offered.join(', ')}.`;
  if (call.unavailable) return call.unavailable;
  let args = call.args as A;
  if (call.schema) {
    const parsed = call.schema.safeParse(call.args ?? {});
    if (!parsed.success) return `Error: invalid arguments for ${name}: ${describeIssues(parsed.error)}. Fix them and call the tool again.`;
    args = parsed.data;
  }
  const audit = call.audit ?? (async () => undefined);
  if (call.policy?.dangerous && !call.policy.approved) {
    const decision = await call.policy.check(args);
    if (!decision.allowed) {
      await audit('not_allowed');
      return `Error: ${name} was not allowed: ${decision.reason}`;
    }
  }
  const limited = await call.limit?.();
  if (limited) {
    await audit(limited.outcome);
    return limited.text;
  }
  const { text, outcome } = await call.execute(args);
  if (outcome !== undefined) await audit(outcome);
  return text;
}

/**
 * Settles one device call: its result, or for input the tool refused or a device call that failed
 * `Error: <its message>`; for anything unexpected (logged with `label`), a line that names the tool
 * and nothing else. The outcome is what the call's audit line says.
 */
export async function settleDeviceCall(name: string, run: () => Promise<string>, log: Logger, label: string): Promise<ToolCallSettled> {
  try {
    return { text: await run(), outcome: 'ok' };
  } catch (error) {
    if (error instanceof DeviceRpcError || error instanceof ToolInputError)
      return { text: `Error: ${error.message}`, outcome: error instanceof DeviceRpcError ? error.code : 'invalid_input' };
    log.warn({ err: error, tool: name }, label);
    return { text: `Error: ${name} failed unexpectedly.`, outcome: 'failed' };
  }
}

import { UnrecoverableError } from 'bullmq';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { FlowExecutionRow } from '../models/schema';
import { MAX_RENDERED_PROMPT_CHARS, renderPrompt } from './definition';
import type { FlowInputs } from './flow-inputs';
import { executionIsActive } from './flow-run';
import { WAITING } from './node-control';
import { ControlError } from './node-errors';
import type { HumanInputNode } from './node-kinds';

/** A human_input node's output: the answer's values and decision, who gave it, and whether time ran out instead. */
export interface HumanInputOutput {
  values: Record<string, unknown> | null;
  decision: string | null;
  answeredBy: string | null;
  answeredAt: string | null;
  timedOut: boolean;
}

export interface HumanInputDeps {
  repos: Pick<Repositories, 'inputRequests' | 'flowExecutions'>;
  /** Asks the node's recipients; without it human_input nodes fail. */
  inputs?: Pick<FlowInputs, 'ask' | 'reopen' | 'cancelOpen'>;
  logger: Logger;
}

/**
 * One step of a human_input node on the worker. The first asks: the prompt is filled in, the
 * recipients are resolved (the owner by default; a named user only while they share a canvas with
 * the owner), the form is sent and the node waits (WAITING: its job ends, no worker holds it).
 * The answer's (or the deadline's) completion of the form's waitpoint queues the node again, and
 * that step finishes it: the answer is its output, a timeout takes the node's outcome.
 */
export async function humanInputStep(
  deps: HumanInputDeps,
  execution: FlowExecutionRow,
  node: HumanInputNode,
  outputs: ReadonlyMap<string, unknown>,
  lane?: 'evaluation',
): Promise<{ output: HumanInputOutput } | typeof WAITING> {
  const { repos, inputs } = deps;
  // An evaluation's execution asks nobody: the node takes its timeout outcome at once.
  if (lane === 'evaluation') return timedOut(node);
  if (!inputs) throw new UnrecoverableError('This worker cannot ask for forms');
  let row = await repos.inputRequests.forNode(execution.id, node.id);
  if (!row) {
    const prompt = renderPrompt(node.prompt ?? '', execution.input, outputs);
    if (prompt.length > MAX_RENDERED_PROMPT_CHARS) throw new ControlError('prompt_too_large');
    const refs = node.recipients ?? [execution.userId];
    const allowed = await repos.inputRequests.allowedRecipients(execution.userId, refs);
    const recipients = [...new Set(allowed.values())];
    if (allowed.size < refs.length)
      deps.logger.warn(
        { executionId: execution.id, nodeId: node.id, dropped: refs.length - allowed.size },
        'human_input recipients no longer allowed are not asked',
      );
    if (!recipients.length) throw new ControlError('no_recipients');
    row = await inputs.ask(execution, node, prompt, recipients);
    // The execution ended while the form was being sent (its end cancelled what it found then): cancel this one too.
    const now = await repos.flowExecutions.find(execution.id);
    if (!now || !executionIsActive(now.status)) await inputs.cancelOpen(execution.id);
  } else if (row.status === 'pending') await inputs.reopen(row, execution.flowId);

  switch (row.status) {
    case 'pending':
    case 'cancelled':
      return WAITING;
    case 'answered':
      return {
        output: {
          values: row.answer ?? {},
          decision: row.decision,
          answeredBy: row.answeredBy,
          answeredAt: row.answeredAt?.toISOString() ?? null,
          timedOut: false,
        },
      };
    case 'timeout':
      return timedOut(node);
  }
}

/** The node's timeout outcome: its default answer or decision, or its failure (`input_timeout`). */
function timedOut(node: HumanInputNode): { output: HumanInputOutput } {
  const timeout = node.timeout;
  const outcome = timeout?.outcome ?? 'fail';
  if (outcome === 'fail') throw new ControlError('input_timeout');
  return {
    output: {
      values: outcome === 'default' ? (timeout?.values ?? {}) : null,
      decision: timeout?.decision ?? null,
      answeredBy: null,
      answeredAt: null,
      timedOut: true,
    },
  };
}

import { UnrecoverableError } from 'bullmq';
import { ModelAuthFailedError, ModelStoppedEarly, ModelUnavailableError } from '../ai/model-gateway';
import { BudgetExceededError } from '../budget/budget-door';
import type { NodeCost } from '../models/flow-executions-repository';

/** The errors that end a flow node (or one of its items) without a retry, each with its flow error code. */

/**
 * A node that cannot go on, with the flow error code that says why: refused before its model call,
 * or its owner did not approve its parked tool call (`cost`: what its model calls cost until then).
 */
export class RefusedNodeError extends Error {
  constructor(
    readonly code: 'prompt_too_large' | 'unsupported_schema' | 'approval_not_possible' | 'approval_rejected' | 'approval_expired',
    readonly cost?: NodeCost,
  ) {
    super(`flow node refused: ${code}`);
    this.name = 'RefusedNodeError';
  }
}

/** The model's answer did not validate against the node's `outputSchema`, even after one repair request. */
export class InvalidOutputError extends Error {
  constructor(readonly cost: NodeCost) {
    super('The answer did not match the outputSchema');
    this.name = 'InvalidOutputError';
  }
}

/**
 * A control-flow node that cannot go on: a foreach over a value that is not a list (or too long),
 * a subflow that cannot be found, nests too deep, is refused or fails, a human_input that has
 * nobody to ask or was not answered in time (with the outcome `fail`).
 */
export class ControlError extends Error {
  constructor(
    readonly code:
      | 'not_a_list'
      | 'too_many_items'
      | 'subflow_not_found'
      | 'subflow_too_deep'
      | 'subflow_refused'
      | 'subflow_failed'
      | 'budget_exceeded'
      | 'prompt_too_large'
      | 'no_recipients'
      | 'input_timeout',
  ) {
    super(`flow node refused: ${code}`);
    this.name = 'ControlError';
  }
}

/**
 * How a node's (or item's) failed attempt ends: `permanent` ones are not retried (a spent budget, a
 * refused key, an answer that never validated, a refusal); `code` is the flow error code it fails
 * with, `cost` what its model calls cost until then when the error carries it.
 */
export function failureOf(error: unknown): { permanent: boolean; code: string; cost?: NodeCost } {
  const permanent =
    error instanceof ModelAuthFailedError ||
    error instanceof InvalidOutputError ||
    error instanceof RefusedNodeError ||
    error instanceof ControlError ||
    error instanceof UnrecoverableError ||
    error instanceof ModelStoppedEarly ||
    error instanceof BudgetExceededError;
  const code =
    error instanceof InvalidOutputError
      ? 'invalid_output'
      : error instanceof RefusedNodeError || error instanceof ControlError
        ? error.code
        : error instanceof ModelUnavailableError
          ? error.code
          : error instanceof BudgetExceededError
            ? 'budget_exceeded'
            : error instanceof ModelStoppedEarly
              ? error.code
              : 'node_failed';
  const cost = error instanceof InvalidOutputError || error instanceof RefusedNodeError ? error.cost : undefined;
  return { permanent, code, ...(cost ? { cost } : {}) };
}

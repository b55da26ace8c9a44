import { z } from 'zod';
import type { CodingAgentConfig, CodingAgentName } from '../../config/coding-agents';
import type { ToolSpec } from '../ai/model-tools';
import { describeIssues } from '../schemas/device-protocol';
import type { PlanStepStatus } from '../turns/turn-events';

/**
 * The Orchestrator's plans: for a request that needs more than one agent it calls `plan_steps`,
 * says what the plan is, and the turn then runs the steps one after another, each with its own
 * agent (tools, prompt, model). A step that waits for an approval parks the turn as any turn does;
 * the resume goes on with the plan. The stream shows the plan (`plan`) and who works (`agent`).
 */

export const PLAN_STEP_AGENTS = ['ask', 'architect', 'coder', 'debug'] as const;
/** Steps of one plan at most. */
export const MAX_PLAN_STEPS = 5;

const planArgs = z.object({
  steps: z
    .array(
      z.object({
        agent: z.enum(PLAN_STEP_AGENTS).describe('Who does the step'),
        task: z.string().trim().min(1).max(2_000).describe('What the step must do, in one or two sentences'),
      }),
    )
    .min(2)
    .max(MAX_PLAN_STEPS),
});
export type PlanStep = z.output<typeof planArgs>['steps'][number];

/** The tool the Orchestrator proposes a plan with; the runner handles it (it never reaches a device). */
export const PLAN_TOOL: ToolSpec = {
  name: 'plan_steps',
  description:
    'Hand a request that needs several agents to them in order, e.g. the architect plans, then the coder implements, then debug runs the tests. 2-5 steps. The steps run after your answer.',
  schema: planArgs,
};

/** A plan in progress: kept in the turn's continuation while a step waits for an approval. */
export interface PlanState {
  /** The user's message the plan answers. */
  request: string;
  /** What the Orchestrator said when it made the plan. */
  preface: string;
  steps: PlanStep[];
  /** The step running now (-1: none yet). */
  index: number;
  /** The answer of each finished step, by index. */
  answers: string[];
}

/** Checks a proposed plan: the steps, or the error text the model reads. */
export function parsePlan(args: unknown): { steps: PlanStep[] } | { error: string } {
  const parsed = planArgs.safeParse(args ?? {});
  return parsed.success
    ? { steps: parsed.data.steps }
    : { error: `Error: invalid arguments for plan_steps: ${describeIssues(parsed.error)}. Fix them and call it again.` };
}

/** Two answers as the stream shows them: a blank line between, none around an empty one. */
export const joinAnswers = (before: string, after: string): string => (before && after ? `${before}\n\n${after}` : before || after);

/** The plan's whole answer so far: the Orchestrator's words, then each finished step's. */
export const planText = (plan: PlanState): string => plan.answers.reduce(joinAnswers, plan.preface);

/** The steps with their status, for the stream's `plan` event. */
export function planSteps(plan: PlanState, end?: 'done' | 'cancelled'): Array<PlanStep & { status: PlanStepStatus }> {
  return plan.steps.map((step, index) => ({
    ...step,
    status:
      index < plan.index || (index === plan.index && end === 'done')
        ? 'done'
        : index === plan.index
          ? end === 'cancelled'
            ? 'cancelled'
            : 'running'
          : end === 'cancelled'
            ? 'cancelled'
            : 'pending',
  }));
}

/** What a step's agent is told: its place in the plan, the request, what the earlier steps found, its task. */
export function stepPrompt(plan: PlanState, agent: CodingAgentConfig, agentName: CodingAgentName): { system: string; user: string } {
  const step = plan.steps[plan.index];
  const outline = plan.steps.map((s, i) => `${i + 1}. ${s.agent}: ${s.task}`).join('\n');
  const earlier = plan.answers
    .slice(0, plan.index)
    .map((answer, i) => `Step ${i + 1} (${plan.steps[i].agent}):\n${answer}`)
    .join('\n\n');
  return {
    system: `${agent.prompt} You are the ${agentName} agent doing step ${plan.index + 1} of ${plan.steps.length} of a plan the Orchestrator made:\n${outline}\nDo only your step.`,
    user: [`The user's request: ${plan.request}`, earlier ? `What the earlier steps found:\n${earlier}` : '', `Your step: ${step.task}`]
      .filter(Boolean)
      .join('\n\n'),
  };
}

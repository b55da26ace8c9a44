import type { Logger } from '../lib/logger';
import { DeviceRpcError } from '../devices/device-rpc';
import { asksByContract, isCodeToolName } from '../turns/tool-contract';
import { waitingCalls, type ParkedLoop } from '../turns/tool-loop';
import type { TurnHooks, TurnSpec } from '../turns/turn-engine';
import type { DeviceCall } from '../turns/device-tools';
import type { CodeTool } from './code-tools';
import type { CodingAgentConfig } from '../../config/coding-agents';
import { systemMessage, userMessage, type ModelMessage } from '../ai/model-messages';
import { codingSystemPrompt, keptNote, toolNamed, type CodingAgentName } from './coding-agents';
import { parsePlan, PLAN_TOOL, planSteps, planText, stepPrompt, type PlanState, type PlanStep } from './coding-plan';

/** What the coding turn knows of one turn: its agent, the plan it is a step of, the request, the device its previews read. */
export interface CodingTurnContext {
  agent?: CodingAgentName;
  /** The Orchestrator's plan this turn is a step of. */
  plan?: PlanState;
  /** The user's request, on the turn that starts from it (not on a plan step or a resumed turn). */
  request?: string;
  /** The turn's device, when it has one: previews of waiting changes are computed there. */
  device?: DeviceCall;
  /** Counts one approval request of a coding tool against the user's hourly limit: the refusal, or null within it. */
  approvalLimit(): Promise<string | null>;
  log: Logger;
}

/** A coding turn's hooks, and the plan its Orchestrator proposed during the turn. */
export interface CodingTurnHooks extends TurnHooks {
  proposed(): PlanStep[] | undefined;
}

/**
 * The coding turn's spec: the Orchestrator (not yet in a plan) is offered the plan tool besides its
 * own; a change waits for approval with its diff, computed by the device from the file as it is
 * now, and a change that cannot be made (no such text, a path refused) is answered at once instead.
 */
export const codingTurnSpec = {
  kind: 'coding',
  open(context: CodingTurnContext): CodingTurnHooks {
    const planning = context.agent === 'orchestrator' && !context.plan && context.request !== undefined;
    let proposed: PlanStep[] | undefined;
    return {
      serverTools: planning ? [PLAN_TOOL] : [],
      runServerTool: (_name, args) => {
        const parsed = parsePlan(args);
        if ('error' in parsed) return parsed.error;
        proposed = parsed.steps;
        return `Plan accepted: ${parsed.steps.length} steps run after your answer. Say in one or two sentences what the plan is, then stop.`;
      },
      beforePark: context.device ? (parked) => previewChanges(context, context.device!, parked) : undefined,
      proposed: () => proposed,
    };
  },
} satisfies TurnSpec<CodingTurnContext>;

/**
 * The diff of each waiting change of a parked round (write_file, edit_file, delete_file), by
 * position; a change the device cannot make is answered at once with the model's error text, as
 * is one past the user's hourly approval requests.
 */
async function previewChanges(context: CodingTurnContext, device: DeviceCall, parked: ParkedLoop) {
  const previews = new Map<number, Record<string, unknown>>();
  const answered = new Map<number, string>();
  for (const { call, position } of waitingCalls(parked)) {
    // A coding tool's approval request counts against the user's approvals of the hour.
    const limited = isCodeToolName(call.name) && asksByContract(call.name) ? await context.approvalLimit() : null;
    if (limited) {
      answered.set(position, `Error: ${call.name} was NOT run and no approval was asked: ${limited}`);
      continue;
    }
    const tool = toolNamed(call.name) as CodeTool | undefined;
    if (!tool?.preview) continue;
    try {
      previews.set(position, { ...(await tool.preview(tool.schema.parse(call.args ?? {}) as Record<string, unknown>, device)) });
    } catch (error) {
      if (!(error instanceof DeviceRpcError)) context.log.warn({ err: error, tool: call.name }, 'change preview failed');
      answered.set(
        position,
        `Error: ${call.name} was NOT run: ${error instanceof DeviceRpcError ? error.message : 'the change could not be prepared'}`,
      );
    }
  }
  return { previews, answered };
}

/**
 * What follows a coding turn's answer: the Orchestrator that kept the request and answered it
 * itself adds a note saying so (and how to name a specialist); a plan proposed now or going on
 * gives the plan with this step's answer, to run its next step or to end the turn with its whole answer.
 */
export function afterCodingAnswer(
  context: Pick<CodingTurnContext, 'agent' | 'plan' | 'request'> & { kept?: Parameters<typeof keptNote>[0] },
  response: string,
  proposed: PlanStep[] | undefined,
): { note?: string; plan?: PlanState } {
  const { agent, plan } = context;
  const note = agent === 'orchestrator' && !plan && !proposed ? keptNote(context.kept) : undefined;
  if (!proposed && !plan) return { note };
  // The step that just ended keeps its answer; a new plan starts before its first step.
  const answers = plan ? Object.assign([...plan.answers], { [plan.index]: response }) : [];
  return {
    note,
    plan: plan ? { ...plan, answers } : { request: context.request!, preface: response, steps: proposed!, index: -1, answers },
  };
}

/** A plan step as a leg of the coding turn: its agent, the plan at that step, the step's toolsets and first messages. */
export interface PlanStepLeg {
  agent: CodingAgentName;
  plan: PlanState;
  toolsets: string[];
  messages: ModelMessage[];
}

/**
 * The step after the plan's current one, as the turn's next leg: its agent's toolsets, and a prompt
 * that tells the agent its place in the plan, the request and what the earlier steps found.
 * Undefined after the last step: the plan's whole answer ends the turn. The step runs at once on
 * the same job; a step that needs a person parks the turn on its approvals as any leg does.
 */
export function nextPlanStep(plan: PlanState, agents: Record<CodingAgentName, CodingAgentConfig>): PlanStepLeg | undefined {
  if (plan.index + 1 >= plan.steps.length) return undefined;
  const next = { ...plan, index: plan.index + 1 };
  const agent = next.steps[next.index].agent;
  const config = agents[agent];
  const prompt = stepPrompt(next, config, agent);
  return {
    agent,
    plan: next,
    toolsets: config.toolsets,
    messages: [systemMessage(codingSystemPrompt({ ...config, prompt: prompt.system })), userMessage(prompt.user)],
  };
}

/** A plan whose last step answered: its steps, all done (the stream's last `plan` event), and its whole answer, which ends the turn. */
export interface FinishedPlan {
  steps: ReturnType<typeof planSteps>;
  response: string;
}

/**
 * What follows a coding leg's answer, in one answer: the note the Orchestrator adds when it kept
 * the request, and, in a plan, the next step to run as the turn's next leg (`next`) or, after the
 * last step, the finished plan whose whole answer ends the turn (`done`).
 */
export function codingAnswer(
  leg: Parameters<typeof afterCodingAnswer>[0],
  response: string,
  proposed: PlanStep[] | undefined,
  agents: Record<CodingAgentName, CodingAgentConfig>,
): { note?: string; next?: PlanStepLeg; done?: FinishedPlan } {
  const { note, plan } = afterCodingAnswer(leg, response, proposed);
  if (!plan) return { note };
  const next = nextPlanStep(plan, agents);
  return next ? { note, next } : { note, done: { steps: planSteps(plan, 'done'), response: planText(plan) } };
}

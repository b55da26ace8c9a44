import { z } from 'zod';
import { CODING_AGENT_NAMES, CODING_TOOLSET_NAMES, DEFAULT_CODING_AGENTS, type CodingAgentConfig } from '../../../config/coding-agents';
import { CODE_TOOLS } from '../../coding/code-tools';
import { PLAN_TOOL } from '../../coding/coding-plan';
import { toolContract } from '../../turns/tool-contract';
import type { ApiContext } from '../context';
import { routesWith } from '../route';

/** The coding routes' port: the agents as configured, and the models the deployment serves (the first is the default). */
export type CodingPorts = { config: Pick<ApiContext['config'], 'codingAgents'> } & { flows: Pick<ApiContext['flows'], 'models'> };
const route = routesWith<CodingPorts>();

const modelRef = z.object({ provider: z.string(), model: z.string() });
const codingAgentView = z.object({
  name: z.enum(CODING_AGENT_NAMES),
  description: z.string(),
  prompt: z.string().describe('Its system prompt (the project name and the date are added to it on each turn)'),
  toolsets: z.array(z.enum(CODING_TOOLSET_NAMES)),
  tools: z
    .array(z.object({ name: z.string(), risk: z.enum(['read', 'write', 'execute', 'plan']) }))
    .describe('What the model is offered; `write` and `execute` wait for approval, `plan` is the Orchestrator’s `plan_steps`'),
  model: modelRef.describe('The model its turns call: its own when the deployment serves it, else the default'),
  configuredModel: modelRef.nullable().describe('The model configured for it; null: the deployment’s default model'),
  maxToolIterations: z.number().int().describe('Tool rounds before it must answer'),
  overridden: z
    .array(z.enum(['description', 'toolsets', 'prompt', 'model', 'maxToolIterations']))
    .describe('The fields the operator set (`CODING_AGENTS`) that differ from the built-in defaults'),
});
export const codingAgentsResponse = z.object({ agents: z.array(codingAgentView) });

const FIELDS = ['description', 'toolsets', 'prompt', 'model', 'maxToolIterations'] as const;

/** One agent as its turns run: the served model it gets, its tools, and what the operator changed. */
function agentView(
  name: (typeof CODING_AGENT_NAMES)[number],
  agent: CodingAgentConfig,
  served: ReadonlyArray<{ provider: string; model: string }>,
): z.output<typeof codingAgentView> {
  const own = agent.model && served.some((ref) => ref.provider === agent.model!.provider && ref.model === agent.model!.model);
  // Read from the code tools' catalogue alone: the data tools beside it would load the model client into the API process.
  const tools = CODE_TOOLS.filter((tool) => (agent.toolsets as string[]).includes(tool.toolset)).map((tool) => ({
    name: tool.name,
    risk: toolContract(tool.name)!.risk as 'read' | 'write' | 'execute',
  }));
  return {
    name,
    description: agent.description,
    prompt: agent.prompt,
    toolsets: agent.toolsets,
    tools: name === 'orchestrator' ? [...tools, { name: PLAN_TOOL.name, risk: 'plan' as const }] : tools,
    model: own ? agent.model! : served[0],
    configuredModel: agent.model,
    maxToolIterations: agent.maxToolIterations,
    overridden: FIELDS.filter((field) => JSON.stringify(agent[field]) !== JSON.stringify(DEFAULT_CODING_AGENTS[name][field])),
  };
}

/** `GET /coding/agents`: the coding agents as the operator configured them (read-only). */
export const codingRoutes = [
  route({
    method: 'get',
    path: '/coding/agents',
    operationId: 'listCodingAgents',
    tags: ['coding'],
    auth: 'bearer',
    summary: 'The coding agents: prompt, tools and model of each, as this deployment runs them',
    description:
      'The five agents (`orchestrator`, `ask`, `coder`, `debug`, `architect`) with the built-in defaults and the operator’s `CODING_AGENTS` ' +
      'overrides applied. `model` is the model a turn of the agent calls (a request’s own `config` model wins over it); an agent configured ' +
      'with a model the deployment does not serve gets the default. Any signed-in user or API key (scope read) may list them.',
    responses: { 200: { description: 'The agents, Orchestrator first', schema: codingAgentsResponse } },
    handler: (_input, ctx) => {
      const served = ctx.flows.models();
      return { agents: CODING_AGENT_NAMES.map((name) => agentView(name, ctx.config.codingAgents[name], served)) };
    },
  }),
];

import { AppError } from '../../lib/errors';
import type { FlowRow } from '../../models/schema';
import type { ApiContext } from '../context';

/** The model id of the assistant (`POST /chat`). */
export const ASSISTANT_MODEL = 'switchboard-assistant';

/** Flows read per page while listing, and the most listed (a model picker shows no more). */
const PAGE = 100;
const MAX_LISTED = 1_000;
/** Characters of the flow's name kept in its model id, before the flow id. */
const SLUG_CHARS = 40;
const TRAILING_UUID = /(?:^|-)([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** What a `/v1` model runs: the assistant, or one of the caller's chatflows (its published version). */
export type OpenAiModel = { kind: 'assistant'; id: string } | { kind: 'flow'; id: string; flow: FlowRow };

/**
 * A chatflow's model id: its name in lower-case letters, digits and `-` (at most 40), a `-`, and
 * the flow id. Only the id is read back, so a renamed flow answers to its old model id too.
 */
export function flowModelId(flow: Pick<FlowRow, 'id' | 'name'>): string {
  const slug = flow.name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, SLUG_CHARS)
    .replace(/-+$/, '');
  return slug ? `${slug}-${flow.id}` : flow.id;
}

/** The model's entry in OpenAI's model list (`name` is what chat front ends show when present). */
export function modelObject(model: OpenAiModel): Record<string, unknown> {
  if (model.kind === 'assistant')
    return { id: model.id, object: 'model', created: 0, owned_by: 'switchboard', name: 'Switchboard assistant' };
  return {
    id: model.id,
    object: 'model',
    created: Math.floor(model.flow.createdAt.getTime() / 1000),
    owned_by: 'switchboard',
    name: model.flow.name,
    switchboard: { kind: 'chatflow', flowId: model.flow.id, version: model.flow.publishedVersion },
  };
}

/** The 404 of a model the caller has not got (another user's chatflow, an agentflow, a typo). */
export const modelNotFound = (model: string) =>
  new AppError(404, 'model_not_found', `The model '${model.slice(0, 200)}' does not exist or you do not have access to it`, [
    { path: 'model', message: 'unknown model' },
  ]);

/** The assistant and the caller's chatflows, newest first. */
export async function listModels(ctx: Pick<ApiContext, 'flows'>, userId: string): Promise<OpenAiModel[]> {
  const models: OpenAiModel[] = [{ kind: 'assistant', id: ASSISTANT_MODEL }];
  let cursor: string | undefined;
  for (let listed = 0; listed < MAX_LISTED; listed += PAGE) {
    const page = await ctx.flows.list(userId, { limit: PAGE, cursor });
    for (const flow of page.items) if (flow.type === 'chatflow') models.push({ kind: 'flow', id: flowModelId(flow), flow });
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return models;
}

/** The model a request names, as the caller may use it; else 404 `model_not_found`. */
export async function resolveModel(ctx: Pick<ApiContext, 'flows'>, userId: string, model: string): Promise<OpenAiModel> {
  if (model === ASSISTANT_MODEL) return { kind: 'assistant', id: ASSISTANT_MODEL };
  const flowId = TRAILING_UUID.exec(model.toLowerCase())?.[1];
  if (!flowId) throw modelNotFound(model);
  try {
    const flow = await ctx.flows.get(userId, flowId);
    if (flow.type !== 'chatflow') throw modelNotFound(model);
    return { kind: 'flow', id: flowModelId(flow), flow };
  } catch (error) {
    if (error instanceof AppError && error.status === 404) throw modelNotFound(model);
    throw error;
  }
}

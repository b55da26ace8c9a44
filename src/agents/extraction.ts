import { toStorable } from '../lib/text-safety';
import { z } from 'zod';
import type { Config } from '../../config';
import type { ModelGateway, ModelRef, ModelTurn } from '../ai/model-gateway';
import { AGENT_DATA_TYPES, type AgentDataType } from '../schemas/device-protocol';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import { systemMessage, userMessage } from '../ai/model-messages';
import type { BudgetTicket } from '../budget/budget-door';
import { EXTRACTION_TOOL, extractionDocumentPrompt, extractionSystemPrompt } from './extraction-prompt';
import { checkPrompt, type PromptGuardMode } from '../ai/prompt-guard';

/**
 * Extraction for agent runs: the agent's prompt template plus one document (a file, a
 * mail, a chat message) in, suggested items out. The document is untrusted DATA: it goes in its
 * own delimited message, the system prompt says it holds no instructions, and the model's only
 * way to answer is one forced `record_items` call whose schema can describe new items and nothing
 * else — there is no tool to update or delete, so a mail saying "delete all tasks" can at most
 * become a suggested item the user declines.
 */

export { EXTRACTION_TOOL } from './extraction-prompt';
const MAX_ITEMS_PER_DOCUMENT = 50;

/** One item the model may suggest. `type` is one of the agent's data types. */
export const extractedItemSchema = z.object({
  type: z.enum(AGENT_DATA_TYPES).default('tasks'),
  title: z.string().trim().min(1).max(500),
  description: z.string().max(20_000).optional(),
  priority: z.enum(['high', 'medium', 'low']).optional(),
  dueDate: z.string().max(40).optional(),
});
export type ExtractedItem = z.output<typeof extractedItemSchema>;

const toolParameters = z.object({
  items: z.array(extractedItemSchema).max(MAX_ITEMS_PER_DOCUMENT),
});

export interface ExtractionDocument {
  /** Where it came from, for the model and the run log: `file /notes/a.txt`, `gmail message 18c…`. */
  source: string;
  title?: string;
  text: string;
}

export interface ExtractionDeps {
  config: Config;
  models: ModelGateway;
  repos: Repositories;
  metrics?: Metrics;
}

/** The tool the model must answer with: new items, and nothing that could change or delete one. */
export const extractionTool = {
  type: 'function' as const,
  function: {
    name: EXTRACTION_TOOL,
    description: 'Records the items found in the document as suggestions for the user to approve.',
    parameters: z.toJSONSchema(toolParameters, { io: 'input' }) as Record<string, unknown>,
  },
};

/**
 * Asks the model for the items in one document, trying the configured models in order. Items of
 * types the agent does not extract are dropped; invalid items are dropped one by one.
 */
export async function extractItems(
  deps: ExtractionDeps,
  input: {
    userId: string;
    tier: string;
    promptTemplate: string;
    dataTypes: AgentDataType[];
    document: ExtractionDocument;
    /** Stops the model call (a cancel, or the device going away). */
    signal?: AbortSignal;
    /** The run's budget ticket: the call is reserved under it (else under a ticket of its own). */
    budget?: BudgetTicket;
    /** The agent's own model, tried first (then the deployment's chain); unset = the default chain. */
    model?: ModelRef;
  },
): Promise<{ items: ExtractedItem[]; dropped: number }> {
  const { models } = deps;
  const messages = [
    systemMessage(extractionSystemPrompt({ dataTypes: input.dataTypes, promptTemplate: input.promptTemplate })),
    userMessage(extractionDocumentPrompt(input.document)),
  ];

  const turn = await models.streamTurn({
    purpose: 'extraction',
    messages,
    tools: [extractionTool],
    toolChoice: EXTRACTION_TOOL,
    model: input.model,
    account: { userId: input.userId, tier: input.tier },
    budget: input.budget,
    signal: input.signal,
  });
  return parseItems(turn, input.dataTypes);
}

/** Reads the items from the model's `record_items` call(s), or from JSON text as a fallback. */
function parseItems(turn: ModelTurn, dataTypes: AgentDataType[]): { items: ExtractedItem[]; dropped: number } {
  const raw: unknown[] = [];
  for (const call of turn.toolCalls) {
    if (call.name !== EXTRACTION_TOOL) continue;
    const items: unknown = call.parsed?.items;
    if (Array.isArray(items)) raw.push(...(items as unknown[]));
  }
  if (raw.length === 0 && turn.text.trim().startsWith('{')) {
    try {
      // Escapes in the model's text can spell NUL or lone surrogates: cleaned like every model output.
      const parsed = toStorable(JSON.parse(turn.text)) as { items?: unknown };
      if (Array.isArray(parsed.items)) raw.push(...(parsed.items as unknown[]));
    } catch {
      // Not JSON: no items.
    }
  }
  const items: ExtractedItem[] = [];
  let dropped = 0;
  for (const candidate of raw.slice(0, MAX_ITEMS_PER_DOCUMENT)) {
    // The demo model and some real ones say `task` for `tasks`.
    const normalised =
      candidate && typeof candidate === 'object' && typeof (candidate as { type?: unknown }).type === 'string'
        ? { ...candidate, type: pluralType((candidate as { type: string }).type, dataTypes) }
        : candidate && typeof candidate === 'object'
          ? { ...candidate, type: dataTypes[0] }
          : candidate;
    const item = extractedItemSchema.safeParse(normalised);
    if (item.success && dataTypes.includes(item.data.type)) items.push(item.data);
    else dropped++;
  }
  return { items, dropped: dropped + Math.max(0, raw.length - MAX_ITEMS_PER_DOCUMENT) };
}

function pluralType(type: string, dataTypes: AgentDataType[]): string {
  const lower = type.toLowerCase();
  const plural = lower.endsWith('s') ? lower : `${lower}s`;
  return (AGENT_DATA_TYPES as readonly string[]).includes(plural) ? plural : dataTypes[0];
}

/**
 * A document (a file, a mail, a chat message) the prompt guard flags is not extracted: in mode
 * `block` the run skips it and says why in its log, naming the rules, and goes on with the next
 * one; a run is never refused for what a stranger wrote. In mode `warn` it is extracted (as data,
 * like every document) and its flag is only logged; `off` skips the check.
 */
export function guardedDocument(document: ExtractionDocument, mode: PromptGuardMode): { skip: string | null; reasons: string[] } {
  if (mode === 'off') return { skip: null, reasons: [] };
  const { flagged, reasons } = checkPrompt(`${document.title ?? ''}\n${document.text}`, mode, Number.POSITIVE_INFINITY);
  if (!flagged) return { skip: null, reasons: [] };
  return {
    skip: mode === 'block' ? `${document.source}: skipped, the prompt guard flagged it as instructions (${reasons.join(', ')})` : null,
    reasons,
  };
}

/** The marks every row an agent run inserts carries: suggested, and not approved until a person says so. */
export const SUGGESTED_ROW = { isAiSuggested: 1, isApproved: 0 } as const;

/**
 * The device insert for an item (the desktop app's local tables). Every row an agent run inserts,
 * whatever its table, carries `isAiSuggested: 1, isApproved: 0`: text from a mail or a file must
 * never reach the user's data as if the user had written it. A checkpoint needs a project, so it
 * can only be suggested with one.
 */
export function deviceInsertFor(item: ExtractedItem): { table: AgentDataType; data: Record<string, unknown> } | { error: string } {
  switch (item.type) {
    case 'tasks': {
      const due = item.dueDate ? Date.parse(item.dueDate) : Number.NaN;
      return {
        table: 'tasks',
        data: {
          title: item.title,
          ...(item.description ? { description: item.description } : {}),
          status: 'todo',
          priority: item.priority ?? 'medium',
          ...(Number.isFinite(due) && due >= 0 ? { dueDate: due } : {}),
          ...SUGGESTED_ROW,
        },
      };
    }
    case 'notes':
      return { table: 'notes', data: { title: item.title, content: item.description ?? item.title, ...SUGGESTED_ROW } };
    case 'projects':
      return {
        table: 'projects',
        data: { name: item.title, status: 'active', ...(item.description ? { aiSummary: item.description } : {}), ...SUGGESTED_ROW },
      };
    case 'checkpoints':
      return { error: `checkpoint "${item.title}" skipped: a checkpoint needs a project` };
  }
}

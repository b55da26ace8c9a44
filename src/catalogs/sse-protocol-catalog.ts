import { z } from 'zod';
import type { ChatEvent } from '../turns/turn-events';
import type { NotesEvent } from '../assistant/notes-events';
import type { GenerationEvent } from '../generation/events';
import { blockInputSchema } from '../schemas/blocks';
import {
  APPROVAL,
  APPROVAL_REQUESTED,
  approvalRequestedFields,
  approvalResolvedFields,
  block,
  GEN,
  SESSION,
  USER,
} from './catalog-examples';

/* The server-sent event streams: a generation's, a chat turn's and a session's ticket notes. */

/** One kind of SSE message: `data` is the JSON (or text) of `example`. */
export interface SseDoc<E> {
  summary: string;
  fields: Record<string, string>;
  example: E;
  /** Example `id:` (sequenced streams only). */
  id?: number;
  schema?: z.ZodType;
}
export type SseCatalog<U extends { type: string }> = { [K in U['type']]: SseDoc<Extract<U, { type: K }>> };

export const generationSseCatalog = {
  status: {
    summary:
      'The generation moved to a stage: `queued`, `thinking`, `tool`, `persisting`, `broadcasting` (a cancel ends the stream with `cancelled` instead).',
    fields: { generationId: 'the generation', stage: 'the new stage' },
    id: 1,
    example: { type: 'status', generationId: GEN, stage: 'queued' },
  },
  tool_output: {
    summary: 'The model produced a valid block (not stored yet).',
    fields: { generationId: 'the generation', index: '0-based, in order', block: '`{type, content}`' },
    id: 4,
    example: {
      type: 'tool_output',
      generationId: GEN,
      index: 0,
      block: { type: 'heading', content: { text: 'Plan the launch', level: 1 } },
    },
    schema: z.looseObject({
      type: z.literal('tool_output'),
      generationId: z.uuid(),
      index: z.number().int().min(0),
      block: blockInputSchema,
    }),
  },
  rollback: {
    summary:
      'A model failed mid-turn and the turn is asked again (of the same model once, then of the next model of the chain): drop every `tool_output` whose `index` is `fromIndex` or more ' +
      '(the redo sends its own outputs from that index on). A rerun of the whole generation (a retry, or a job run again after its worker died or was stopped) ' +
      'starts with `rollback {fromIndex: 0}` before its first `tool_output`. `complete` carries only the blocks stored.',
    fields: { generationId: 'the generation', fromIndex: 'the first discarded `tool_output` index' },
    id: 6,
    example: { type: 'rollback', generationId: GEN, fromIndex: 2 },
    schema: z.looseObject({ type: z.literal('rollback'), generationId: z.uuid(), fromIndex: z.number().int().min(0) }),
  },
  complete: {
    summary:
      'Last message: the stored blocks. `truncated` when the tier’s block limit, or a later model call the user’s budget had no room for, cut the generation short (the blocks made until then are kept).',
    fields: {
      generationId: 'the generation',
      blocks: 'stored blocks in rank order',
      truncated: 'boolean',
      usage: 'token usage (optional)',
    },
    id: 11,
    example: { type: 'complete', generationId: GEN, blocks: [block], truncated: false },
    schema: z.looseObject({ type: z.literal('complete'), blocks: z.array(blockInputSchema), truncated: z.boolean() }),
  },
  error: {
    summary:
      'Last message: the generation failed. Without an `id:` (code `stream_interrupted`, with `retry:`) it means only this connection failed: reconnect with `Last-Event-ID`.',
    fields: { generationId: 'the generation', code: 'e.g. `llm_unavailable`, `stream_interrupted`', message: 'readable' },
    id: 5,
    example: { type: 'error', generationId: GEN, code: 'llm_unavailable', message: 'The model did not answer after 3 attempts' },
  },
  cancelled: {
    summary:
      'Last message: the generation was cancelled (`POST …/generations/:generationId/cancel`). Nothing of it was stored; the usage up to the stop ' +
      'is on `GET …/generations/:generationId`. A stream resumed after the stop replays it.',
    fields: { generationId: 'the generation' },
    id: 7,
    example: { type: 'cancelled', generationId: GEN },
  },
} satisfies SseCatalog<GenerationEvent>;

export const chatSseCatalog = {
  text_chunk: {
    summary: "A piece of the assistant's answer.",
    fields: { sessionId: 'the session', text: 'the piece' },
    example: { type: 'text_chunk', sessionId: SESSION, text: 'You have 2 ' },
  },
  tool_call: {
    summary: "A tool call about to run on the turn's device (after its approval, for a dangerous one).",
    fields: {
      sessionId: 'the session',
      callId: 'pairs it with its `tool_result`',
      name: 'the tool',
      arguments: 'as the model gave them, strings over 500 characters cut',
      agent: 'on a coding turn: who calls it',
    },
    example: { type: 'tool_call', sessionId: SESSION, callId: APPROVAL, name: 'list_tasks', arguments: { status: 'todo' } },
  },
  tool_result: {
    summary: 'What the call gave the model.',
    fields: {
      sessionId: 'the session',
      callId: 'the `tool_call`',
      name: 'the tool',
      ok: 'false when it is an error (refused, failed, timed out, device gone)',
      content: 'the result as the model read it, cut at 4,000 characters',
      agent: 'on a coding turn: who called it',
      changeId: 'set when it changed a file: `POST /devices/:deviceId/changes/:changeId/undo` restores the previous content',
    },
    example: {
      type: 'tool_result',
      sessionId: SESSION,
      callId: APPROVAL,
      name: 'list_tasks',
      ok: true,
      content: '2 tasks: Book venue, Write brief',
    },
  },
  final: {
    summary: 'Last message: the whole answer and the token usage of the turn.',
    fields: { sessionId: 'the session', response: 'the answer', usage: '`{provider, model, inputTokens, outputTokens, costUsd}`' },
    example: {
      type: 'final',
      sessionId: SESSION,
      response: 'You have 2 todo tasks.',
      usage: { provider: 'openai', model: 'gpt-4o-mini', inputTokens: 412, outputTokens: 9, costUsd: 0.0000672 },
    },
  },
  approval_requested: {
    summary: 'The turn waits for your decision on a dangerous tool call (`PUT /hitl/requests/:id/approve|reject`); the stream stays open.',
    fields: approvalRequestedFields,
    example: { type: 'approval_requested', ...APPROVAL_REQUESTED },
  },
  approval_resolved: {
    summary: 'The request was decided (on any surface) or timed out; the turn goes on and ends with `final`.',
    fields: { sessionId: 'the session', ...approvalResolvedFields },
    example: { type: 'approval_resolved', sessionId: SESSION, approvalId: APPROVAL, status: 'rejected', decidedBy: USER },
  },
  agent: {
    summary:
      'A coding turn (the request named an `agent`): which agent works now and its state: `processing` (the model), `executing` (a tool runs), `waiting` (an approval), `idle` (answered), `error`.',
    fields: { sessionId: 'the session', agent: '`orchestrator`, `ask`, `coder`, `debug` or `architect`', state: 'what it is doing' },
    example: { type: 'agent', sessionId: SESSION, agent: 'coder', state: 'processing' },
  },
  plan: {
    summary:
      "A coding turn: the Orchestrator's plan, sent when it is made and as each step starts and ends; the steps run one after another, each by its agent.",
    fields: { sessionId: 'the session', steps: '`[{agent, task, status: pending|running|done|cancelled}]`' },
    example: {
      type: 'plan',
      sessionId: SESSION,
      steps: [
        { agent: 'architect', task: 'Plan a multiply function', status: 'done' },
        { agent: 'coder', task: 'Implement it in src/math.js', status: 'running' },
      ],
    },
  },
  citations: {
    summary:
      'The sources the answer may cite, sent before its text: the passages retrieved from the knowledge bases (a chatflow with a knowledge setting, or a `search_knowledge` call), numbered as the answer cites them (`[1]`).',
    fields: {
      sessionId: 'the session',
      sources:
        '`[{index, documentId, title, mediaType, chunkId, page?, section?, snippet}]`: `page` for a PDF, `section` the heading a passage sits under',
    },
    example: {
      type: 'citations',
      sessionId: SESSION,
      sources: [
        {
          index: 1,
          documentId: '0b8f5a52-3c1e-4f43-9d0a-6a4f4b8d1c21',
          title: 'handbook.pdf',
          mediaType: 'application/pdf',
          chunkId: '7c2e1d90-5b7a-4a55-8d3f-1e9b2c4a6f10',
          page: 3,
          snippet: 'Refunds are paid within 14 days of the return reaching the warehouse.',
        },
      ],
    },
  },
  error: {
    summary: 'Last message: the turn failed (`stream_interrupted` when only the connection did).',
    fields: { sessionId: 'the session', code: 'e.g. `llm_unavailable`', message: 'readable' },
    example: { type: 'error', sessionId: SESSION, code: 'llm_unavailable', message: 'The model did not answer' },
  },
  cancelled: {
    summary:
      'Last message: the turn was cancelled (`POST /chat/sessions/:id/cancel` or `chat_cancel`); `response` is the answer as far as it got, kept in the history marked `cancelled`.',
    fields: {
      sessionId: 'the session',
      response: 'the partial answer (may be empty)',
      usage: 'tokens and cost up to the stop (estimated when the provider reported none)',
    },
    example: {
      type: 'cancelled',
      sessionId: SESSION,
      response: 'You have 2 ',
      usage: { provider: 'openai', model: 'gpt-4o-mini', inputTokens: 412, outputTokens: 3, costUsd: 0.0000636 },
    },
  },
} satisfies SseCatalog<ChatEvent>;

/** Ticket notes: one-line JSON chunks, then a plain `[DONE]` or `[ERROR] …`; keyed by the notes log's event types. */
export const notesSseCatalog = {
  chunk: {
    summary: 'A piece of the markdown notes (a stored note arrives as one chunk), as one line of JSON: its newlines are escaped.',
    fields: { type: '`"chunk"`', text: 'markdown text, newlines included' },
    example: JSON.stringify({ type: 'chunk', text: '## Problem Summary\nThe user could not find their tasks.\n' }),
  },
  done: { summary: 'Last message: the notes are complete.', fields: { data: '`[DONE]`' }, example: '[DONE]' },
  error: {
    summary:
      'Last message: writing the notes failed; resolve the session again to retry. A model failure alone does not end here: the notes are then built from the session without a model and end `[DONE]`.',
    fields: { data: '`[ERROR] <message>`' },
    example: '[ERROR] The notes could not be written; resolve the session again to retry',
  },
} satisfies { [K in NotesEvent['type']]: SseDoc<string> };

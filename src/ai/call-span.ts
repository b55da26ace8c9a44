import { capturedContent, genAiContentCaptured } from '../observability/genai';
import { withSpan, type ActiveSpan } from '../observability/tracing';
import type { AttemptProgress, AttemptTurn } from './model-attempt';
import { ModelCallCancelled, ModelContentFiltered } from './model-errors';
import type { ModelRef, ModelTurn, ModelTurnRequest, ModelUsage } from './model-turn';

/**
 * One call to one model, traced: with tracing on it is a client span (`chat <model>`) with the
 * provider, the purpose and, once it ended, the tokens, cost and finish reason; never the prompt or
 * the answer unless content capture is on (then redacted). A call that failed gets what it cost up
 * to then, as `delivered` tells it.
 */
export function tracedCall(
  ref: ModelRef,
  request: ModelTurnRequest,
  delivered: AttemptProgress,
  maxTokens: number | undefined,
  call: () => Promise<AttemptTurn>,
): Promise<AttemptTurn> {
  return withSpan(
    `chat ${ref.model}`,
    'client',
    {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': ref.provider,
      'gen_ai.request.model': ref.model,
      'gen_ai.request.max_tokens': maxTokens,
      'switchboard.purpose': request.purpose,
      // Only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true, redacted (observability/genai.ts).
      'gen_ai.input.messages': genAiContentCaptured() ? capturedContent(inputMessages(request)) : undefined,
    },
    async (span) => {
      try {
        const turn = await call();
        if (span) recordUsage(span, turn.usage, turn.finishReason);
        if (span && genAiContentCaptured()) span.setAttributes({ 'gen_ai.output.messages': capturedContent(outputMessages(turn)) });
        return turn;
      } catch (error) {
        const usage = error instanceof ModelCallCancelled || error instanceof ModelContentFiltered ? error.usage : delivered.usage?.();
        if (span && usage) recordUsage(span, usage);
        throw error;
      }
    },
  );
}

/** The request's messages in the GenAI conventions' shape (`[{role, parts}]`), for captured spans. */
function inputMessages(request: ModelTurnRequest): unknown[] {
  const roles: Record<string, string> = { human: 'user', ai: 'assistant', system: 'system', tool: 'tool' };
  return request.messages.map((message) => {
    const calls = (message as { tool_calls?: Array<{ id?: string; name?: string; args?: unknown }> }).tool_calls;
    return {
      role: roles[message.getType()] ?? message.getType(),
      parts: [
        ...(message.content
          ? [{ type: 'text', content: typeof message.content === 'string' ? message.content : JSON.stringify(message.content) }]
          : []),
        ...(calls ?? []).map((call) => ({ type: 'tool_call', id: call.id, name: call.name, arguments: call.args })),
      ],
    };
  });
}

/** The answer in the GenAI conventions' shape, for captured spans. */
function outputMessages(turn: Pick<ModelTurn, 'text' | 'toolCalls' | 'finishReason'>): unknown[] {
  return [
    {
      role: 'assistant',
      parts: [
        ...(turn.text ? [{ type: 'text', content: turn.text }] : []),
        ...(turn.toolCalls ?? []).map((call) => ({ type: 'tool_call', id: call.id, name: call.name, arguments: call.args })),
      ],
      finish_reason: turn.finishReason,
    },
  ];
}

/** A model call's usage on its span (OpenTelemetry's generative-AI attribute names). */
function recordUsage(span: ActiveSpan, usage: ModelUsage, finishReason?: string): void {
  span.setAttributes({
    'gen_ai.usage.input_tokens': usage.inputTokens,
    'gen_ai.usage.output_tokens': usage.outputTokens,
    'gen_ai.response.finish_reasons': finishReason === undefined ? undefined : [finishReason],
    'switchboard.cost_usd': usage.costUsd,
    'switchboard.usage_estimated': usage.estimated,
  });
}

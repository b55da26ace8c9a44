import { REDACT_PATHS } from '../lib/logger';
import type { SpanAttributes } from './tracing-types';

/**
 * OpenTelemetry's generative-AI conventions beyond the model call: the attributes of an agent's
 * run (`invoke_agent`), a tool call (`execute_tool`) and an embedding request (`embeddings`), and
 * the opt-in capture of prompts, answers, tool arguments and results.
 *
 * Capture is off unless `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` (the variable the
 * OpenTelemetry GenAI instrumentations read). On, content goes on the span as JSON text, cut at
 * {@link MAX_CAPTURED_CHARS}, with the fields the logs redact (passwords, tokens, API keys,
 * secrets, emails) replaced by `[redacted]`, and bearer tokens, JWTs, embed tokens, Switchboard
 * API keys and `sk-` keys blanked out of the text.
 */

/** The most characters of one captured value; the rest is cut and the text ends with `…[truncated]`. */
export const MAX_CAPTURED_CHARS = 16_000;
export const TRUNCATION_MARK = '…[truncated]';

let capture = false;

/** Sets content capture from the tracing environment (once, when tracing starts). */
export function setGenAiContentCapture(env: Record<string, string | undefined>): void {
  capture = env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT?.trim().toLowerCase() === 'true';
}

/** Whether prompts and answers go on spans. */
export function genAiContentCaptured(): boolean {
  return capture;
}

/** The fields the logger redacts, by their last name; prompts and message content are what capture is for. */
const REDACTED_FIELDS = new Set(
  REDACT_PATHS.map((path) =>
    path
      .replace(/^.*[.[]"?/, '')
      .replace(/"?\]$/, '')
      .toLowerCase(),
  ).filter((name) => name !== 'prompt' && name !== 'content'),
);
const SECRET_TEXT: RegExp[] = [
  /\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}/g,
  /\bsbe_[A-Za-z0-9_-]{43}\b/g,
  /\bsb_(?:live|test)?_?[A-Za-z0-9_-]{20,}\b/g,
  /\bsk-[A-Za-z0-9_-]{16,}\b/g,
];

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return SECRET_TEXT.reduce((text, pattern) => text.replace(pattern, '[redacted]'), value);
  if (depth > 20 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, REDACTED_FIELDS.has(key.toLowerCase()) ? '[redacted]' : scrub(item, depth + 1)]),
  );
}

/** `value` as a captured span attribute: redacted JSON text (a string stays text), or undefined when capture is off. */
export function capturedContent(value: unknown): string | undefined {
  if (!capture || value === undefined) return undefined;
  const scrubbed = scrub(value);
  const text = typeof scrubbed === 'string' ? scrubbed : JSON.stringify(scrubbed);
  return text.length > MAX_CAPTURED_CHARS ? `${text.slice(0, MAX_CAPTURED_CHARS)}${TRUNCATION_MARK}` : text;
}

/** An `invoke_agent` span's attributes: which agent (an assistant turn, an agentflow node, a background agent) and its conversation. */
export function invokeAgentAttributes(agent: { name: string; id?: string; conversationId?: string; model?: string }): SpanAttributes {
  return {
    'gen_ai.operation.name': 'invoke_agent',
    'gen_ai.agent.name': agent.name,
    'gen_ai.agent.id': agent.id,
    'gen_ai.conversation.id': agent.conversationId,
    'gen_ai.request.model': agent.model,
  };
}

/** An `execute_tool` span's attributes, with the arguments when content is captured. */
export function executeToolAttributes(tool: { name: string; callId?: string; kind: string; args?: unknown }): SpanAttributes {
  return {
    'gen_ai.operation.name': 'execute_tool',
    'gen_ai.tool.name': tool.name,
    'gen_ai.tool.call.id': tool.callId,
    'gen_ai.tool.type': 'function',
    'switchboard.tool.kind': tool.kind,
    'gen_ai.tool.call.arguments': capturedContent(tool.args),
  };
}

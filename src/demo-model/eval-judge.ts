import { messageText, type ChatRequest, type ChatTurn } from './openai-compatible-server';

/**
 * The LLM judge of an evaluation on the offline demo model. The judge's system prompt starts with
 * the marker (kept in step with JUDGE_MARKER in src/evals/judge.ts); its user message is the JSON
 * object `{input, expected, answer}`. The verdict is deterministic: the share of the expected
 * output's words that appear in the answer (any non-empty answer scores 1 when nothing is
 * expected), as the strict JSON a judge must answer.
 */
const JUDGE_MARKER = 'You are the judge of a Switchboard evaluation.';

export function isJudgeRequest(request: ChatRequest): boolean {
  const system = request.messages.find((m) => m.role === 'system');
  return system !== undefined && messageText(system).startsWith(JUDGE_MARKER);
}

const words = (text: string) => new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);

export function judgeTurn(request: ChatRequest): ChatTurn {
  const user = request.messages.find((m) => m.role === 'user');
  let sample: { expected?: unknown; answer?: unknown } = {};
  try {
    sample = JSON.parse(messageText(user ?? { content: '' })) as typeof sample;
  } catch {
    return { text: JSON.stringify({ score: 0, reason: 'The demo judge could not read the sample.' }) };
  }
  const answer = words(typeof sample.answer === 'string' ? sample.answer : '');
  if (typeof sample.expected !== 'string' || !sample.expected.trim()) {
    const score = answer.size ? 1 : 0;
    return {
      text: JSON.stringify({ score, reason: score ? 'Nothing was expected and the answer is not empty.' : 'The answer is empty.' }),
    };
  }
  const expected = [...words(sample.expected)];
  const found = expected.filter((word) => answer.has(word)).length;
  const score = expected.length ? Math.round((found / expected.length) * 100) / 100 : 0;
  return { text: JSON.stringify({ score, reason: `${found} of ${expected.length} expected words appear in the answer (demo judge).` }) };
}

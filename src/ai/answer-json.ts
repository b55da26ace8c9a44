/**
 * The JSON value a model's answer holds: its text, trimmed, parsed, with a Markdown code fence
 * around it (```` ``` ```` or ```` ```json ````) tolerated, since models add one even when told not to.
 */
export function jsonInAnswer(text: string): { ok: true; value: unknown } | { ok: false } {
  const body = text
    .trim()
    .replace(/^```(?:json)?\s*/i, '')
    .replace(/\s*```$/, '');
  try {
    return { ok: true, value: JSON.parse(body) };
  } catch {
    return { ok: false };
  }
}

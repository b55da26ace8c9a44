/*
 * A tool call's arguments as the turn's stream and its approval requests show them.
 */

/** Tool arguments for the stream: strings over 500 characters cut, so a 1 MB write_file does not travel twice. */
export function bounded(args: Record<string, unknown>): Record<string, unknown> {
  const cutText = (value: unknown): unknown =>
    typeof value === 'string'
      ? value.length > 500
        ? `${value.slice(0, 500)}… (${value.length} characters)`
        : value
      : Array.isArray(value)
        ? value.slice(0, 50).map(cutText)
        : value && typeof value === 'object'
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cutText(v)]))
          : value;
  return cutText(args) as Record<string, unknown>;
}

/** A tool call's arguments as the object an approval request shows (anything else as none). */
export const argsObject = (args: unknown): Record<string, unknown> =>
  args !== null && typeof args === 'object' && !Array.isArray(args) ? (args as Record<string, unknown>) : {};

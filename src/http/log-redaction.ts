/**
 * Path segments that are credentials: an embed's public URL carries its token
 * (`/embed/public/<token>/chat`), which anyone reading the request log could use as the widget.
 */
const SECRET_SEGMENTS: Array<[RegExp, string]> = [[/\/embed\/public\/[^/?#]+/g, '/embed/public/[redacted]']];

/** The path of a request as the request log may show it: no query, no credential segment. */
export function loggedPath(url: string): string {
  let path = url.split('?')[0];
  for (const [pattern, replacement] of SECRET_SEGMENTS) path = path.replace(pattern, replacement);
  return path;
}

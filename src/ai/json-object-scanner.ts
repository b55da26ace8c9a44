/**
 * Follows the JSON text of one tool call's arguments as its pieces stream in and tells when the
 * top-level object closes: one pass over each piece (the inside of strings is skipped by native
 * searches), so the arguments are parsed once, when complete, never per chunk. It judges structure
 * only; whether the text is valid JSON is for the parse.
 */
export class JsonObjectScanner {
  private depth = 0;
  private inString = false;
  /** The previous piece ended in a string's backslash: the next character is escaped. */
  private escaped = false;
  private opened = false;
  private closed = false;

  /** Scans `piece`; true when the top-level object (or array) closed in it. Once closed, always false. */
  push(piece: string): boolean {
    if (this.closed) return false;
    const end = piece.length;
    let i = 0;
    // Positions of the next quote and backslash at or after i (-1: none left), searched again only once passed.
    let quote = -2;
    let slash = -2;
    while (i < end) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i += 1;
          continue;
        }
        if (quote !== -1 && quote < i) quote = piece.indexOf('"', i);
        if (slash !== -1 && slash < i) slash = piece.indexOf('\\', i);
        if (slash !== -1 && (quote === -1 || slash < quote)) {
          if (slash + 1 < end) i = slash + 2;
          else {
            this.escaped = true;
            i = end;
          }
          continue;
        }
        if (quote === -1) return false;
        this.inString = false;
        i = quote + 1;
        continue;
      }
      const code = piece.charCodeAt(i);
      i += 1;
      if (code === 34) this.inString = true;
      else if (code === 123 || code === 91) {
        this.depth += 1;
        this.opened = true;
      } else if ((code === 125 || code === 93) && this.opened) {
        this.depth -= 1;
        if (this.depth === 0) {
          this.closed = true;
          return true;
        }
      }
    }
    return false;
  }
}

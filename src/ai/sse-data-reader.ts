/**
 * The `data` of each message of a `text/event-stream`, read incrementally from decoded text: lines
 * end in LF, CRLF or CR (a CRLF split between two pieces included), `:` lines are comments, a
 * message's several `data` lines are joined with LF, a blank line ends the message, and a message
 * without `data` is none. The other fields (`event`, `id`, `retry`) mean nothing to a chat
 * completion stream and are skipped. One pass over each piece: line ends are found by native
 * searches, and each message's data is cut out once, with no copy of the piece and no object per
 * line or message.
 */
export class SseDataReader {
  /** The piece being read, and where its unread part starts. */
  private text = '';
  private at = 0;
  /** Next LF and CR at or after `at` in `text` (-1: none left; -2: not searched yet). */
  private lf = -2;
  private cr = -2;
  /** The start of a line the last piece ended in, waiting for its end. */
  private carry = '';
  /** The last piece ended in CR: an LF starting the next one belongs to it. */
  private crEnded = false;
  /** The current message's data so far (undefined: no `data` line yet). */
  private data: string | undefined = undefined;
  private started = false;
  private ended = false;

  /** Adds the next piece of decoded text; its messages are taken with `next()`. */
  push(piece: string): void {
    if (this.at < this.text.length) {
      // Read to its end (`next()` gave undefined), the rest is the start of a line; else it is read again with the piece.
      const rest = this.text.slice(this.at);
      if (this.lf === -1 && this.cr === -1) this.carry += rest;
      else piece = rest + piece;
    }
    this.text = piece;
    this.at = 0;
    this.lf = -2;
    this.cr = -2;
    if (!this.started && piece.length) {
      this.started = true;
      if (piece.charCodeAt(0) === 0xfeff) this.at = 1;
    }
    if (this.crEnded && piece.length) {
      this.crEnded = false;
      if (piece.charCodeAt(this.at) === 10) this.at += 1;
    }
  }

  /** The stream ended: a last line without its end is a line, and a message without its blank line is complete. */
  end(): void {
    this.ended = true;
  }

  /** The data of the next complete message, or undefined when the text read so far holds no more. */
  next(): string | undefined {
    const text = this.text;
    for (;;) {
      if (this.lf !== -1 && this.lf < this.at) this.lf = text.indexOf('\n', this.at);
      if (this.cr !== -1 && this.cr < this.at) this.cr = text.indexOf('\r', this.at);
      const lf = this.lf;
      const cr = this.cr;
      if (lf === -1 && cr === -1) return this.ended ? this.finish() : undefined;
      // The line ends at the first LF or CR; a CR right before an LF is one end (CRLF).
      const end = cr === -1 || (lf !== -1 && lf < cr) ? lf : cr;
      let after = end + 1;
      if (end === cr) {
        if (after === text.length) this.crEnded = true;
        else if (text.charCodeAt(after) === 10) after += 1;
      }
      let data: string | undefined;
      if (this.carry) {
        const line = this.carry + text.slice(this.at, end);
        this.carry = '';
        data = this.line(line, 0, line.length);
      } else data = this.line(text, this.at, end);
      this.at = after;
      if (data !== undefined) return data;
    }
  }

  /** The end of the stream: the unfinished line, then the unfinished message. */
  private finish(): string | undefined {
    const rest = this.carry + this.text.slice(this.at);
    this.carry = '';
    this.text = '';
    this.at = 0;
    // A line that is not blank never completes a message: it only adds to the data ended below.
    if (rest) this.line(rest, 0, rest.length);
    return this.line('', 0, 0);
  }

  /** One line, `text` from `start` to `end`: the message's data when the line is blank and ends one. */
  private line(text: string, start: number, end: number): string | undefined {
    if (start === end) {
      const data = this.data;
      this.data = undefined;
      return data;
    }
    // `data`, `data:` and `data: ` followed by the value; any other field (or a comment) is skipped.
    if (!text.startsWith('data', start)) return undefined;
    let from = start + 4;
    if (from < end) {
      if (text.charCodeAt(from) !== 58) return undefined;
      from += 1;
      if (from < end && text.charCodeAt(from) === 32) from += 1;
    }
    const value = text.slice(from, end);
    this.data = this.data === undefined ? value : `${this.data}\n${value}`;
    return undefined;
  }
}

import { MAX_DIFF_BYTES } from './code-protocol';

type Op = { kind: ' ' | '-' | '+'; line: string; noNewline?: boolean };

/** Lines of a text; the last one says when it has no newline at its end. */
function linesOf(text: string | null): { lines: string[]; noNewlineAtEnd: boolean } {
  if (text === null || text === '') return { lines: [], noNewlineAtEnd: false };
  const lines = text.split('\n');
  const noNewlineAtEnd = lines[lines.length - 1] !== '';
  if (!noNewlineAtEnd) lines.pop();
  return { lines, noNewlineAtEnd };
}

/** Above this many cells the middle of a change is shown as removed and added whole (still a correct diff). */
const MAX_LCS_CELLS = 4_000_000;

/** The line edits turning `a` into `b`: common start and end kept, the middle by longest common subsequence. */
function editScript(a: string[], b: string[]): Op[] {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  const ops: Op[] = a.slice(0, start).map((line) => ({ kind: ' ', line }));
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const n = midA.length;
  const m = midB.length;
  if (n * m > MAX_LCS_CELLS || n === 0 || m === 0) {
    ops.push(...midA.map((line): Op => ({ kind: '-', line })), ...midB.map((line): Op => ({ kind: '+', line })));
  } else {
    // lengths[i][j]: the LCS of midA[i..] and midB[j..], in one flat array.
    const width = m + 1;
    const lengths = new Uint32Array((n + 1) * width);
    for (let i = n - 1; i >= 0; i -= 1)
      for (let j = m - 1; j >= 0; j -= 1)
        lengths[i * width + j] =
          midA[i] === midB[j] ? lengths[(i + 1) * width + j + 1] + 1 : Math.max(lengths[(i + 1) * width + j], lengths[i * width + j + 1]);
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && midA[i] === midB[j]) {
        ops.push({ kind: ' ', line: midA[i] });
        i += 1;
        j += 1;
      } else if (i < n && (j === m || lengths[(i + 1) * width + j] >= lengths[i * width + j + 1])) {
        // Removals before additions, as diff tools show them.
        ops.push({ kind: '-', line: midA[i] });
        i += 1;
      } else {
        ops.push({ kind: '+', line: midB[j] });
        j += 1;
      }
    }
  }
  ops.push(...a.slice(endA).map((line): Op => ({ kind: ' ', line })));
  return ops;
}

/**
 * The unified diff (3 lines of context) that turns `before` into `after` for `path`; `null` is a
 * file that does not exist. Empty when nothing changes. Longer than `maxBytes`: cut at a line,
 * with a last line saying how much was left out.
 */
export function unifiedDiff(path: string, before: string | null, after: string | null, maxBytes = MAX_DIFF_BYTES): string {
  if (before === after) return '';
  const a = linesOf(before);
  const b = linesOf(after);
  const ops = editScript(a.lines, b.lines);
  // The last line of each side says when it had no newline (the diff shows it as a change).
  const lastIndex = (skip: Op['kind']) => {
    for (let k = ops.length - 1; k >= 0; k -= 1) if (ops[k].kind !== skip) return k;
    return -1;
  };
  const lastA = lastIndex('+');
  const lastB = lastIndex('-');
  if (a.noNewlineAtEnd !== b.noNewlineAtEnd && lastA >= 0 && lastB >= 0 && lastA === lastB && ops[lastA].kind === ' ') {
    // The same last line, but its newline changed: show it removed and added.
    const line = ops[lastA].line;
    ops.splice(lastA, 1, { kind: '-', line, noNewline: a.noNewlineAtEnd }, { kind: '+', line, noNewline: b.noNewlineAtEnd });
  } else {
    if (a.noNewlineAtEnd && lastA >= 0) ops[lastA] = { ...ops[lastA], noNewline: true };
    if (b.noNewlineAtEnd && lastB >= 0 && ops[lastB].kind === '+') ops[lastB] = { ...ops[lastB], noNewline: true };
  }

  const out = [before === null ? '--- /dev/null' : `--- a/${path}`, after === null ? '+++ /dev/null' : `+++ b/${path}`];
  const changed = ops.flatMap((op, index) => (op.kind === ' ' ? [] : [index]));
  let bytes = out.join('\n').length;
  let cut = 0;
  for (let h = 0; h < changed.length;) {
    // A hunk: from 3 lines before a change to 3 lines after the last change within 6 lines of the next.
    let last = h;
    while (last + 1 < changed.length && changed[last + 1] - changed[last] <= 6) last += 1;
    const from = Math.max(0, changed[h] - 3);
    const to = Math.min(ops.length, changed[last] + 4);
    let lineA = 1;
    let lineB = 1;
    for (let k = 0; k < from; k += 1) {
      if (ops[k].kind !== '+') lineA += 1;
      if (ops[k].kind !== '-') lineB += 1;
    }
    const body: string[] = [];
    let countA = 0;
    let countB = 0;
    for (let k = from; k < to; k += 1) {
      const op = ops[k];
      body.push(`${op.kind}${op.line}`);
      if (op.noNewline) body.push('\\ No newline at end of file');
      if (op.kind !== '+') countA += 1;
      if (op.kind !== '-') countB += 1;
    }
    const range = (start: number, count: number) => (count === 0 ? `${start - 1},0` : count === 1 ? `${start}` : `${start},${count}`);
    const hunk = [`@@ -${range(lineA, countA)} +${range(lineB, countB)} @@`, ...body];
    for (const line of hunk) {
      if (cut || bytes + line.length + 1 > maxBytes) cut += 1;
      else {
        out.push(line);
        bytes += line.length + 1;
      }
    }
    h = last + 1;
  }
  if (cut) out.push(`… ${cut} more line(s) of this diff not shown`);
  return `${out.join('\n')}\n`;
}

/**
 * A CSV text (RFC 4180: comma-separated, fields in double quotes may hold commas, line breaks and
 * doubled quotes; CRLF or LF line ends) as rows of fields, or the first problem with its line.
 */
export function parseCsv(text: string): { ok: true; rows: string[][] } | { ok: false; line: number; message: string } {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let at = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endField = () => {
    row.push(field);
    field = '';
  };
  const endRow = () => {
    endField();
    // A blank line is no row.
    if (!(row.length === 1 && row[0] === '')) rows.push(row);
    row = [];
  };
  while (at < text.length) {
    const char = text[at];
    if (quoted) {
      if (char === '"') {
        if (text[at + 1] === '"') {
          field += '"';
          at += 2;
          continue;
        }
        quoted = false;
        at += 1;
        const next = text[at];
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r')
          return { ok: false, line, message: 'a quoted field must end at a comma or the end of its line' };
        continue;
      }
      if (char === '\n') line += 1;
      field += char;
      at += 1;
      continue;
    }
    if (char === '"') {
      if (field !== '') return { ok: false, line, message: 'a quote inside an unquoted field' };
      quoted = true;
    } else if (char === ',') endField();
    else if (char === '\n' || char === '\r') {
      endRow();
      if (char === '\r' && text[at + 1] === '\n') at += 1;
      line += 1;
    } else field += char;
    at += 1;
  }
  if (quoted) return { ok: false, line, message: 'a quoted field is not closed' };
  if (field !== '' || row.length) endRow();
  return { ok: true, rows };
}

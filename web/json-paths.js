// Where each value of a JSON text starts and ends, by path (`nodes.1.dependsOn.0`), so a
// validation error's path can point at the text the user wrote. Tolerant: on malformed JSON it
// returns what it found before the error (JSON.parse reports the error itself).

/** Map of dotted path → {start, end} character offsets (`''` is the whole document). */
export function jsonPaths(text) {
  const spans = new Map();
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  };
  const string = () => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const value = (path) => {
    ws();
    const start = i;
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') i++;
      else
        for (;;) {
          ws();
          if (text[i] !== '"') throw new Error('key expected');
          const key = string();
          ws();
          if (text[i++] !== ':') throw new Error('colon expected');
          value(path === '' ? key : `${path}.${key}`);
          ws();
          if (text[i] === ',') i++;
          else if (text[i++] === '}') break;
          else throw new Error('comma expected');
        }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') i++;
      else
        for (let n = 0; ; n++) {
          value(path === '' ? String(n) : `${path}.${n}`);
          ws();
          if (text[i] === ',') i++;
          else if (text[i++] === ']') break;
          else throw new Error('comma expected');
        }
    } else if (c === '"') string();
    else if (c !== undefined) {
      while (i < text.length && !',}] \t\r\n'.includes(text[i])) i++;
    } else throw new Error('value expected');
    spans.set(path, { start, end: i });
  };
  try {
    value('');
  } catch {
    // malformed: keep the spans found so far
  }
  return spans;
}

/** The span of the longest prefix of `path` that exists (an unknown key points at its parent). */
export function locate(spans, path) {
  const parts = path ? path.split('.') : [];
  for (let n = parts.length; n >= 0; n--) {
    const span = spans.get(parts.slice(0, n).join('.'));
    if (span) return span;
  }
  return null;
}

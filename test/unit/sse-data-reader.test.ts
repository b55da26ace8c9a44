import { SseParser } from '../../packages/client/src/index';
import { SseDataReader } from '../../src/ai/sse-data-reader';

/** Every message's data, the text given in `pieces`, read to the end of the stream. */
function read(pieces: string[]): string[] {
  const reader = new SseDataReader();
  const out: string[] = [];
  for (const piece of pieces) {
    reader.push(piece);
    for (let data = reader.next(); data !== undefined; data = reader.next()) out.push(data);
  }
  reader.end();
  for (let data = reader.next(); data !== undefined; data = reader.next()) out.push(data);
  return out;
}

/** The same stream read by the SDK's spec-following parser (a last message without its blank line ends with the stream). */
function reference(text: string): string[] {
  const out: string[] = [];
  const parser = new SseParser((message) => out.push(message.data));
  parser.feed(text);
  parser.feed('\n\n');
  return out;
}

/** `text` cut every `size` characters. */
const cut = (text: string, size: number) =>
  Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size));

describe('SseDataReader: the data of an event stream, whatever the pieces', () => {
  test('LF, CRLF and CR line ends, comments, several data lines, other fields, a BOM', () => {
    const text =
      '\uFEFFretry: 250\r\nid: 7\r\nevent: status\r\ndata: {"a":1}\r\n\r\n' +
      ': ping\n\n' +
      'data: line one\rdata: line two\r\r' +
      'data:no space\ndata:  two spaces\n\n' +
      'data\ndata:\n\n' +
      'dataX: not data\nevent: only an event\n\n' +
      'data: last, with no blank line';
    const expected = ['{"a":1}', 'line one\nline two', 'no space\n two spaces', '\n', 'last, with no blank line'];
    expect(reference(text)).toEqual(expected);
    for (const size of [1, 2, 3, 5, 8, 13, text.length]) expect(read(cut(text, size))).toEqual(expected);
  });

  test('a CRLF split between two pieces is one line end, and a CR ending the stream ends its line', () => {
    expect(read(['data: a\r', '\ndata: b\r', '\n\r', '\n'])).toEqual(['a\nb']);
    expect(read(['data: a\r', '\r', '\ndata: b\r'])).toEqual(['a', 'b']);
    expect(read(['data: a\r\r'])).toEqual(['a']);
  });

  test('empty pieces, a stream of comments, and pieces pushed before the last was read to its end', () => {
    expect(read(['', ': x\n', '', '\n'])).toEqual([]);
    const reader = new SseDataReader();
    reader.push('data: one\n\ndata: t');
    reader.push('wo\n\n');
    expect([reader.next(), reader.next(), reader.next()]).toEqual(['one', 'two', undefined]);
  });

  test('matches the spec-following parser on generated streams cut at every size', () => {
    const lines = [
      'data: {"x":"é ✓ 😀"}',
      'data:',
      'data',
      ': comment',
      'event: e',
      'id: 3',
      'data:  spaced',
      'retry: 10',
      'datum: no',
      '',
    ];
    const ends = ['\n', '\r\n', '\r'];
    // A deterministic generator: the same streams on every run.
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let stream = 0; stream < 200; stream += 1) {
      let text = random(4) === 0 ? '\uFEFF' : '';
      for (let line = 0, count = 1 + random(12); line < count; line += 1) text += lines[random(lines.length)] + ends[random(ends.length)];
      const expected = reference(text);
      for (const size of [1, 2, 3, 7, 64]) expect(read(cut(text, size))).toEqual(expected);
    }
  });
});

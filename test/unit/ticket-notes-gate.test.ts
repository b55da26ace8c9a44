import fc from 'fast-check';
import {
  NOTE_SECTIONS,
  NotesGate,
  hasNoteSections,
  resolutionOutputs,
  templateNotes,
  templateSections,
} from '../../src/assistant/ticket-notes';

const bodies = ['the problem', '- step one\n- step two', 'fixed it', '- nothing'];
const valid = NOTE_SECTIONS.map((s, i) => `## ${s}\n${bodies[i]}`).join('\n\n');

/** Feeds `text` cut at `cuts` and returns what was forwarded plus the end result. */
function run(text: string, cuts: number[]) {
  const gate = new NotesGate();
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  let forwarded = '';
  let from = 0;
  for (const point of [...points, text.length]) {
    forwarded += gate.push(text.slice(from, point));
    from = point;
  }
  const end = gate.end(bodies);
  return { forwarded: forwarded + end.tail, ...end };
}

describe('NotesGate', () => {
  test('valid notes pass through unchanged however the model chunks them', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 30 }), (cuts) => {
        const result = run(valid, cuts);
        expect(result.completed).toBe(false);
        expect(result.forwarded).toBe(valid);
        expect(result.notes).toBe(valid);
      }),
    );
  });

  test('text that strays is completed to four sections, and what was streamed is what is stored', () => {
    const strays = [
      'Sure, here are the notes.',
      '## Problem Summary\nwifi drops\n\n## Resolution\nfixed',
      '## Problem Summary\nwifi drops\n\n## Steps Taken\n- restarted',
      '',
      '## Problem Summary\nx\n## Steps Taken\ny\n## Resolution\nz\n## Next Steps\nw\n## Extra\nq',
    ];
    fc.assert(
      fc.property(fc.constantFrom(...strays), fc.array(fc.nat(), { maxLength: 20 }), (text, cuts) => {
        const result = run(text, cuts);
        expect(result.forwarded).toBe(result.notes);
        expect(hasNoteSections(result.notes)).toBe(true);
      }),
    );
  });

  test('the template has the four sections and uses the resolution summary', () => {
    const notes = templateNotes(
      [
        { role: 'user', content: 'Printer offline' },
        { role: 'assistant', content: 'Power-cycle it' },
      ],
      'Replaced the cable',
    );
    expect(hasNoteSections(notes)).toBe(true);
    expect(notes).toContain('Printer offline');
    expect(templateSections([], null)[2]).toMatch(/without a summary/);
    expect(notes).toContain('Replaced the cable');
  });
});

describe('resolutionOutputs', () => {
  const notes = [
    '## Problem Summary',
    'The VPN drops after sleep.',
    '',
    '## Steps Taken',
    '- Checked the client log',
    '2. Renewed the certificate',
    '',
    '## Resolution',
    'Certificate renewed.',
    '',
    '## Next Steps',
    '- None',
  ].join('\n');

  test('the problem, each step of Steps Taken, and the Resolution when the user gave no summary', () => {
    expect(resolutionOutputs(notes, null)).toEqual({
      problemSummary: 'The VPN drops after sleep.',
      diagnosticSteps: [{ description: 'Checked the client log' }, { description: 'Renewed the certificate' }],
      resolutionSummary: 'Certificate renewed.',
    });
  });

  test("the user's own summary wins over the notes' Resolution", () => {
    expect(resolutionOutputs(notes, '  Rotated the VPN certificate. ').resolutionSummary).toBe('Rotated the VPN certificate.');
    expect(resolutionOutputs(notes, '   ').resolutionSummary).toBe('Certificate renewed.');
  });
});

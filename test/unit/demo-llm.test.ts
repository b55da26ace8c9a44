import type { ChatMessage, ChatRequest, ChatTool } from '../../src/demo-model/openai-compatible-server';
import { canvasTurn, deriveSubject, extractListItems, planCanvas } from '../../src/demo-model/canvas';
import { chatToolsTurn, pickToolCall } from '../../src/demo-model/chat-tools';
import { extractItems, extractionTurn, isExtractionRequest } from '../../src/demo-model/extraction';
import { isJourneyRequest, planJourney } from '../../src/demo-model/journey';
import { JOURNEY_SYSTEM_PROMPT, journeySystemPrompt } from '../../src/agents/journey-script';
import { TICKET_NOTE_SECTIONS, isTicketNotesRequest, writeTicketNotes } from '../../src/demo-model/ticket-notes';
import { cosineSimilarity, embedText } from '../../src/demo-model/embeddings';
import { demoResponder } from '../../src/demo-model/responder';
import { errorFacts } from '../../src/demo-model/conversation';
import { summariseToolResult } from '../../src/demo-model/tool-results';

const tool = (name: string, properties: Record<string, unknown> = {}): ChatTool => ({
  type: 'function',
  function: { name, parameters: { type: 'object', properties } },
});
const request = (messages: ChatMessage[], tools?: ChatTool[], extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'demo',
  messages,
  tools,
  ...extra,
});
const user = (content: string): ChatMessage => ({ role: 'user', content });

const CANVAS_TOOLS = ['create_heading', 'create_todo', 'create_bullet_list', 'create_text'].map((n) => tool(n));
const TASK_TOOLS = [
  tool('list_tasks', { status: { type: 'string', enum: ['todo', 'in_progress', 'done'] } }),
  tool('create_task', { title: { type: 'string' }, status: { type: 'string' } }),
  tool('delete_task', { id: { type: 'string' } }),
  tool('update_task', { taskId: { type: 'string' }, status: { type: 'string', enum: ['todo', 'in_progress', 'done'] } }),
  tool('list_notes', {}),
];
const UUID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';

describe('canvas generation', () => {
  const prompt = 'Plan the launch: a heading, three todos (book venue, invite press, ship beta) and a short paragraph';

  test('the spec example gives exactly a heading, three todos and one text', () => {
    const calls = planCanvas(prompt);
    expect(calls.map((c) => c.name)).toEqual(['create_heading', 'create_todo', 'create_todo', 'create_todo', 'create_text']);
    expect(calls[0].args).toEqual({ text: 'Plan the launch', level: 1 });
    expect(calls.slice(1, 4).map((c) => c.args)).toEqual([
      { text: 'book venue', checked: false },
      { text: 'invite press', checked: false },
      { text: 'ship beta', checked: false },
    ]);
    expect(typeof calls[4].args.text).toBe('string');
  });

  test('the list after the first colon is used when there are no parentheses', () => {
    expect(extractListItems('Weekend chores: wash car, mow lawn and fix sink')).toEqual(['wash car', 'mow lawn', 'fix sink']);
    expect(planCanvas('Weekend tasks: wash car, mow lawn, and fix sink').filter((c) => c.name === 'create_todo')).toHaveLength(3);
  });

  test('without a todo/task word the items become one bullet list', () => {
    const calls = planCanvas('Shopping list: milk, eggs, bread');
    expect(calls.map((c) => c.name)).toEqual(['create_heading', 'create_bullet_list', 'create_text']);
    expect(calls[1].args).toEqual({ items: ['milk', 'eggs', 'bread'] });
  });

  test('a prompt with no list gives a heading and a text', () => {
    expect(planCanvas('write an intro about our onboarding flow for new hires').map((c) => c.name)).toEqual([
      'create_heading',
      'create_text',
    ]);
    expect(deriveSubject('write an intro about our onboarding flow for new hires')).toBe('Write an intro about our onboarding');
    expect(planCanvas('Roadmap: a heading and a paragraph').map((c) => c.name)).toEqual(['create_heading', 'create_text']);
  });

  test('after tool results it reports and stops; an error result ends the loop too', () => {
    const first = canvasTurn(request([user(prompt)], CANVAS_TOOLS));
    expect(first.toolCalls).toHaveLength(5);
    const calls = first.toolCalls!.map((c, i) => ({
      id: `c${i}`,
      type: 'function' as const,
      function: { name: c.name, arguments: JSON.stringify(c.args) },
    }));
    const results = calls.map((c): ChatMessage => ({ role: 'tool', tool_call_id: c.id, content: 'ok' }));
    const done = canvasTurn(request([user(prompt), { role: 'assistant', content: null, tool_calls: calls }, ...results], CANVAS_TOOLS));
    expect(done).toEqual({ text: 'Created 5 blocks (demo model).' });
    const failed = canvasTurn(
      request(
        [
          user(prompt),
          { role: 'assistant', content: null, tool_calls: calls },
          { role: 'tool', tool_call_id: 'c0', content: 'Error: canvas is locked' },
        ],
        CANVAS_TOOLS,
      ),
    );
    expect(failed.toolCalls).toBeUndefined();
    expect(failed.text).toMatch(/canvas is locked/);
  });
});

describe('tools in chat', () => {
  test('picks the best matching tool and fills only declared args', () => {
    expect(pickToolCall('how many todo tasks do I have?', TASK_TOOLS)).toEqual({ name: 'list_tasks', args: { status: 'todo' } });
    expect(pickToolCall('create a task called "Write launch brief"', TASK_TOOLS)).toEqual({
      name: 'create_task',
      args: { title: 'Write launch brief' },
    });
    expect(pickToolCall(`delete task ${UUID}`, TASK_TOOLS)).toEqual({ name: 'delete_task', args: { id: UUID } });
    expect(pickToolCall(`mark task ${UUID} as done`, TASK_TOOLS)).toEqual({ name: 'update_task', args: { taskId: UUID, status: 'done' } });
    expect(pickToolCall('show my notes', TASK_TOOLS)).toEqual({ name: 'list_notes', args: {} });
    expect(pickToolCall('create a task named Buy milk', TASK_TOOLS)).toEqual({ name: 'create_task', args: { title: 'Buy milk' } });
  });

  test('answers in text when no tool matches', () => {
    expect(pickToolCall('what is the weather like?', TASK_TOOLS)).toBeUndefined();
    expect(chatToolsTurn(request([user('what is the weather like?')], TASK_TOOLS)).text).toMatch(/demo model/);
  });

  test('after a tool result it answers from what the tool returned', () => {
    const call = { id: 'call_1', type: 'function' as const, function: { name: 'list_tasks', arguments: '{"status":"todo"}' } };
    const tasks = JSON.stringify([{ title: 'Write launch brief' }, { title: 'Book venue' }, { title: 'Ship beta' }]);
    const turn = chatToolsTurn(
      request(
        [
          user('how many todo tasks?'),
          { role: 'assistant', content: null, tool_calls: [call] },
          { role: 'tool', tool_call_id: 'call_1', content: tasks },
        ],
        TASK_TOOLS,
      ),
    );
    expect(turn).toEqual({ text: 'You have 3 todo task(s): Write launch brief, Book venue, Ship beta.' });
  });
});

describe('extraction', () => {
  const text = 'Meeting notes\nTODO: send the deck\nAction: book the room\n- [ ] update roadmap\n- [x] already done\nTodo list is long';

  test('marker lines become task items', () => {
    expect(extractItems(text)).toEqual([
      { title: 'send the deck', type: 'task' },
      { title: 'book the room', type: 'task' },
      { title: 'update roadmap', type: 'task' },
    ]);
  });

  test('answers JSON text, or the forced tool when one is required', () => {
    const req = request([{ role: 'system', content: 'Extract action items.' }, user(text)]);
    expect(isExtractionRequest(req)).toBe(true);
    expect(JSON.parse(demoResponder(req).text!)).toEqual({ items: extractItems(text) });
    const forced = extractionTurn({
      ...req,
      tools: [tool('extract_items')],
      tool_choice: { type: 'function', function: { name: 'extract_items' } },
    });
    expect(forced.toolCalls).toEqual([{ name: 'extract_items', args: { items: extractItems(text) } }]);
  });
});

describe('agent setup journey', () => {
  const system = (): ChatMessage => ({ role: 'system', content: journeySystemPrompt('local', ['tasks', 'notes']) });
  const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });
  const finish = tool('finish_configuration', { promptTemplate: { type: 'string' }, message: { type: 'string' } });
  /** A journey request: the server's first question, then each answer and the demo's reply to it. */
  const conversation = (answers: string[]): ChatMessage[] => {
    const messages: ChatMessage[] = [system(), assistant('What kind of files are in the directories you want to monitor?')];
    answers.forEach((answer, i) => {
      messages.push(user(answer));
      if (i < answers.length - 1) messages.push(assistant(demoResponder(request([...messages])).text ?? ''));
    });
    return messages;
  };

  test('is recognised by the seed system prompt, before the extraction behaviour its wording also matches', () => {
    expect(JOURNEY_SYSTEM_PROMPT).toMatch(/extraction/);
    const req = request(conversation(['Markdown meeting notes']), [finish], {
      tool_choice: { type: 'function', function: { name: 'finish_configuration' } },
    });
    expect(isJourneyRequest(req)).toBe(true);
    expect(isExtractionRequest(req)).toBe(true);
    expect(demoResponder(req).toolCalls?.[0].name).toBe('finish_configuration');
    expect(isJourneyRequest(request([user('Extract the TODO lines'), { role: 'system', content: 'Extract action items.' }]))).toBe(false);
  });

  test('asks in order: what to extract, naming, priority, mapping; a topic the user already covered is skipped', () => {
    expect(demoResponder(request(conversation(['Markdown meeting notes']))).text).toMatch(
      /^Which tasks and notes should I pull out of those files/,
    );
    expect(demoResponder(request(conversation(['Markdown files', 'Lines starting with TODO are tasks']))).text).toMatch(
      /naming conventions/,
    );
    expect(
      demoResponder(request(conversation(['Markdown files', 'TODO lines are tasks', 'Titles start with the client code']), [finish])).text,
    ).toMatch(/priority/);
    // "urgent" in the third answer covers priority: the fourth question is the mapping one.
    expect(planJourney(['Markdown files', 'TODO lines', 'Client code first; urgent means high']).next).toBe('mapping');
  });

  test('never finishes without the tool; with it, finishes once nothing is left to ask, or when the user says that is all', () => {
    const thorough = [
      'Markdown meeting notes',
      'TODO lines are tasks, decisions are notes',
      'Titles start with the client code; urgent or ASAP is high priority; the acme folder maps to the Acme project',
    ];
    expect(demoResponder(request(conversation(thorough))).toolCalls).toBeUndefined();
    const done = demoResponder(request(conversation(thorough), [finish]));
    expect(done.toolCalls).toHaveLength(1);
    const args = done.toolCalls![0].args as { promptTemplate: string; message: string };
    expect(args.message).toMatch(/demo model/);
    expect(args.promptTemplate).toMatch(/^Extract tasks and notes for a freelancer from each file in the monitored directories\./);
    expect(args.promptTemplate).toContain('Source material: Markdown meeting notes.');
    expect(args.promptTemplate).toContain('What to extract: TODO lines are tasks, decisions are notes.');
    expect(args.promptTemplate).toContain("If the text says 'urgent' or 'ASAP', set priority to high");
    expect(args.promptTemplate).toMatch(/Extract notes from each file/);
    expect(args.promptTemplate).not.toMatch(/checkpoints/);
    expect(demoResponder(request(conversation(['PDF invoices', 'Only tasks', "No, that's all"]), [finish])).toolCalls?.[0].name).toBe(
      'finish_configuration',
    );
    // Deterministic: the same conversation gives the same template.
    expect(demoResponder(request(conversation(thorough), [finish]))).toEqual(done);
  });
});

describe('ticket notes', () => {
  test('four sections in order, filled from the conversation', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Write support ticket notes with sections.' },
      user('Customer: My printer will not print since the update.'),
      { role: 'assistant', content: 'Agent: Restarted the print spooler.' },
      user('Customer: Reinstalled the driver and it works now.'),
      { role: 'assistant', content: 'Agent: I will follow up tomorrow to confirm.' },
    ];
    expect(isTicketNotesRequest(request(messages))).toBe(true);
    const notes = demoResponder(request(messages)).text!;
    expect(notes.match(/^## .+$/gm)).toEqual(TICKET_NOTE_SECTIONS.map((s) => `## ${s}`));
    expect(notes).toContain('My printer will not print since the update.');
    expect(notes).toContain('- Restarted the print spooler.');
    expect(notes).toMatch(/## Resolution\nReinstalled the driver and it works now\./);
    expect(notes).toMatch(/## Next Steps\n- I will follow up tomorrow/);
    expect(writeTicketNotes([])).toContain('## Next Steps');
  });

  test("the prompt's resolution summary is the Resolution section, not a step taken", () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You write support ticket notes for a finished assistant session.' },
      user(
        [
          'Write the ticket notes for this support session.',
          '',
          'Conversation:',
          'Customer: My wifi keeps dropping every few minutes.',
          'Assistant: Restart the router.',
          'Customer: I restarted the router and it works now.',
          '',
          'Resolution summary: Moved the router to channel 11 away from the neighbours.',
        ].join('\n'),
      ),
    ];
    const notes = writeTicketNotes(messages);
    expect(notes).toMatch(/## Resolution\nMoved the router to channel 11 away from the neighbours\.\n/);
    const steps = notes.slice(notes.indexOf('## Steps Taken'), notes.indexOf('## Resolution'));
    expect(steps).not.toContain('channel 11');
    expect(steps).toContain('- I restarted the router and it works now.');
    expect(notes).toMatch(/^## Problem Summary\nMy wifi keeps dropping every few minutes\.\n/);
  });
});

describe('embeddings', () => {
  test('deterministic, unit length, and word overlap raises similarity', () => {
    const a = embedText('reset my account password');
    expect(a).toHaveLength(256);
    expect(embedText('reset my account password')).toEqual(a);
    expect(Math.hypot(...a)).toBeCloseTo(1, 10);
    const near = cosineSimilarity(a, embedText('how do I reset a password'));
    const far = cosineSimilarity(a, embedText('quarterly revenue grew in europe'));
    expect(near).toBeGreaterThan(far);
    expect(embedText('x', 64)).toHaveLength(64);
    expect(Math.hypot(...embedText(''))).toBeCloseTo(1, 10);
  });
});

test('plain requests get a text that says it is the demo model', () => {
  expect(demoResponder(request([user('Tell me a joke')])).text).toMatch(/demo model/);
});

describe('the demo model tells the user what failed, not what the model was told to do', () => {
  test.each([
    [
      'a rejected approval',
      'Error: the user rejected write_file; it was NOT run. Do not try it again; tell the user it was not done.',
      'the user rejected write_file; it was NOT run.',
    ],
    [
      'an approval that timed out',
      'Error: write_file was NOT run: the user did not approve it in time. Tell the user it was not done and that they can ask again.',
      'write_file was NOT run: the user did not approve it in time.',
    ],
    ['an error with no instruction', 'Error: the path .env is hidden', 'the path .env is hidden'],
  ])('%s', (_name, error, said) => {
    expect(errorFacts(error)).toBe(said);
  });

  test('a rejected call reaches the user as its facts in the demo model’s answer', () => {
    const answer = summariseToolResult(
      'delete_task',
      {},
      'Error: the user rejected delete_task; it was NOT run. Do not try it again; tell the user it was not done.',
    );

    expect(answer).toBe('The delete_task tool reported a problem: the user rejected delete_task; it was NOT run.');
  });
});

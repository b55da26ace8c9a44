import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');

/**
 * One edit a recipe's step makes: `insert` after the first `after` in `file` (which must be there),
 * or, with `replace`, that text in place of `after`.
 */
interface Edit {
  step: string;
  file: string;
  after: string;
  insert?: string;
  replace?: string;
}

/**
 * "Add a block type" from docs/extending.md, as a person following it would type it, for a
 * `callout` block (`{text}`): each step's files, in the guide's order. The anchors are the names
 * the guide tells the reader to look for, so a guide that names a symbol that moved fails here.
 */
const ADD_A_BLOCK_TYPE: Edit[] = [
  {
    step: '1. src/schemas/blocks.ts: the content schema',
    file: 'src/schemas/blocks.ts',
    after: "  quote: z.strictObject({ text: text.describe('Quoted text') }),\n",
    insert: "  callout: z.strictObject({ text: text.describe('What to call out') }),\n",
  },
  {
    step: '1. src/schemas/blocks.ts: the stored blocks union',
    file: 'src/schemas/blocks.ts',
    after: "    z.object({ type: z.literal('quote'), content: blockContentSchemas.quote }),\n",
    insert: "    z.object({ type: z.literal('callout'), content: blockContentSchemas.callout }),\n",
  },
  {
    step: '1. src/schemas/blocks.ts: the create body union',
    file: 'src/schemas/blocks.ts',
    after: "    z.strictObject({ type: z.literal('quote'), content: blockContentSchemas.quote, ...placement }),\n",
    insert: "    z.strictObject({ type: z.literal('callout'), content: blockContentSchemas.callout, ...placement }),\n",
  },
  {
    step: '2. src/ai/block-tools.ts: TOOL_BLOCK_TYPES',
    file: 'src/ai/block-tools.ts',
    after: "  create_quote: 'quote',\n",
    insert: "  create_callout: 'callout',\n",
  },
  {
    step: '2. src/ai/block-tools.ts: DESCRIPTIONS',
    file: 'src/ai/block-tools.ts',
    after: "  quote: 'Add a quotation.',\n",
    insert: "  callout: 'Add a short note the reader must not miss.',\n",
  },
  {
    step: '4. packages/client/src/types.ts: BlockType',
    file: 'packages/client/src/types.ts',
    after: "export type BlockType = 'text' | 'heading' | 'todo' | 'bullet_list' | 'code' | 'quote'",
    insert: " | 'callout'",
  },
  {
    step: '4. packages/client/src/types.ts: the content map',
    file: 'packages/client/src/types.ts',
    after: '  quote: { text: string };\n',
    insert: '  callout: { text: string };\n',
  },
  {
    step: '5. web/blocks.js: how it renders',
    file: 'web/blocks.js',
    after: "    case 'divider':\n      return el('hr', { class: 'block-divider' });\n",
    insert: "    case 'callout':\n      return el('aside', { class: 'block-callout' }, c.text);\n",
  },
  {
    step: '5. web/block-editor.js: BLOCK_TYPES',
    file: 'web/block-editor.js',
    after: "export const BLOCK_TYPES = ['text', 'heading', 'todo', 'bullet_list', 'quote'",
    insert: ", 'callout'",
  },
  {
    step: '5. web/block-editor.js: its label',
    file: 'web/block-editor.js',
    after: "  quote: 'Quote',\n",
    insert: "  callout: 'Callout',\n",
  },
  {
    step: '6. web/styles.css: its look',
    file: 'web/styles.css',
    after: '.block-quote {',
    insert: '\n}\n.block-callout {\n  border-left: 4px solid var(--accent);\n  padding: 0.25rem 0.75rem;',
  },
  {
    step: '7. test/unit/block-schemas.test.ts: the valid contents',
    file: 'test/unit/block-schemas.test.ts',
    after: "  quote: [{ text: 'Simplicity is prerequisite for reliability.' }],\n",
    insert: "  callout: [{ text: 'Back up before upgrading.' }],\n",
  },
  {
    step: '7. test/unit/block-schemas.test.ts: the invalid contents',
    file: 'test/unit/block-schemas.test.ts',
    after: "    ['empty text', { text: '' }],\n  ],\n",
    insert: "  callout: [\n    ['missing text', {}],\n    ['unknown key', { text: 'x', tone: 'loud' }],\n  ],\n",
  },
  {
    step: '7. test/unit/block-schemas.test.ts: the list of types',
    file: 'test/unit/block-schemas.test.ts',
    after: "expect([...BLOCK_TYPES].sort()).toEqual(['bullet_list', ",
    insert: "'callout', ",
  },
  {
    step: '7. test/unit/block-schemas.test.ts: the tool arguments',
    file: 'test/unit/block-schemas.test.ts',
    after: '    quote: validContent.quote[0],\n',
    insert: '    callout: validContent.callout[0],\n',
  },
  {
    step: '7. test/unit/block-schemas.test.ts: the list of tools',
    file: 'test/unit/block-schemas.test.ts',
    after: "    expect(blockTools.map((tool) => tool.name).sort()).toEqual([\n      'create_bullet_list',\n",
    insert: "      'create_callout',\n",
  },
];

/**
 * "Add a device tool (an assistant tool)": a `count_tasks` tool in the task toolset, and the
 * catalogue test that lists every tool by name (the guide says it must be updated).
 */
const ADD_A_DEVICE_TOOL: Edit[] = [
  {
    step: '1. src/turns/device-tools.ts: a define() entry in ASSISTANT_TOOLS',
    file: 'src/turns/device-tools.ts',
    after: 'export const ASSISTANT_TOOLS: AssistantTool[] = [\n',
    insert: [
      '  define({',
      "    name: 'count_tasks',",
      "    toolset: 'task',",
      "    description: 'Count the user\\'s tasks, optionally of one status.',",
      '    schema: z.object({ status: taskStatus.optional() }),',
      '    run: async (a, device) => {',
      "      const { rows } = await device({ action: 'select', table: 'tasks', filters: defined({ status: a.status }) as Record<string, string> });",
      '      return `${rows.length} task(s)`;',
      '    },',
      '  }),',
      '',
    ].join('\n'),
  },
  {
    step: 'Tests to copy: test/unit/assistant-orchestrator.test.ts lists every tool by name',
    file: 'test/unit/assistant-orchestrator.test.ts',
    after: "        'list_tasks',\n",
    insert: "        'count_tasks',\n",
  },
  {
    step: "Tests to copy: test/unit/assistant-orchestrator.test.ts counts the task toolset's tools",
    file: 'test/unit/assistant-orchestrator.test.ts',
    after: "expect(toolsFor(['task'])).toHaveLength(8);",
    replace: "expect(toolsFor(['task'])).toHaveLength(9);",
  },
];

/** Applies `edits` to the copy at `dir`; throws naming the step whose anchor is missing. */
function apply(dir: string, edits: Edit[]): void {
  for (const edit of edits) {
    const file = path.join(dir, edit.file);
    const text = readFileSync(file, 'utf8');
    const at = text.indexOf(edit.after);
    if (at < 0) throw new Error(`step "${edit.step}": ${edit.file} no longer has ${JSON.stringify(edit.after)}`);
    const end = at + edit.after.length;
    const middle = edit.replace ?? edit.after + (edit.insert ?? '');
    writeFileSync(file, text.slice(0, at) + middle + text.slice(end));
  }
}

/**
 * A scratch copy of the working tree (tracked and new files), sharing node_modules except for the
 * workspace packages, which point at the copy's own packages (the recipe edits the client's types).
 */
async function scratchCopy(): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sb-guide-'));
  const { stdout } = await run('git', ['ls-files', '-z', '-co', '--exclude-standard'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  for (const file of stdout.split('\0').filter(Boolean)) {
    if (file.startsWith('node_modules/')) continue;
    try {
      cpSync(path.join(ROOT, file), path.join(dir, file));
    } catch {
      // listed but deleted in the working tree: not part of it
    }
  }
  const modules = path.join(dir, 'node_modules');
  mkdirSync(path.join(modules, '@switchboard'), { recursive: true });
  for (const entry of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (entry === '@switchboard') continue;
    symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(modules, entry));
  }
  for (const pkg of readdirSync(path.join(ROOT, 'node_modules/@switchboard')))
    symlinkSync(path.join(dir, 'packages', pkg), path.join(modules, '@switchboard', pkg));
  return dir;
}

/** Jest on the copy without the suite's global setup (no servers: these are unit tests). */
const UNIT_JEST_CONFIG = JSON.stringify({
  rootDir: '.',
  roots: ['<rootDir>/test'],
  testEnvironment: 'node',
  testEnvironmentOptions: { customExportConditions: ['node', 'node-addons', 'switchboard-source'] },
  transform: {
    '^.+\\.(t|j|mj)s$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose)/)'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
});

/**
 * Follows `recipe` on a fresh scratch copy: the copy must typecheck, its console scripts parse, and
 * `unitTests` pass there; resolves with jest's summary.
 */
async function follow(recipe: Edit[], unitTests: string[], copies: string[]): Promise<string> {
  const dir = await scratchCopy();
  copies.push(dir);
  apply(dir, recipe);
  await run(process.execPath, ['node_modules/typescript-7/bin/tsc', '--noEmit', '-p', 'tsconfig.json', '--checkers', '1'], {
    cwd: dir,
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: { stdout?: string }) => {
    throw new Error(`typecheck failed after the recipe:\n${error.stdout ?? String(error)}`);
  });
  for (const file of new Set(recipe.map((edit) => edit.file).filter((file) => file.endsWith('.js'))))
    await run(process.execPath, ['--check', path.join(dir, file)]);
  const jest = await run(
    process.execPath,
    ['node_modules/jest/bin/jest.js', '--config', UNIT_JEST_CONFIG, '--maxWorkers=1', '--verbose', ...unitTests],
    {
      cwd: dir,
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  ).catch((error: { stderr?: string }) => {
    throw new Error(`the unit tests failed after the recipe:\n${error.stderr ?? String(error)}`);
  });
  return jest.stderr;
}

/** The text of one `## ` section of the guide. */
function guideSection(title: string): string {
  const guide = readFileSync(path.join(ROOT, 'docs/extending.md'), 'utf8');
  const start = guide.indexOf(`## ${title}`);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = guide.indexOf('\n## ', start + 3);
  return guide.slice(start, end < 0 ? undefined : end);
}

/**
 * docs/extending.md, run: its recipes are applied to a scratch copy of the tree exactly as the guide
 * lists their steps, and the copy must then typecheck and pass the unit tests the guide names. A
 * guide that forgets a file (the exhaustive tables of a test, say) or names one that moved fails.
 */
describe('docs/extending.md, followed to the letter', () => {
  const copies: string[] = [];
  afterAll(() => {
    for (const dir of copies) rmSync(dir, { recursive: true, force: true });
  });

  test.each([
    ['Add a block type', ADD_A_BLOCK_TYPE],
    ['Add a device tool', ADD_A_DEVICE_TOOL],
  ])('"%s" names every file its recipe edits', (title, recipe) => {
    const section = guideSection(title);
    for (const file of new Set(recipe.map((edit) => edit.file)))
      expect({ file, named: section.includes(file) }).toEqual({ file, named: true });
  });

  // Both recipes on one scratch copy, as a reader following the whole guide would: they edit
  // different files, and one copy typechecks once for both.
  let followed: Promise<string> | undefined;
  const followBoth = () =>
    (followed ??= follow(
      [...ADD_A_BLOCK_TYPE, ...ADD_A_DEVICE_TOOL],
      ['test/unit/block-schemas.test.ts', 'test/unit/assistant-orchestrator.test.ts'],
      copies,
    ));

  test('"Add a block type": the copy typechecks, its JavaScript parses, and the block schema tests pass', async () => {
    const summary = await followBoth();
    expect(summary).toMatch(/PASS test\/unit\/block-schemas\.test\.ts/);
    expect(summary).toContain('callout');
  }, 600_000);

  test('"Add a device tool": the copy typechecks and the assistant catalogue tests pass', async () => {
    const summary = await followBoth();
    expect(summary).toMatch(/PASS test\/unit\/assistant-orchestrator\.test\.ts/);
    expect(summary).toMatch(/Tests:\s+\d+ passed, \d+ total/);
  }, 600_000);
});

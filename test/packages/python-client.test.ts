import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { buildOpenApiDocument } from '../../src/http/openapi/document';
import { apiRoutes } from '../../src/http/routes';
import { generateSdk } from '../../src/sdkgen';
import { startTestApp, type TestApp } from '../support/app';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');
const PROJECT = join(ROOT, 'clients/python');

/** A canvas generation gets one heading, then words; a chat gets a plain answer. */
function responder(request: ChatRequest) {
  const canvasTools = (request.tools ?? []).some((tool) => tool.function.name === 'create_heading');
  if (canvasTools && !request.messages.some((m) => m.role === 'tool'))
    return { toolCalls: [{ name: 'create_heading', args: { text: 'From pip', level: 1 } }] };
  return { text: 'A plain answer.' };
}

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(join(dir, prefix), { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? filesUnder(dir, join(prefix, e.name)) : Promise.resolve([join(prefix, e.name)]))),
  );
  return nested.flat().sort();
}

/**
 * The Python client is a pip-installable project at clients/python, written by the generator (`npm
 * run sdk -- --python --output-dir clients`): `pip install ./clients/python` into a fresh venv works
 * with no package index (its build backend is its own, standard library only), and the installed
 * package streams with plain `for` and `async for`.
 */
describe('pip install ./clients/python', () => {
  let t: TestApp;
  let venv: string;

  beforeAll(async () => {
    t = await startTestApp({ responder });
    venv = await mkdtemp(join(tmpdir(), 'sb-pip-'));
  });
  afterAll(async () => {
    await t?.stop();
    if (venv) await rm(venv, { recursive: true, force: true });
  });

  test('clients/python is exactly what the generator writes (regenerate it with npm run sdk -- --python --output-dir clients)', async () => {
    const generated = generateSdk(buildOpenApiDocument(apiRoutes), { typescript: false, python: true });
    const expected = Object.keys(generated)
      .map((path) => path.replace(/^python\//, ''))
      .sort();
    expect(await filesUnder(PROJECT)).toEqual(expected);
    for (const [path, text] of Object.entries(generated))
      expect({ path, same: (await readFile(join(ROOT, 'clients', path), 'utf8')) === text }).toEqual({ path, same: true });
  });

  test('installs into a fresh venv without an index, and streams a generation with plain for / async for', async () => {
    await run('python3', ['-m', 'venv', join(venv, 'env')], { timeout: 60_000 });
    const python = join(venv, 'env/bin/python');
    // --no-index: nothing may come from PyPI (the build needs no setuptools from it).
    const install = await run(python, ['-m', 'pip', 'install', '--no-index', '--disable-pip-version-check', PROJECT], {
      cwd: venv,
      timeout: 120_000,
    });
    expect(install.stdout).toMatch(/Successfully installed switchboard-client-0\.1\.0/);

    // Run from the temp folder: the import must come from the venv, not from the repository.
    const { stdout } = await run(python, [join(__dirname, 'python_stream.py'), t.url], { cwd: venv, timeout: 60_000 });
    const out = JSON.parse(stdout) as { module: string; sync: string[]; async: string[]; asyncChat: string[] };
    expect(out.module.startsWith(join(venv, 'env'))).toBe(true);
    expect(out.sync.at(-1)).toBe('complete');
    expect(out.sync).toContain('tool_output');
    expect(out.async.at(-1)).toBe('complete');
    expect(out.asyncChat.at(-1)).toBe('final');
    expect(out.asyncChat).toContain('text_chunk');
  }, 180_000);

  test('the installed client follows a canvas room over SSE and resumes after the last event id', async () => {
    const python = join(venv, 'env/bin/python');
    const { stdout } = await run(python, [join(__dirname, 'python_feed.py'), t.url], { cwd: venv, timeout: 60_000 });
    const out = JSON.parse(stdout) as {
      live: Array<{ event: string; id: string }>;
      resumed: Array<{ event: string; id: string }>;
      firstText: string;
      firstSeq: number;
      resumedText: string;
    };
    expect(out.live.map((e) => e.event)).toEqual(['ready', 'block_added']);
    expect(out.firstText).toBe('first');
    expect(Number(out.live[1].id)).toBe(out.firstSeq);
    // Resumed after the first block: the missed one comes back, the first one does not.
    expect(out.resumed.map((e) => e.event)).toEqual(['ready', 'block_added']);
    expect(out.resumedText).toBe('missed');
    expect(Number(out.resumed[1].id)).toBeGreaterThan(out.firstSeq);
  }, 120_000);
});

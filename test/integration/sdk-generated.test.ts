import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { buildOpenApiDocument } from '../../src/http/openapi/document';
import { apiRoutes as apiOperations } from '../../src/http/routes';
import { generateSdk, writeSdk } from '../../src/sdkgen';
import { startTestApp, type TestApp } from '../support/app';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const FIXTURES = path.join(ROOT, 'test/support/sdk');
const bin = (name: string) => path.join(ROOT, 'node_modules/.bin', name);

/** The scripted model: a canvas generation gets one heading, then words; a chat gets a plain answer. */
function responder(request: ChatRequest) {
  const canvasTools = (request.tools ?? []).some((tool) => tool.function.name === 'create_heading');
  if (canvasTools && !request.messages.some((m) => m.role === 'tool'))
    return { toolCalls: [{ name: 'create_heading', args: { text: 'From the SDK', level: 1 } }] };
  return { text: 'A plain answer.' };
}

/**
 * SDK generation: `npm run sdk` writes clients from the OpenAPI document; the Python one
 * runs under `python3` (standard library only, sync and asyncio) and the TypeScript one type-checks
 * under `tsc --strict` and runs, both against a live server.
 */
describe('generated SDKs (npm run sdk)', () => {
  let t: TestApp;
  let dir: string;

  beforeAll(async () => {
    t = await startTestApp({ responder });
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-sdk-'));
    writeSdk(dir, generateSdk(buildOpenApiDocument(apiOperations), { typescript: true, python: true }));
  });

  afterAll(async () => {
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the CLI writes only the languages asked for, byte for byte what the generator gives, and refuses unknown flags', async () => {
    const out = path.join(dir, 'cli');
    const python = await run(bin('tsx'), ['scripts/sdk.ts', '--python', '--output-dir', out], { cwd: ROOT });
    const unknown = await run(bin('tsx'), ['scripts/sdk.ts', '--ruby'], { cwd: ROOT }).catch(
      (error: { code: number; stderr: string }) => error,
    );

    expect(python.stdout).toContain(path.join(out, 'python/switchboard_client/client.py'));
    expect(readdirSync(out)).toEqual(['python']);
    for (const file of ['__init__.py', '_transport.py', 'client.py']) {
      expect(readFileSync(path.join(out, 'python/switchboard_client', file), 'utf8')).toBe(
        readFileSync(path.join(dir, 'python/switchboard_client', file), 'utf8'),
      );
    }
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringMatching(/Unknown option '--ruby'[\s\S]*usage: npm run sdk/) });
  }, 60_000);

  test('generation is deterministic and names the short namespaces', () => {
    const again = generateSdk(buildOpenApiDocument(apiOperations), { typescript: true, python: true });
    for (const [file, text] of Object.entries(again)) expect(readFileSync(path.join(dir, file), 'utf8')).toBe(text);
    const py = again['python/switchboard_client/client.py'];
    const ts = again['typescript/index.ts'];
    for (const ns of ['auth', 'chat', 'canvases', 'generations']) {
      expect(py).toMatch(new RegExp(`self\\.${ns} = `));
      expect(ts).toMatch(new RegExp(`^  ${ns}: `, 'm'));
    }
    expect(py).toMatch(/def login\(self, email: str, password: str\)/);
    expect(py).toMatch(/def get_flow\(self, flow_id: str\)/);
    expect(py).toMatch(/^ {4}get = get_flow$/m);
    expect(ts).toMatch(/getFlow\(flowId: string, options\?: RequestOptions\): Promise<GetFlowResult>;/);
    expect(ts).toMatch(
      /login\(email: LoginBody\["email"\], password: LoginBody\["password"\], options\?: RequestOptions\): Promise<LoginResult>;/,
    );
  });

  test('the Python client (python3, standard library only) registers, creates a canvas, generates, chats, uploads knowledge and raises typed errors, sync and asyncio', async () => {
    const { stdout } = await run('python3', [path.join(FIXTURES, 'check_client.py'), t.url, path.join(dir, 'python/switchboard_client')], {
      timeout: 60_000,
    });
    const out = JSON.parse(stdout);

    expect(out.py39).toEqual(['__init__.py', '_transport.py', 'agenticrag.py', 'client.py']);
    expect(out.registered).toEqual({ email: expect.stringMatching(/^py-/), kept: true });
    expect(out.me).toBe(out.registered.email);
    expect(out.canvas).toMatchObject({ title: 'From Python', role: 'owner' });
    expect(out.listed).toContain(out.canvas.id);
    expect(out.generation.names.at(-1)).toBe('complete');
    expect(out.generation.ids.every((id: string) => /^\d+$/.test(id))).toBe(true);
    expect(out.generation.lastEventId).toBe(out.generation.ids.at(-1));
    expect(out.generationRecord.generation).toMatchObject({ id: out.generation.complete.generationId, status: 'completed' });
    expect(out.blocks).toEqual([expect.objectContaining({ text: 'From the SDK' })]);
    expect(out.chat).toMatchObject({ sessionId: expect.any(String), response: 'A plain answer.' });
    expect(out.chatStream.at(-1)).toEqual({
      event: 'final',
      data: expect.objectContaining({ sessionId: out.chat.sessionId, response: 'A plain answer.' }),
    });
    expect(out.history).toEqual(['Hello from Python', 'A plain answer.', 'And a stream', 'A plain answer.']);
    expect(out.flows.chatflow).toMatchObject({
      type: 'chatflow',
      name: 'Py helper',
      definition: expect.objectContaining({ systemPrompt: 'You are terse.' }),
    });
    expect(out.flows.listed).toHaveLength(2);
    expect(out.flows.got).toMatchObject({ type: 'agentflow', name: 'Py brief', definition: { output: 'summary' } });
    expect(out.flows.renamed).toBe('Py helper 2');
    expect(out.flows.badDefinition).toMatchObject({
      status: 400,
      code: 'validation_failed',
      details: [expect.objectContaining({ path: 'definition.nodes.0.dependsOn.0' })],
    });
    expect(out.flowChat.first).toMatchObject({ sessionId: expect.any(String), response: 'A plain answer.', usage: expect.any(Object) });
    expect(out.flowChat.second.sessionId).toBe(out.flowChat.first.sessionId);
    expect(out.flowChat.streamed.map((e: { event: string }) => e.event)).toContain('text_chunk');
    expect(out.flowChat.streamed.at(-1)).toEqual({
      event: 'final',
      data: expect.objectContaining({ sessionId: out.flowChat.first.sessionId, response: 'A plain answer.' }),
    });
    expect(out.flowChat.history).toEqual(['Hi flow', 'A plain answer.', 'Again', 'A plain answer.', 'Stream it', 'A plain answer.']);
    const execution = out.execution;
    expect(execution.started).toEqual({ executionId: expect.any(String) });
    expect(execution.events.map((e: { event: string }) => e.event)).toEqual([
      'execution_started',
      'node_started',
      'node_completed',
      'node_started',
      'node_completed',
      'execution_completed',
    ]);
    expect(execution.events.map((e: { id: string }) => e.id)).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(execution.events.at(-1).data).toMatchObject({
      type: 'execution_completed',
      executionId: execution.started.executionId,
      output: 'A plain answer.',
    });
    expect(execution.execution).toMatchObject({
      id: execution.started.executionId,
      status: 'completed',
      input: { topic: 'otters' },
      output: 'A plain answer.',
      nodes: [
        expect.objectContaining({ id: 'facts', status: 'completed', attempts: 1 }),
        expect.objectContaining({ id: 'summary', status: 'completed', attempts: 1 }),
      ],
    });
    expect(execution.resumed).toEqual(['3', '4', '5', '6']);
    expect(execution.live).toEqual({
      header: expect.any(String),
      events: expect.arrayContaining(['execution_started', 'execution_completed']),
    });
    expect(execution.missingInput).toMatchObject({ status: 400, code: 'missing_input' });
    expect(execution.listed).toEqual([execution.live.header, execution.started.executionId]);
    expect(out.knowledge).toEqual({
      uploaded: [
        { name: 'notes.md', status: 'queued', error: null },
        { name: 'empty.txt', status: 'failed', error: 'The file is empty (0 bytes)' },
      ],
      progress: expect.arrayContaining(['ready']),
      chunks: 1,
      hit: { document: 'notes.md', section: 'Security' },
    });
    expect(out.knowledge.progress.at(-1)).toBe('ready');
    expect(out.notFound).toMatchObject({ status: 404, code: 'not_found' });
    expect(out.invalid).toMatchObject({ status: 400, code: 'validation_failed', details: [expect.objectContaining({ path: 'title' })] });
    expect(out.anonymous).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(out.badLogin).toMatchObject({ status: 401 });
    expect(out.unreachable).toMatchObject({ status: 0, code: 'connection_error' });
    expect(out.async).toEqual({
      kept: true,
      created: ['Async one', 'Async two'],
      chat: 'A plain answer.',
      chatStream: expect.arrayContaining(['final']),
      flows: ['Py brief', 'Py helper 2'],
      flowChat: 'A plain answer.',
      events: expect.arrayContaining(['execution_started', 'execution_completed']),
      execution: { status: 'completed', output: 'A plain answer.' },
      notFound: expect.objectContaining({ status: 404, code: 'not_found' }),
    });
  }, 90_000);

  test('the TypeScript client type-checks under tsc --strict with a usage file and runs it against the server', async () => {
    copyFileSync(path.join(FIXTURES, 'usage.ts'), path.join(dir, 'usage.ts'));
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'esnext',
          moduleResolution: 'bundler',
          strict: true,
          noEmit: true,
          noUnusedLocals: true,
          noUnusedParameters: true,
          noImplicitReturns: true,
          lib: ['es2022', 'dom', 'dom.iterable'],
          types: ['node'],
          typeRoots: [path.join(ROOT, 'node_modules/@types')],
        },
        files: ['usage.ts', 'typescript/index.ts'],
      }),
    );
    // The project's type checker (TypeScript 7, the native compiler).
    const tsc = path.join(ROOT, 'node_modules/typescript-7/bin/tsc');
    const typecheck = await run(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json'), '--checkers', '1'], { cwd: dir }).catch(
      (error: { stdout: string }) => error,
    );
    expect(typecheck.stdout).toBe('');

    const { stdout } = await run(bin('tsx'), [path.join(dir, 'usage.ts'), t.url], { cwd: dir, timeout: 60_000 });
    const out = JSON.parse(stdout);

    expect(out.registered).toEqual({ email: expect.stringMatching(/^ts-/), kept: true });
    expect(out.me).toBe(out.registered.email);
    expect(out.listed).toContain(out.canvas.id);
    expect(out.generation.names.at(-1)).toBe('complete');
    expect(out.generation.lastEventId).toBe(out.generation.ids.at(-1));
    expect(out.generationRecord.generation).toMatchObject({ id: out.generation.complete.generationId, status: 'completed' });
    expect(out.blocks).toEqual([expect.objectContaining({ text: 'From the SDK' })]);
    expect(out.chat).toMatchObject({ response: 'A plain answer.' });
    expect(out.chatStream.at(-1)).toEqual({ event: 'final', data: expect.objectContaining({ sessionId: out.chat.sessionId }) });
    expect(out.loginUser).toBe(true);
    expect(out.flows).toEqual({
      created: { type: 'agentflow', name: 'TS brief' },
      listed: 1,
      got: 'TS brief',
      updated: 'TS brief 2',
      badPath: 'definition.output',
    });
    expect(out.execution).toEqual({
      events: ['execution_started', 'node_started', 'node_completed', 'execution_completed'],
      header: expect.any(String),
      status: 'completed',
      output: 'A plain answer.',
      nodes: [{ id: 'facts', status: 'completed' }],
      missing: { status: 400, code: 'missing_input', message: expect.any(String) },
    });
    expect(out.flowChat).toEqual({
      response: 'A plain answer.',
      sameSession: true,
      streamed: expect.arrayContaining(['text_chunk', 'final']),
    });
    expect(out.notFound).toMatchObject({ status: 404, code: 'not_found' });
    expect(out.invalid).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(out.anonymous).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(out.unreachable).toMatchObject({ status: 0, code: 'connection_error' });
  }, 90_000);
});

import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createSwitchboardClient } from '@switchboard/client';
import { startTestApp, type TestApp } from '../support/app';
import { installTarballs, tarballFiles } from '../support/pack-install';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');
/** The project's type checker (TypeScript 7, the native compiler): a consumer's project must check clean with it. */
const TSC = join(ROOT, 'node_modules/typescript-7/bin/tsc');

/** Resolves with the first line of `child`'s output that matches, rejects after `ms`. */
function lineMatching(child: ChildProcessWithoutNullStreams, pattern: RegExp, ms: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${ms} ms; output so far:\n${seen}`)), ms);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const line = seen.split('\n').find((candidate) => pattern.test(candidate));
      if (line) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolvePromise(line);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (seen += chunk.toString()));
  });
}

/**
 * `npm pack` of the packages gives tarballs that a fresh project outside the repository installs
 * with `npm install <tarball>` and uses: the ESM import under node, the shipped type declarations
 * under `tsc`, and the ten lines of docs/sdks.md that watch a canvas, against a live server.
 */
describe('npm pack of @switchboard/client and @switchboard/react', () => {
  let project: string;
  let tarball: string;
  let reactTarball: string;

  beforeAll(async () => {
    // Both tarballs in one fresh project, with react (the hooks' peer) and its types.
    ({
      project,
      tarballs: [tarball, reactTarball],
    } = await installTarballs(['client', 'react'], ['@types/react']));
  }, 240_000);

  afterAll(async () => {
    if (project) await rm(project, { recursive: true, force: true });
  });

  test('the tarball holds the build, the declarations and the README, not the sources', async () => {
    const files = await tarballFiles(tarball);
    expect(files).toEqual(
      expect.arrayContaining([
        'package/package.json',
        'package/README.md',
        'package/dist/index.js',
        'package/dist/index.d.ts',
        'package/dist/node-files.js',
        'package/dist/browser/switchboard-client.js',
        'package/dist/testing/index.js',
        'package/dist/testing/index.d.ts',
      ]),
    );
    expect(files.filter((file) => file.startsWith('package/src/') || (file.endsWith('.ts') && !file.endsWith('.d.ts')))).toEqual([]);
  });

  test('the react tarball holds its build and README; it depends on the client, react is a peer', async () => {
    const files = await tarballFiles(reactTarball);
    expect(files).toEqual(
      expect.arrayContaining(['package/package.json', 'package/README.md', 'package/dist/index.js', 'package/dist/index.d.ts']),
    );
    expect(files.filter((file) => file.startsWith('package/src/'))).toEqual([]);
    const { stdout } = await run(process.execPath, ['-p', "JSON.stringify(require('./node_modules/@switchboard/react/package.json'))"], {
      cwd: project,
    });
    const manifest = JSON.parse(stdout) as { dependencies: Record<string, string>; peerDependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies)).toEqual(['@switchboard/client']);
    expect(Object.keys(manifest.peerDependencies)).toEqual(['react']);
  });

  test('import("@switchboard/react") works in the fresh project and gives the hooks', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('@switchboard/react'); console.log(JSON.stringify(Object.keys(m).sort()))"],
      { cwd: project },
    );
    expect(JSON.parse(stdout)).toEqual(
      expect.arrayContaining(['SwitchboardProvider', 'useApprovals', 'useCanvas', 'useChat', 'useGeneration', 'useSwitchboard']),
    );
  });

  test('import("@switchboard/client") works in the fresh project', async () => {
    const script =
      "const m = await import('@switchboard/client'); const n = await import('@switchboard/client/node'); const t = await import('@switchboard/client/testing'); console.log(JSON.stringify({ main: Object.keys(m).sort(), node: Object.keys(n), testing: Object.keys(t) }));";
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project });
    const exported = JSON.parse(stdout) as { main: string[]; node: string[]; testing: string[] };
    expect(exported.main).toEqual(
      expect.arrayContaining([
        'createSwitchboardClient',
        'CLIENT_OPERATIONS',
        'connectCanvas',
        'connectDevice',
        'EventStream',
        'SseParser',
        'SwitchboardApiError',
        'isApiError',
      ]),
    );
    expect(exported.node).toContain('readFolderFiles');
    // The test doubles are their own entry, not part of the main one.
    expect(exported.testing).toEqual(expect.arrayContaining(['DeviceSimulator', 'MemoryStore', 'answerFromStore']));
    expect(exported.main.filter((name) => exported.testing.includes(name))).toEqual([]);
  });

  test('its types resolve under nodenext, strict, libraries checked; a wrong field is an error', async () => {
    await copyFile(join(__dirname, 'watch-canvas.mjs'), join(project, 'watch.mjs'));
    await writeFile(
      join(project, 'typed.ts'),
      [
        "import { createSwitchboardClient, connectDevice, type Block, type CanvasRoomEvent } from '@switchboard/client';",
        "import { readFolderFiles } from '@switchboard/client/node';",
        "import { DeviceSimulator, MemoryStore } from '@switchboard/client/testing';",
        "export const simulate = (url: string, accessToken: string) => DeviceSimulator.connect({ url, accessToken, deviceId: 'x', store: new MemoryStore({ tasks: [{ title: 't' }] }) });",
        "import { useCanvas, useGeneration, type CanvasState } from '@switchboard/react';",
        'export function useBoard(id: string): string[] { const canvas: CanvasState = useCanvas(id); const g = useGeneration(); void g.start; return canvas.blocks.map((b) => b.rank); }',
        '// @ts-expect-error: useGeneration takes no argument',
        "export const wrong = () => useGeneration('x');",
        "const sb = createSwitchboardClient({ baseUrl: 'http://127.0.0.1:3000' });",
        "export const blocks: Promise<Block[]> = sb.blocks.listAll('c');",
        "export const titles = (e: CanvasRoomEvent) => (e.event === 'blocks_bulk_added_chunk' ? e.payload.blocks.map((b) => b.rank) : []);",
        'export const device = connectDevice; export const read = readFolderFiles;',
        '// @ts-expect-error: `titel` is not a field of the request',
        "void sb.canvases.create({ titel: 'x' });",
        "export const executions = async (flowId: string): Promise<string[]> => { const out: string[] = []; for await (const { event } of sb.flows.executeStream(flowId, { input: { topic: 'x' } })) out.push(event.type); return out; };",
        "export const escalated: Promise<{ sessionId: string; status: 'escalated' }> = sb.chat.escalate('s', { reason: 'needs a human' });",
        '// @ts-expect-error: the reason is a string',
        "void sb.chat.escalate('s', { reason: 1 });",
        '',
      ].join('\n'),
    );
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          allowJs: true,
          checkJs: true,
          skipLibCheck: false,
          lib: ['es2022', 'dom'],
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        files: ['typed.ts', 'watch.mjs'],
      }),
    );
    const result = await run(process.execPath, [TSC, '-p', project, '--checkers', '1'], { cwd: project }).then(
      () => ({ code: 0, out: '' }),
      (error: { code: number; stdout: string }) => ({ code: error.code, out: error.stdout }),
    );
    expect(result).toEqual({ code: 0, out: '' });
  }, 60_000);

  describe('the README ten lines', () => {
    let t: TestApp;
    let watcher: ChildProcessWithoutNullStreams | undefined;

    beforeAll(async () => {
      t = await startTestApp();
    });
    afterAll(async () => {
      watcher?.kill();
      await t.stop();
    });

    test('watch a canvas: the loaded blocks, then a generation as it lands', async () => {
      const email = `pack-${randomUUID().slice(0, 8)}@example.test`;
      const sb = createSwitchboardClient({ baseUrl: t.url });
      await sb.auth.register({ email, password: 'correct horse battery', name: 'Pack' });
      const { canvas } = await sb.canvases.create({ title: 'Watched' });
      await sb.blocks.create(canvas.id, { type: 'text', content: { text: 'already here' } });

      await copyFile(join(__dirname, 'watch-canvas.mjs'), join(project, 'watch.mjs'));
      watcher = spawn(process.execPath, ['watch.mjs', canvas.id], {
        cwd: project,
        env: { ...process.env, SWITCHBOARD_URL: t.url, SB_EMAIL: email, SB_PASSWORD: 'correct horse battery' },
      });
      const loaded = lineMatching(watcher, /^loaded /, 15_000);
      await lineMatching(watcher, /^watching$/, 15_000);
      expect(await loaded).toBe('loaded 1');

      t.llm.push({ toolCalls: [{ name: 'create_text', args: { text: 'from the model' } }] }, { text: 'Done.' });
      const landed = lineMatching(watcher, /^blocks_bulk_added_chunk /, 15_000);
      for await (const { event } of sb.generations.generate(canvas.id, { prompt: 'one block' }))
        if (event.type === 'complete' || event.type === 'error') break;
      expect(await landed).toBe("blocks_bulk_added_chunk [ 'from the model' ]");
    }, 60_000);
  });
});

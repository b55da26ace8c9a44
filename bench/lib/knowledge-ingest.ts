import { chunkParts } from '../../src/ai/text-chunks';
import { demoEmbedder } from '../../src/demo-model/embeddings';
import { startOpenAICompatibleServer } from '../../src/demo-model/openai-compatible-server';
import { parseDocument } from '../../src/knowledge/parse';
import { createTestDatabase } from '../../test/support/database';
import { makePdf, multipart } from '../../test/support/documents';
import { registerUser, request } from '../../test/support/http';
import { spawnSwitchboard, type SwitchboardProcess } from '../../test/support/processes';
import type { BenchContext } from './context';
import { KnowledgeCorpus, seeded } from './knowledge-corpus';
import { benchEnv, cpuMsOf, cpuMsOfCommand, uniquePrefix } from './harness';
import { median, round } from './stats';

/** Lines of a page and words of a line: 240 words, about 600 tokens (the made-up jargon takes several tokens a word), a page of prose. */
const LINES_PER_PAGE = 20;
const WORDS_PER_LINE = 12;

/** The set's PDFs: each about one topic, a subtopic a page, drawn in Helvetica by the tests' PDF writer. */
export function pdfSet(corpus: KnowledgeCorpus, documents: number, pages: number): Buffer[] {
  const random = seeded(corpus.shape.seed + 7);
  return Array.from({ length: documents }, () => {
    const topic = corpus.place(random).topic;
    return makePdf(
      Array.from({ length: pages }, () => {
        const place = { topic, subtopic: Math.floor(random() * corpus.shape.subtopicsPerTopic) };
        return Array.from({ length: LINES_PER_PAGE }, () => corpus.words(place, WORDS_PER_LINE, random).join(' '));
      }),
    );
  });
}

/** CPU of parsing and chunking one PDF in this process (no queue, no model, no database): the floor of an ingestion. */
async function parseAndChunkCpuMs(pdfs: readonly Buffer[]): Promise<{ cpuMs: number; chunks: number }> {
  await chunkParts(await parseDocument(pdfs[0], 'application/pdf'));
  const samples: number[] = [];
  let chunks = 0;
  for (const pdf of pdfs.slice(0, 3)) {
    const cpu = process.cpuUsage();
    chunks = (await chunkParts(await parseDocument(pdf, 'application/pdf'))).length;
    const used = process.cpuUsage(cpu);
    samples.push((used.user + used.system) / 1000);
  }
  return { cpuMs: median(samples), chunks };
}

/**
 * Documents ingested per second per worker core: one API process and one worker process on
 * PostgreSQL, the demo model's embeddings served from this process over HTTP (the model's CPU is
 * not the worker's), `documents` PDFs of `pages` pages uploaded at once (ten to a request), then
 * waited for until every one is `ready`. The figure is documents over the worker process's CPU
 * seconds in that window, so it does not depend on how many ingestions ran at once.
 */
export async function measureIngestion(ctx: BenchContext, corpus: KnowledgeCorpus, options: { documents: number; pages: number }) {
  const pdfs = pdfSet(corpus, options.documents, options.pages);
  const floor = await parseAndChunkCpuMs(pdfs);
  const database = await createTestDatabase({ server: ctx.postgresUrl, migrated: true });
  const model = await startOpenAICompatibleServer({ responder: () => ({ text: 'ok' }), embedder: demoEmbedder });
  const processes: SwitchboardProcess[] = [];
  try {
    const env = {
      ...benchEnv({ redis: ctx.redis, keyPrefix: uniquePrefix('knowledge'), dataDir: ctx.dataDir }),
      DATABASE_URL: database.url,
      OPENAI_BASE_URL: model.baseURL,
      OPENAI_API_KEY: 'bench',
      LLM_MODEL: 'demo',
      EMBEDDING_MODEL: 'demo',
    };
    const api = await spawnSwitchboard({ ...env, SWITCHBOARD_ROLES: 'api' }, 60_000);
    processes.push(api);
    const worker = await spawnSwitchboard({ ...env, SWITCHBOARD_ROLES: 'worker' }, 60_000);
    processes.push(worker);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'Librarian');
    const created = await request('POST', `${base}/knowledge/bases`, { token: user.accessToken, body: { name: 'Manuals' } });
    if (created.status !== 201) throw new Error(`knowledge: creating the base answered ${created.status}`);
    const baseId = created.body.base.id as string;

    const cpu0 = { worker: cpuMsOf(worker.child.pid!), api: cpuMsOf(api.child.pid!), postgres: cpuMsOfCommand('postgres') };
    const started = Date.now();
    for (let at = 0; at < pdfs.length; at += 10) {
      const { body, contentType } = multipart(
        pdfs.slice(at, at + 10).map((bytes, i) => ({ name: `manual-${at + i}.pdf`, type: 'application/pdf', bytes })),
      );
      const response = await fetch(`${base}/knowledge/bases/${baseId}/documents`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': contentType },
        body: new Uint8Array(body),
      });
      if (response.status !== 201) throw new Error(`knowledge: an upload answered ${response.status} ${await response.text()}`);
    }
    let documents: Array<{ status: string; chunkCount: number; error: string | null }> = [];
    const deadline = Date.now() + 30 * 60_000;
    for (;;) {
      const listed = await request('GET', `${base}/knowledge/bases/${baseId}`, { token: user.accessToken });
      documents = listed.body.documents;
      const failed = documents.find((document) => document.status === 'failed');
      if (failed) throw new Error(`knowledge: a document failed: ${failed.error}`);
      if (documents.length === pdfs.length && documents.every((document) => document.status === 'ready')) break;
      if (Date.now() > deadline) throw new Error('knowledge: the documents were not ingested in 30 minutes');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seconds = (Date.now() - started) / 1000;
    const workerCpuS = (cpuMsOf(worker.child.pid!) - cpu0.worker) / 1000;
    const chunks = documents.reduce((sum, document) => sum + document.chunkCount, 0);
    return {
      documents: pdfs.length,
      pagesPerDocument: options.pages,
      bytesPerDocument: Math.round(pdfs.reduce((sum, pdf) => sum + pdf.length, 0) / pdfs.length),
      chunksPerDocument: round(chunks / pdfs.length, 1),
      seconds: round(seconds),
      documentsPerSecond: round(pdfs.length / seconds, 2),
      documentsPerWorkerCoreSecond: round(pdfs.length / workerCpuS, 2),
      workerCpuMsPerDocument: round((workerCpuS * 1000) / pdfs.length, 0),
      workerCoresBusy: round(workerCpuS / seconds, 2),
      apiCpuMsPerDocument: round((cpuMsOf(api.child.pid!) - cpu0.api) / pdfs.length, 0),
      postgresCpuMsPerDocument: round((cpuMsOfCommand('postgres') - cpu0.postgres) / pdfs.length, 0),
      /** Parsing and chunking one document in this process: what an ingestion cannot cost less than. */
      parseAndChunkCpuMs: round(floor.cpuMs, 0),
    };
  } finally {
    await Promise.allSettled(processes.map((process) => process.stop()));
    await model.close();
    await database.drop();
  }
}

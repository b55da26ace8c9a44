import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { demoResponder } from '../../src/demo-model/responder';
import { demoEmbedder } from '../../src/demo-model/embeddings';
import { isTicketNotesRequest } from '../../src/demo-model/ticket-notes';
import type { ChatRequest, ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { isRefusal, PROFILES, type ReplayProfile } from './provider-profiles';
import { REPORTED } from './provider-wire';

/*
 * A local OpenAI-compatible server that answers as each real provider does on the wire. The
 * content of every answer is the offline demo model's (so a path's result can be compared with what
 * the demo model gives); the profile decides only the shape: how the chunks are cut, where usage
 * and reasoning go, which fields ride along, which line endings, comments and byte splits the
 * stream has, and what the provider refuses. Each profile is served at `/<name>/v1`, and the one
 * last chosen with `choose` at `/chosen/v1`: one app on that base URL is served every profile in turn.
 */

/**
 * A request with this in its last user message gets the profile's failure scenario (when it has
 * one) instead of an answer; `failMarkFor(name)` limits that to the one profile it names.
 */
export const FAIL_MARK = 'REPLAY-FAIL';

/** The mark that plays the failure scenario of profile `name` only (the other profiles answer). */
export const failMarkFor = (name: string) => `${FAIL_MARK}@${name}`;

/** Whether the request's last user message asks profile `name` for its failure scenario. */
const failsHere = (text: string, name: string) =>
  text.includes(failMarkFor(name)) || (text.includes(FAIL_MARK) && !text.includes(`${FAIL_MARK}@`));
/** Reasoning text the profiles stream beside the answer: it must never appear in any output. */
export const REASONING_MARK = 'HIDDEN-REASONING';

/** Unicode on a line of its own, added to every prose answer and text block: it must come out intact. */
export const ANSWER_TAIL = 'Grüße aus Köln — 🚀 日本語 ✓';

/**
 * The demo model's answer with ANSWER_TAIL on a new line of its prose and of each text block
 * (JSON answers and ticket notes, whose form is checked, are left as they are).
 */
function withTail(turn: ChatTurn, body: ChatRequest): ChatTurn {
  const prose = turn.text && !/^\s*[[{]/.test(turn.text) && !isTicketNotesRequest(body);
  return {
    ...turn,
    ...(prose ? { text: `${turn.text}\n${ANSWER_TAIL}` } : {}),
    ...(turn.toolCalls
      ? {
          toolCalls: turn.toolCalls.map((call) => {
            const args = call.args as { text?: unknown };
            return call.name === 'create_text' && typeof args?.text === 'string'
              ? { ...call, args: { ...args, text: `${args.text}\n${ANSWER_TAIL}` } }
              : call;
          }),
        }
      : {}),
  };
}

/** What the server received: the profile, the body, and the answer's HTTP status. */
export interface ReplayRequest {
  profile: string;
  path: 'chat' | 'embeddings';
  body: ChatRequest;
  status: number;
  /** The demo model's answer this request was given (chat requests that were answered). */
  turn?: ChatTurn;
}

export interface ReplayServer {
  url: string;
  /** `LLM_PROVIDERS` entry of a profile on this server. */
  provider(profile: ReplayProfile, name?: string): { name: string; baseUrl: string; models: string[]; kind?: string };
  /** Base URL of the profile last chosen with `choose`: what an app serving several profiles in turn is given. */
  chosenBaseUrl: string;
  /** The profile that answers at `chosenBaseUrl` from now on. */
  choose(profile: ReplayProfile): void;
  requests: ReplayRequest[];
  close(): Promise<void>;
}

/** The base path that the chosen profile answers on. */
const CHOSEN = 'chosen';

const lastUser = (body: ChatRequest): string => {
  for (let i = body.messages.length - 1; i >= 0; i -= 1) {
    const message = body.messages[i];
    if (message.role !== 'user') continue;
    return typeof message.content === 'string' ? message.content : JSON.stringify(message.content);
  }
  return '';
};

/** A byte-exact writer: pieces with a pause between them, so the client reads them separately. */
async function writeAll(res: http.ServerResponse, pieces: Array<string | Buffer>, pauseMs: number): Promise<void> {
  for (const piece of pieces) {
    if (res.destroyed) return;
    res.write(piece);
    if (pauseMs) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  res.end();
}

export async function startProviderReplay(): Promise<ReplayServer> {
  const requests: ReplayRequest[] = [];
  let chosen: ReplayProfile | undefined;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      const [, base, , ...rest] = (req.url ?? '').split('/');
      const profile = base === CHOSEN ? chosen : PROFILES.find((candidate) => candidate.name === base);
      const name = profile?.name ?? base;
      const path = rest.join('/');
      const body = JSON.parse(Buffer.concat(parts).toString('utf8') || '{}') as ChatRequest;
      const record: ReplayRequest = { profile: name, path: path === 'embeddings' ? 'embeddings' : 'chat', body, status: 200 };
      requests.push(record);
      if (!profile) return void res.writeHead((record.status = 404)).end();
      if (path === 'embeddings') {
        const inputs = Array.isArray(body.input) ? (body.input as string[]) : [String(body.input)];
        const vectors = demoEmbedder(inputs, body.model);
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(
          JSON.stringify({
            object: 'list',
            model: body.model,
            data: vectors.map((embedding, index) => ({ object: 'embedding', index, embedding })),
            usage: { prompt_tokens: REPORTED.prompt, total_tokens: REPORTED.prompt },
          }),
        );
      }
      if (path !== 'chat/completions') return void res.writeHead((record.status = 404)).end();
      const refusal = profile.refuse?.(body);
      if (refusal) {
        record.status = refusal.status;
        res.writeHead(refusal.status, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify(refusal.body));
      }
      const turn = profile.fail && failsHere(lastUser(body), profile.name) ? undefined : withTail(demoResponder(body), body);
      record.turn = turn;
      const wire = turn ? profile.answer(turn, body) : profile.fail!(body);
      if (isRefusal(wire)) {
        record.status = wire.status;
        res.writeHead(wire.status, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify(wire.body));
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      void writeAll(res, wire.pieces, wire.pauseMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    chosenBaseUrl: `${url}/${CHOSEN}/v1`,
    choose: (profile) => void (chosen = profile),
    provider: (profile, name = profile.name) => ({
      name,
      baseUrl: `${url}/${profile.name}/v1`,
      models: [profile.model],
      ...(profile.kind ? { kind: profile.kind } : {}),
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

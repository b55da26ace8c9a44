import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/*
 * A local HTTP fake of the ConnectWise Manage REST API a PSA push uses: member lookup
 * (`GET /system/members?conditions=identifier="…"`) and ticket notes
 * (`POST /service/tickets/{id}/notes`), under `/v4_6_release/apis/3.0`, with ConnectWise's
 * authentication (Basic `company+publicKey:privateKey`, or a Bearer API key) and error shape
 * (`{code, message}`). Point a connection's `baseUrl` at `fake.apiRoot`.
 */

export const API_ROOT_PATH = '/v4_6_release/apis/3.0';

/** One request the fake received. */
export interface FakeCwRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  auth?: string;
  clientId?: string;
  body?: unknown;
}

/** A note the fake stored on a ticket. */
export interface FakeCwNote {
  id: number;
  ticketId: number;
  text: string;
  internalAnalysisFlag?: boolean;
  resolutionFlag?: boolean;
  member?: { identifier: string };
}

export interface FakeConnectWise {
  url: string;
  /** The API root to give as a connection's `baseUrl`. */
  apiRoot: string;
  requests: FakeCwRequest[];
  /** Notes by ticket. */
  notes: FakeCwNote[];
  /** Tickets that exist (others answer 404). */
  tickets: Set<number>;
  /** Member identifiers the PSA knows. */
  members: Set<string>;
  /** The next `n` note posts answer `status` instead (e.g. 503 while the PSA is down). */
  failNotes(n: number, status: number): void;
  /** Note posts wait until `release` is called (a post whose caller went away meanwhile is not stored). */
  holdNotes(): { release: () => void };
  close(): Promise<void>;
}

export interface FakeConnectWiseOptions {
  companyId: string;
  publicKey?: string;
  privateKey?: string;
  apiKey?: string;
  clientId?: string;
}

export async function startFakeConnectWise(options: FakeConnectWiseOptions): Promise<FakeConnectWise> {
  const requests: FakeCwRequest[] = [];
  const notes: FakeCwNote[] = [];
  const tickets = new Set<number>();
  const members = new Set<string>();
  let failures: { left: number; status: number } = { left: 0, status: 500 };
  let hold: Promise<void> | undefined;

  const expectedAuth = [
    options.publicKey !== undefined
      ? `Basic ${Buffer.from(`${options.companyId}+${options.publicKey}:${options.privateKey}`).toString('base64')}`
      : undefined,
    options.apiKey !== undefined ? `Bearer ${options.apiKey}` : undefined,
  ].filter(Boolean);

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const readBody = async (req: IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? (JSON.parse(text) as unknown) : undefined;
  };

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const body = req.method === 'POST' ? await readBody(req) : undefined;
      const entry: FakeCwRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        auth: req.headers.authorization,
        clientId: req.headers.clientid as string | undefined,
        body,
      };
      requests.push(entry);
      if (!url.pathname.startsWith(API_ROOT_PATH)) return send(res, 404, { code: 'NotFound', message: 'Not found' });
      if (!entry.auth || !expectedAuth.includes(entry.auth))
        return send(res, 401, { code: 'Unauthorized', message: 'Invalid credentials' });
      if (options.clientId !== undefined && entry.clientId !== options.clientId)
        return send(res, 401, { code: 'Unauthorized', message: 'clientId missing or invalid' });
      const path = url.pathname.slice(API_ROOT_PATH.length);

      if (req.method === 'GET' && path === '/system/members') {
        const match = /^identifier="([^"]*)"$/.exec(url.searchParams.get('conditions') ?? '');
        const found = match && members.has(match[1]) ? [{ id: 1, identifier: match[1] }] : [];
        return send(res, 200, found);
      }
      const notePath = /^\/service\/tickets\/(\d+)\/notes$/.exec(path);
      if (req.method === 'POST' && notePath) {
        if (hold) await hold;
        // The caller went away while the request was held: the PSA never finished it.
        if (req.socket.destroyed) return;
        if (failures.left > 0) {
          failures = { ...failures, left: failures.left - 1 };
          return send(res, failures.status, { code: 'Unavailable', message: 'Try again later' });
        }
        const ticketId = Number(notePath[1]);
        if (!tickets.has(ticketId)) return send(res, 404, { code: 'NotFound', message: `Ticket ${ticketId} not found` });
        const note = body as Omit<FakeCwNote, 'id' | 'ticketId'>;
        if (typeof note?.text !== 'string' || note.text === '')
          return send(res, 400, { code: 'InvalidObject', message: 'text is required' });
        if (note.member && !members.has(note.member.identifier))
          return send(res, 400, { code: 'InvalidObject', message: 'member not found' });
        const stored: FakeCwNote = { id: notes.length + 1, ticketId, ...note };
        notes.push(stored);
        return send(res, 201, stored);
      }
      send(res, 404, { code: 'NotFound', message: 'Not found' });
    })().catch(() => send(res, 500, { code: 'Error', message: 'fake failed' }));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    apiRoot: `${url}${API_ROOT_PATH}`,
    requests,
    notes,
    tickets,
    members,
    failNotes: (left, status) => {
      failures = { left, status };
    },
    holdNotes: () => {
      let release!: () => void;
      hold = new Promise<void>((resolve) => (release = resolve)).then(() => {
        hold = undefined;
      });
      return { release };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

import { randomUUID } from 'node:crypto';

/** A small JSON client over fetch for tests: returns status, headers and parsed body. */
export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export async function request<T = any>(
  method: string,
  url: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined || options.rawBody !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(url, {
    method,
    headers,
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body: body as T };
}

export interface TestUser {
  id: string;
  email: string;
  name: string;
  accessToken: string;
  refreshToken: string;
}

/**
 * Registers a fresh user with a unique email. A 503 (a backing service not answering yet, as on a
 * loaded machine right after a process started) is retried after its Retry-After, as a client
 * would, for up to 30 s; any other answer but 201 fails at once.
 */
export async function registerUser(api: string, name = 'User'): Promise<TestUser> {
  const email = `${name.toLowerCase()}-${randomUUID().slice(0, 8)}@example.test`;
  const register = () => request('POST', `${api}/auth/register`, { body: { email, password: 'correct horse battery', name } });
  const deadline = Date.now() + 30_000;
  let res = await register();
  while (res.status === 503 && Date.now() < deadline) {
    const retryAfterMs = 1000 * Number(res.headers.get('retry-after') ?? '1');
    await new Promise((resolve) => setTimeout(resolve, Math.min(retryAfterMs, Math.max(0, deadline - Date.now()))));
    res = await register();
  }
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...res.body.user, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
}

export async function createCanvas(api: string, user: TestUser, title = 'Canvas'): Promise<string> {
  const res = await request('POST', `${api}/canvases`, { token: user.accessToken, body: { title } });
  if (res.status !== 201) throw new Error(`create canvas failed: ${res.status}`);
  return res.body.canvas.id;
}

export async function addMember(api: string, owner: TestUser, canvasId: string, member: TestUser, role: 'owner' | 'editor' | 'viewer') {
  const res = await request('POST', `${api}/canvases/${canvasId}/members`, {
    token: owner.accessToken,
    body: { email: member.email, role },
  });
  if (res.status !== 201) throw new Error(`add member failed: ${res.status}`);
}

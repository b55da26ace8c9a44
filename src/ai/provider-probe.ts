import { outboundRoute } from '../lib/outbound-proxy';

/** Where a provider is: its name, its OpenAI-compatible base URL and its key. */
export interface ProbedProvider {
  name: string;
  baseURL: string;
  apiKey: string;
}

/** `unauthorized`: the provider answered 401 or 403 to the key (an operator must fix it), not that it is down. */
export type ProviderState = 'reachable' | 'unreachable' | 'unauthorized' | 'unchecked';

/** How long one probe may take (`/readyz?deep=1`), and how long its answer is reused. */
const PROBE_TIMEOUT_MS = 1_500;
const PROBE_REUSE_MS = 10_000;

/**
 * What `/readyz` says of each model provider, without ever failing on it: a provider that is down
 * is a degraded deployment (fallbacks may answer), not an unready node. `?deep=1` asks each
 * provider's `GET /models` (2xx = reachable, 401 or 403 = unauthorized: the key is refused); plain
 * readiness reports the last answer a probe got (the start banner's probe is the first), and
 * `unchecked` only for a provider never probed. Deep answers are reused for ten seconds, so a public
 * endpoint cannot be turned into a stream of outbound requests. Import-light: the API process loads it.
 */
export class ProviderProbe {
  private last?: { at: number; states: Promise<Record<string, ProviderState>> };
  /** The last answer each provider gave a probe. */
  private known: Record<string, ProviderState> = {};

  constructor(
    private readonly providers: readonly ProbedProvider[],
    private readonly timeoutMs = PROBE_TIMEOUT_MS,
  ) {}

  /** Each provider's state; `deep` probes the ones not probed in the last ten seconds, each within `timeoutMs`. */
  async states(deep: boolean, timeoutMs = this.timeoutMs): Promise<Record<string, ProviderState>> {
    const fresh = this.last && Date.now() - this.last.at < PROBE_REUSE_MS ? this.last.states : undefined;
    if (fresh) return fresh;
    if (!deep) return Object.fromEntries(this.providers.map((provider) => [provider.name, this.known[provider.name] ?? 'unchecked']));
    const states = Promise.all(this.providers.map(async (provider) => [provider.name, await probe(provider, timeoutMs)] as const)).then(
      (entries) => (this.known = Object.fromEntries(entries)),
    );
    this.last = { at: Date.now(), states };
    return states;
  }
}

async function probe(provider: ProbedProvider, timeoutMs: number): Promise<ProviderState> {
  try {
    const response = await outboundRoute().fetch(`${provider.baseURL.replace(/\/+$/, '')}/models`, {
      headers: { authorization: `Bearer ${provider.apiKey}` },
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
    });
    await response.body?.cancel();
    if (response.status === 401 || response.status === 403) return 'unauthorized';
    return response.ok ? 'reachable' : 'unreachable';
  } catch {
    // Refused, timed out or not HTTP: the answer is the state itself.
    return 'unreachable';
  }
}

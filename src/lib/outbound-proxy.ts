import http from 'node:http';
import https from 'node:https';
import type { Dispatcher } from 'undici';

/** The operator's proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY); all unset: connect directly. */
export interface OutboundProxySettings {
  httpsProxy?: string;
  httpProxy?: string;
  noProxy?: string;
}

type ProxyAgentOptions = http.AgentOptions & { proxyEnv: Record<string, string | undefined> };

/**
 * The way out of this process for model requests and tool calls. Built once per process from the
 * configuration (`useOutboundProxy` at start-up): node:http agents whose connections go through
 * the proxy (an HTTP proxy for `http:` targets, a CONNECT tunnel for `https:` ones), undici's
 * `EnvHttpProxyAgent` for fetch-based calls (loaded at the first such call: a process without a
 * proxy never loads undici), and the NO_PROXY rule deciding which hosts bypass it.
 */
export class OutboundRoute {
  private readonly direct = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };
  private readonly proxied: { 'http:': http.Agent; 'https:': https.Agent } | undefined;
  private readonly rules: Array<{ host: string; port?: string }>;
  private readonly all: boolean;
  /** For fetch, once loaded: none when no proxy is configured (the built-in fetch's own dispatcher). */
  private dispatcher: Promise<Dispatcher> | undefined;

  constructor(readonly settings: OutboundProxySettings = {}) {
    const { httpsProxy, httpProxy, noProxy = '' } = settings;
    const entries = noProxy
      .split(/[\s,]+/)
      .map((entry) => entry.trim().toLowerCase())
      .filter(Boolean);
    this.all = entries.includes('*');
    this.rules = entries.map((entry) => {
      const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
      return { host: (match?.[1] ?? entry).replace(/^\*?\./, '').replace(/^\[|\]$/g, ''), port: match?.[2] };
    });
    if (httpsProxy || httpProxy) {
      // The NO_PROXY decision is taken here (`proxies`), so the agents get no NO_PROXY of their own.
      // `proxyEnv` is Node's own agent option (Node 24.5+), not yet in @types/node.
      const options: ProxyAgentOptions = { keepAlive: true, proxyEnv: { HTTPS_PROXY: httpsProxy, HTTP_PROXY: httpProxy } };
      this.proxied = { 'http:': new http.Agent(options), 'https:': new https.Agent(options) };
    }
  }

  /** The proxy a request to `url` goes through, or undefined when it connects directly. */
  proxyFor(url: URL): string | undefined {
    const proxy = url.protocol === 'https:' ? this.settings.httpsProxy : url.protocol === 'http:' ? this.settings.httpProxy : undefined;
    if (!proxy || this.all) return undefined;
    const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    const bypassed = this.rules.some(
      (rule) => (!rule.port || rule.port === port) && (host === rule.host || host.endsWith(`.${rule.host}`)),
    );
    return bypassed ? undefined : proxy;
  }

  /** The keep-alive node:http agent for `url`: through the proxy unless NO_PROXY (or no proxy) says directly. */
  agentFor(url: URL): http.Agent {
    const scheme = url.protocol === 'https:' ? 'https:' : 'http:';
    return this.proxied && this.proxyFor(url) ? this.proxied[scheme] : this.direct[scheme];
  }

  /** The built-in fetch, through the proxy for the hosts NO_PROXY does not exempt. */
  readonly fetch: typeof fetch = async (input, init) =>
    this.proxied ? fetch(input, { ...init, dispatcher: await this.proxyDispatcher() } as RequestInit) : fetch(input, init);

  private proxyDispatcher(): Promise<Dispatcher> {
    const { httpsProxy, httpProxy, noProxy = '' } = this.settings;
    this.dispatcher ??= import('undici').then(({ EnvHttpProxyAgent }) => new EnvHttpProxyAgent({ httpsProxy, httpProxy, noProxy }));
    return this.dispatcher;
  }

  /** Closes the proxied connections (the process is stopping). */
  async close(): Promise<void> {
    for (const agent of [...Object.values(this.direct), ...Object.values(this.proxied ?? {})]) agent.destroy();
    await (await this.dispatcher)?.close();
  }
}

let current = new OutboundRoute();

/** Sets the process's way out from the configuration; returns it. */
export function useOutboundProxy(settings: OutboundProxySettings): OutboundRoute {
  if (!sameSettings(current.settings, settings)) {
    const previous = current;
    current = new OutboundRoute(settings);
    void previous.close();
  }
  return current;
}

/** The process's way out (direct until `useOutboundProxy` is called). */
export function outboundRoute(): OutboundRoute {
  return current;
}

const sameSettings = (a: OutboundProxySettings, b: OutboundProxySettings) =>
  a.httpsProxy === b.httpsProxy && a.httpProxy === b.httpProxy && (a.noProxy ?? '') === (b.noProxy ?? '');

/** One method + path an express app answers, e.g. `{method: 'get', path: '/api/v1/canvases/:id'}`. */
export interface RouteEntry {
  method: string;
  path: string;
}

/** The parts of express 5's router (package `router` 2.x) this reads: its layer stack. */
interface RouterLike {
  stack: Array<{ rawPath?: unknown; route?: { path: unknown; methods: Record<string, boolean> }; handle: unknown }>;
}

const join = (prefix: string, path: string) => (path === '/' ? prefix || '/' : `${prefix}${path}`.replace(/\/{2,}/g, '/'));
const pathText = (path: unknown) => (path instanceof RegExp ? `regexp:${path.source}` : String(path));

/**
 * Every route registered on an express app or router, mounted routers included, with full paths.
 * Reads the router's stack, as express 5's `router.listRoutes()` does (not every router release
 * has it): route layers carry `route.methods`, `use(path, router)` layers a nested `handle.stack`.
 * `.all()` routes are listed with method `*`.
 */
export function listRoutes(router: unknown, prefix = ''): RouteEntry[] {
  const stack = (router as RouterLike | undefined)?.stack ?? (router as { router?: RouterLike })?.router?.stack;
  if (!Array.isArray(stack)) throw new Error('listRoutes: not an express app or router');
  const entries: RouteEntry[] = [];
  for (const layer of stack) {
    const paths = (Array.isArray(layer.rawPath) ? layer.rawPath : [layer.rawPath ?? layer.route?.path ?? '/']).map(pathText);
    if (layer.route) {
      const methods = Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m]).map((m) => (m === '_all' ? '*' : m));
      for (const path of paths) for (const method of methods) entries.push({ method, path: join(prefix, path) });
    } else if (Array.isArray((layer.handle as RouterLike | undefined)?.stack)) {
      for (const path of paths) entries.push(...listRoutes(layer.handle, join(prefix, path)));
    }
  }
  return entries;
}

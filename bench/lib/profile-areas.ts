/** Self time of a V8 CPU profile (the inspector's `Profiler.stop`) by package, source folder or V8 frame. */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * `node_modules/<package>`, `src/<folder>`, `node:<module>`, or a frame without a script in
 * parentheses: `(stringify)` and `(parse)` are JSON's builtins, `(garbage collector)` is GC,
 * `(program)` is native work outside JavaScript.
 */
export function areaOf(callFrame: { functionName: string; url: string }): string {
  const { url, functionName } = callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : `(${functionName || 'anonymous'})`;
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1];
  const own = /\/((?:src|bench|config|test|packages)\/[^/]+)/.exec(url);
  if (own) return own[1];
  if (url.startsWith('node:')) return url.split('/')[0].replace(/^node:internal.*/, 'node:internal');
  return url.replace(/^file:\/\//, '');
}

/** Microseconds of self time by area, `(idle)` left out, largest first. */
export function selfTimeByArea(profile: unknown): Array<[string, number]> {
  const { nodes, samples, timeDeltas } = profile as Profile;
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const areas = new Map<string, number>();
  samples.forEach((id, i) => {
    const name = areaOf(byId.get(id)!.callFrame);
    if (name !== '(idle)') areas.set(name, (areas.get(name) ?? 0) + (timeDeltas[i] ?? 0));
  });
  return [...areas].sort((a, b) => b[1] - a[1]);
}

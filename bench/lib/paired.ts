import type { RedisTopology } from './bench-redis';
import { judge, type Target } from './report';
import { median, round } from './stats';

/**
 * Which topology goes first in round `round` of a paired run: one Redis, then the cluster, then the
 * cluster, then one Redis (and so on), so a host whose speed drifts during the run charges the drift
 * to both topologies alike instead of to whichever always ran second.
 */
export function roundOrder(round: number): [RedisTopology, RedisTopology] {
  return round % 2 === 0 ? ['single', 'cluster'] : ['cluster', 'single'];
}

/** One target compared over the rounds of a paired run. */
export interface PairedTarget {
  name: string;
  metric: string;
  limit: number;
  direction: Target['direction'];
  unit: string;
  /** The target's value in each round, one Redis and the cluster (undefined where a run failed). */
  single: Array<number | undefined>;
  cluster: Array<number | undefined>;
  singleMedian: number | undefined;
  clusterMedian: number | undefined;
  /**
   * Per round, how much worse the cluster did than one Redis in the same round: cluster ÷ single
   * for a target with a ceiling, single ÷ cluster for one with a floor, so above 1 is always worse
   * on the cluster. 1 where both are equal (0 and 0 included); undefined where it cannot be formed.
   */
  clusterWorseBy: Array<number | undefined>;
  clusterWorseByMedian: number | undefined;
  verdictSingle: 'PASS' | 'MISS' | 'N/A';
  verdictCluster: 'PASS' | 'MISS' | 'N/A';
  /**
   * `holds`: the cluster's median meets the target. `as one Redis`: it misses it, but in at least
   * one round the cluster did as well as one Redis or better, so no cost of the cluster stands out
   * from the host's own spread. `misses`: it misses it and did worse than one Redis in every round.
   * `N/A`: not measured.
   */
  onCluster: 'holds' | 'as one Redis' | 'misses' | 'N/A';
}

/**
 * The paired comparison of every target: `targetsByRound[topology][round]` is the target list of
 * that round's runs, as `targets()` builds it. Targets are matched by `metric`.
 */
export function comparePaired(targetsByRound: Record<RedisTopology, Target[][]>): PairedTarget[] {
  const rounds = targetsByRound.single.length;
  const first = targetsByRound.single[0] ?? [];
  return first.map((target): PairedTarget => {
    const valuesOf = (topology: RedisTopology) =>
      Array.from({ length: rounds }, (_, round) => finite(targetsByRound[topology][round]?.find((t) => t.metric === target.metric)?.value));
    const single = valuesOf('single');
    const cluster = valuesOf('cluster');
    const singleMedian = medianOf(single);
    const clusterMedian = medianOf(cluster);
    const clusterWorseBy = single.map((value, round) => worseBy(target.direction, value, cluster[round]));
    const clusterWorseByMedian = medianOf(clusterWorseBy);
    const [verdictSingle, verdictCluster] = judge([
      { ...target, value: singleMedian },
      { ...target, value: clusterMedian },
    ]).map((v) => v.verdict);
    return {
      name: target.name,
      metric: target.metric,
      limit: target.limit,
      direction: target.direction,
      unit: target.unit,
      single,
      cluster,
      singleMedian,
      clusterMedian,
      clusterWorseBy,
      clusterWorseByMedian,
      verdictSingle,
      verdictCluster,
      onCluster: onCluster(verdictCluster, clusterWorseBy),
    };
  });
}

function onCluster(verdict: PairedTarget['verdictCluster'], worse: Array<number | undefined>): PairedTarget['onCluster'] {
  if (verdict !== 'MISS') return verdict === 'PASS' ? 'holds' : 'N/A';
  return worse.some((by) => by !== undefined && by <= 1) ? 'as one Redis' : 'misses';
}

/** How much worse `cluster` is than `single` (above 1 = worse), for a target of `direction`. */
export function worseBy(direction: Target['direction'], single: number | undefined, cluster: number | undefined): number | undefined {
  if (single === undefined || cluster === undefined) return undefined;
  if (single === cluster) return 1;
  const [worse, better] = direction === 'max' ? [cluster, single] : [single, cluster];
  return better > 0 && worse >= 0 ? round(worse / better, 3) : undefined;
}

const finite = (value: number | undefined) => (value !== undefined && Number.isFinite(value) ? value : undefined);

function medianOf(values: Array<number | undefined>): number | undefined {
  const known = values.filter((value): value is number => value !== undefined);
  return known.length ? round(median(known), 3) : undefined;
}

import { comparePaired, roundOrder, worseBy } from '../../bench/lib/paired';
import type { Target } from '../../bench/lib/report';

const ceiling = (value: number | undefined): Target => ({
  name: 'ratio',
  metric: 'generation.ratioP50',
  value,
  limit: 1.5,
  direction: 'max',
  unit: '×',
});
const floor = (value: number | undefined): Target => ({
  name: 'share',
  metric: 'fanout.byClients[client=lean,clients=100].shareOfRaw',
  value,
  limit: 0.8,
  direction: 'min',
  unit: '×',
});

describe('the paired benchmark comparison', () => {
  it('alternates which topology runs first, so drift charges both alike', () => {
    expect([0, 1, 2, 3].map(roundOrder)).toEqual([
      ['single', 'cluster'],
      ['cluster', 'single'],
      ['single', 'cluster'],
      ['cluster', 'single'],
    ]);
  });

  it('reads "worse on the cluster" as above 1 for a ceiling and for a floor alike', () => {
    expect(worseBy('max', 10, 12)).toBe(1.2);
    expect(worseBy('min', 0.9, 0.75)).toBe(1.2);
    expect(worseBy('max', 12, 10)).toBeLessThan(1);
    expect(worseBy('max', 0, 0)).toBe(1);
    expect(worseBy('max', 0, 3)).toBeUndefined();
    expect(worseBy('max', undefined, 3)).toBeUndefined();
  });

  it('takes medians per topology and judges each target on the cluster against the same rounds', () => {
    const [ratio, share] = comparePaired({
      single: [
        [ceiling(1.4), floor(0.85)],
        [ceiling(1.6), floor(0.84)],
        [ceiling(1.45), floor(0.86)],
      ],
      cluster: [
        [ceiling(1.55), floor(0.7)],
        [ceiling(1.5), floor(0.72)],
        [ceiling(1.52), floor(Number.NaN)],
      ],
    });
    expect(ratio).toMatchObject({ singleMedian: 1.45, clusterMedian: 1.52, verdictSingle: 'PASS', verdictCluster: 'MISS' });
    // Worse in rounds 1 and 3, better in round 2 (the host was slow for both): a miss one Redis shares.
    expect(ratio.clusterWorseBy[1]).toBeLessThan(1);
    expect(ratio.onCluster).toBe('as one Redis');
    // A failed or unreadable run counts as unknown, never as a figure.
    expect(share.cluster).toEqual([0.7, 0.72, undefined]);
    expect(share.clusterWorseBy[2]).toBeUndefined();
    expect(share).toMatchObject({ clusterMedian: 0.71, verdictCluster: 'MISS', onCluster: 'misses' });
  });

  it('says a target holds when the cluster meets it, and N/A when it was never measured', () => {
    const [met, unknown] = comparePaired({
      single: [[ceiling(1.2), { ...floor(undefined), metric: 'other' }]],
      cluster: [[ceiling(1.3), { ...floor(undefined), metric: 'other' }]],
    });
    expect(met.onCluster).toBe('holds');
    expect(unknown.onCluster).toBe('N/A');
  });
});

import fc from 'fast-check';
import {
  evenRanks,
  MAX_RANK_LENGTH,
  needsRebalance,
  OPEN_END_EXTRA_DIGITS,
  RANK_ALPHABET,
  rankBetween,
  RankSpaceExhaustedError,
  REBALANCE_THRESHOLD,
} from '../../src/models/lexorank';

const VALID = /^[0-9A-Za-z]*[1-9A-Za-z]$/;
const log62Ceil = (n: number): number => {
  let length = 0;
  for (let space = 1; space < n; space *= 62) length++;
  return length;
};

/**
 * Everything a caller relies on: count, order (hence uniqueness), bounds, alphabet and length.
 * Returns the first problem rather than asserting per element, which keeps big lists fast.
 */
function rankProblem(ranks: string[], prev: string | null, next: string | null, count: number): string | null {
  if (ranks.length !== count) return `expected ${count} ranks, got ${ranks.length}`;
  for (let i = 0; i < ranks.length; i++) {
    const r = ranks[i];
    if (!VALID.test(r) || r.length > MAX_RANK_LENGTH) return `malformed rank '${r}' at ${i}`;
    const before = i === 0 ? prev : ranks[i - 1];
    if (before !== null && !(before < r)) return `'${before}' !< '${r}' at ${i}`;
  }
  if (next !== null && !(ranks[count - 1] < next)) return `last rank '${ranks[count - 1]}' !< next '${next}'`;
  return null;
}

function expectValidRanks(ranks: string[], prev: string | null, next: string | null, count: number): void {
  expect(rankProblem(ranks, prev, next, count)).toBeNull();
}

const digit = fc.constantFrom(...RANK_ALPHABET);
const nonZeroDigit = fc.constantFrom(...RANK_ALPHABET.slice(1));
/** Any valid rank: alphabet only, not ending in '0'. */
const rankArb = fc.tuple(fc.string({ unit: digit, maxLength: 10 }), nonZeroDigit).map(([body, last]) => body + last);

/** Neighbour pairs, weighted toward the tight ones where off-by-one bugs live. */
const boundsArb: fc.Arbitrary<[string | null, string | null]> = fc.oneof(
  fc.constant<[string | null, string | null]>([null, null]),
  rankArb.map((x): [string | null, string | null] => [null, x]),
  rankArb.map((x): [string | null, string | null] => [x, null]),
  fc
    .tuple(rankArb, rankArb)
    .filter(([a, b]) => a !== b)
    .map(([a, b]): [string, string] => (a < b ? [a, b] : [b, a])),
  // x and x + tail: "adjacent-looking" pairs such as 'a' / 'a1' or 'a' / 'a01'.
  fc
    .tuple(rankArb, fc.string({ unit: fc.constant('0'), maxLength: 3 }), rankArb)
    .map(([x, zeros, tail]): [string, string] => [x, x + zeros + tail]),
  // Neighbours differing by one in the last digit, like 'Zz' / 'a'.
  fc
    .tuple(fc.string({ unit: digit, maxLength: 6 }), fc.integer({ min: 1, max: 60 }))
    .map(([body, i]): [string, string] => [body + RANK_ALPHABET[i], body + RANK_ALPHABET[i + 1]]),
);

describe('rankBetween', () => {
  test.each<[string | null, string | null, number]>([
    [null, null, 1],
    [null, null, 200],
    ['a', 'a1', 1],
    ['a', 'a1', 200],
    ['a', 'a01', 3],
    ['Zz', 'a', 1],
    ['Zz', 'a', 62],
    ['1', null, 5],
    [null, '1', 5],
    [null, '001', 1],
    ['zzz', null, 1],
    ['y', 'z', 10_000],
  ])('between %p and %p, %p ranks', (prev, next, count) => {
    expectValidRanks(rankBetween(prev, next, count), prev, next, count);
  });

  test('first rank on an empty canvas is a single middle digit', () => {
    expect(rankBetween(null, null)).toEqual(['V']);
  });

  test('N ranks in an empty gap have length ceil(log62(N + 1)) <= ceil(log62(N)) + 1', () => {
    for (const n of [1, 61, 62, 200, 3843, 3844, 10_000]) {
      const longest = Math.max(...rankBetween(null, null, n).map((r) => r.length));
      expect(longest).toBe(log62Ceil(n + 1));
      expect(longest).toBeLessThanOrEqual(log62Ceil(n) + 1);
    }
  });

  test.each([
    [1, 5_000],
    [20, 5_000],
    [200, 1_000],
  ])(
    'a canvas that grows at one end by batches of %i stays short: %i appends, and as many prepends, never near the rebalance threshold',
    (count, batches) => {
      let last: string | null = null;
      let first: string | null = null;
      let longest = 0;
      for (let i = 0; i < batches; i++) {
        const appended = rankBetween(last, null, count);
        expectValidRanks(appended, last, null, count);
        last = appended[count - 1];
        const prepended = rankBetween(null, first ?? appended[0], count);
        first = prepended[0];
        longest = Math.max(longest, last.length, first.length);
      }
      // Spread over the open end, as between two neighbours, 5,000 batches of 20 would need ~3,700 digits.
      expect(longest).toBeLessThanOrEqual(7);
    },
  );

  test('property: N in 1..500 between any valid neighbours is ordered, unique and in bounds', () => {
    fc.assert(
      fc.property(boundsArb, fc.integer({ min: 1, max: 500 }), ([prev, next], count) => {
        const ranks = rankBetween(prev, next, count);
        expect(rankProblem(ranks, prev, next, count)).toBeNull();
        expect(new Set(ranks).size).toBe(count);
        // The length bound behind the rebalance argument: at most ceil(log62(N+1)) digits
        // beyond the longer neighbour (so at most one for a single insert), two more at an open end.
        const neighbour = Math.max(prev?.length ?? 0, next?.length ?? 0);
        const longest = ranks.reduce((max, r) => Math.max(max, r.length), 0);
        const openEnd = (prev === null) !== (next === null);
        expect(longest).toBeLessThanOrEqual(neighbour + log62Ceil(count + 1) + (openEnd ? OPEN_END_EXTRA_DIGITS : 0));
      }),
      { numRuns: 1000 },
    );
  });

  test.each<[string, () => unknown]>([
    ['prev == next', () => rankBetween('a', 'a')],
    ['prev > next', () => rankBetween('b', 'a')],
    ['lowercase sorts after uppercase', () => rankBetween('a', 'Z')],
    ['character outside the alphabet', () => rankBetween('a-', null)],
    ['non-ASCII letter', () => rankBetween(null, 'é')],
    ['trailing zero (no room before it)', () => rankBetween('a', 'a0')],
    ['empty rank', () => rankBetween('', null)],
    ['rank over MAX_RANK_LENGTH', () => rankBetween('1'.repeat(MAX_RANK_LENGTH + 1), null)],
    ['count 0', () => rankBetween(null, null, 0)],
    ['count over 10,000', () => rankBetween(null, null, 10_001)],
    ['fractional count', () => rankBetween(null, null, 1.5)],
    ['evenRanks negative', () => evenRanks(-1)],
  ])('throws RangeError: %s', (_name, call) => {
    expect(call).toThrow(RangeError);
  });

  test('refuses to exceed MAX_RANK_LENGTH, with a catchable subclass', () => {
    const prev = '1'.repeat(MAX_RANK_LENGTH - 1) + '1';
    const next = '1'.repeat(MAX_RANK_LENGTH - 1) + '2';
    expect(() => rankBetween(prev, next)).toThrow(RankSpaceExhaustedError);
    expect(() => rankBetween(prev, next)).toThrow(RangeError);
  });
});

describe('evenRanks', () => {
  test.each([0, 1, 2, 61, 62, 1000, 50_000])('%p items: ordered and shortest', (n) => {
    const ranks = evenRanks(n);
    if (n > 0) expectValidRanks(ranks, null, null, n);
    else expect(ranks).toEqual([]);
    expect(ranks.reduce((max, r) => Math.max(max, r.length), 0)).toBeLessThanOrEqual(log62Ceil(n + 1));
  });
});

describe('worst case: 10,000 inserts directly after the same first rank', () => {
  test('single inserts add at most one digit; rebalancing at the threshold keeps ranks under MAX_RANK_LENGTH', () => {
    let ranks = rankBetween(null, null);
    const first = ranks[0];
    let longestEver = 0;
    let rebalances = 0;
    let sinceRebalance = 0;
    let fewestInsertsBetweenRebalances = Infinity;

    for (let i = 0; i < 10_000; i++) {
      const prev = ranks[0];
      const next = ranks[1] ?? null;
      const [rank] = rankBetween(prev, next);
      if (!(prev < rank && (next === null || rank < next))) throw new Error(`'${rank}' not in ('${prev}', '${next}')`);
      // One insert adds at most one digit beyond its neighbours.
      if (rank.length > Math.max(prev.length, next?.length ?? 0) + 1) throw new Error(`'${rank}' grew by 2+`);
      ranks.splice(1, 0, rank);
      longestEver = Math.max(longestEver, rank.length);
      sinceRebalance++;

      if (needsRebalance(rank)) {
        ranks = evenRanks(ranks.length);
        rebalances++;
        fewestInsertsBetweenRebalances = Math.min(fewestInsertsBetweenRebalances, sinceRebalance);
        sinceRebalance = 0;
      }
    }

    // Same-position inserts halve the gap each time, so length grows without bound ...
    expect(rebalances).toBeGreaterThan(0);
    // ... but needsRebalance fires at REBALANCE_THRESHOLD + 1, well before MAX_RANK_LENGTH.
    expect(longestEver).toBe(REBALANCE_THRESHOLD + 1);
    expect(longestEver).toBeLessThan(MAX_RANK_LENGTH);
    // Growth is about one digit per log2(62) ~ 6 inserts, so rebalances stay rare.
    expect(fewestInsertsBetweenRebalances).toBeGreaterThan(200);

    // The list is still a valid ordering at the end, and a final rebalance makes it short again.
    expectValidRanks(ranks, null, null, 10_001);
    expect(first).toBe('V');
    const fresh = evenRanks(ranks.length);
    expectValidRanks(fresh, null, null, 10_001);
    expect(fresh.reduce((max, r) => Math.max(max, r.length), 0)).toBe(log62Ceil(10_002));
  });
});
